/* SPDX-License-Identifier: MIT */
/* writevv-bench: the description of the machine and the run's set-up. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "nofile.h"
#include "writevv.h"

static void sysctl_str(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	buf[0] = 0;
	if (!f) {
		snprintf(buf, len, "?");
		return;
	}
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	for (n = 0; buf[n]; n++)
		if (buf[n] == '\t')
			buf[n] = ' ';
}

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(buf, len, "?");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && p) {
			p += 2;
			p[strcspn(p, "\n")] = 0;
			snprintf(buf, len, "%s", p);
			break;
		}
	}
	fclose(f);
}

static const char *irq_time_accounting(void)
{
	FILE *f = popen("zcat /proc/config.gz 2>/dev/null | grep -E '^CONFIG_IRQ_TIME_ACCOUNTING=y'", "r");
	char line[128];
	bool on = false;

	if (!f)
		return "unknown";
	if (fgets(line, sizeof(line), f))
		on = true;
	if (pclose(f) < 0)
		return "unknown";
	return on ? "on: softirq time is not charged to the interrupted thread"
		  : "off (or unknown): softirq work done in the sender's context counts as its CPU";
}

void print_header(void)
{
	struct utsname u;
	char model[128], wmem[64], rmem[64], tmem[64], cc[32], bl[32], tsys[64];
	time_t t = time(NULL);
	int i, m;

	uname(&u);
	cpu_model(model, sizeof(model));
	sysctl_str("/proc/sys/net/ipv4/tcp_wmem", wmem, sizeof(wmem));
	sysctl_str("/proc/sys/net/ipv4/tcp_rmem", rmem, sizeof(rmem));
	sysctl_str("/proc/sys/net/ipv4/tcp_mem", tmem, sizeof(tmem));
	sysctl_str("/proc/sys/net/ipv4/tcp_congestion_control", cc, sizeof(cc));
	sysctl_str("/proc/sys/net/core/netdev_max_backlog", bl, sizeof(bl));
	strftime(tsys, sizeof(tsys), "%Y-%m-%d %H:%M:%S %Z", localtime(&t));

	printf("# writevv-bench (writevv %d.%d.%d), %s\n", WRITEVV_VERSION_MAJOR,
	       WRITEVV_VERSION_MINOR, WRITEVV_VERSION_PATCH, tsys);
	printf("# machine: %s, %d CPUs, kernel %s %s\n", model, env.ncpus, u.release, u.machine);
	printf("# sender: the main thread, pinned to CPU %d; %d draining thread(s) on CPU mask 0x%lx\n",
	       env.sender_cpu, env.rx_threads, env.rx_mask);
	printf("# sockets: TCP/IPv4, per socket TCP_CONGESTION=%s (system default %s), TCP_NODELAY=1,\n"
	       "#   SO_LINGER {1,0}; sender ends blocking, receiver ends non-blocking + epoll;\n"
	       "#   buffers autotuned: tcp_wmem=%s tcp_rmem=%s tcp_mem=%s\n",
	       env.cc, cc, wmem, rmem, tmem);
	printf("# net.core.netdev_max_backlog=%s (nic modes raise it to %ld and restore it)\n", bl,
	       env.backlog_set);
	printf("# CPU = CLOCK_THREAD_CPUTIME_ID of the sending thread around each call; "
	       "IRQ time accounting %s\n", irq_time_accounting());
	printf("# connections: the receiving ends live in a child process per connection set;\n"
	       "#   the engines that send zero-copy (sendzc, wvv-zerocopy, wvv-default) share set 0, the\n"
	       "#   others set 1, of the same kind: writevv's kernel engine puts set 1's sockets in its\n"
	       "#   sockhash, which clears SOCK_SUPPORT_ZC, and SEND_ZC then fails with EOPNOTSUPP;\n"
	       "#   io_uring engines use their set as registered files (IOSQE_FIXED_FILE); when both\n"
	       "#   sets do not fit in RLIMIT_NOFILE, the writevv engines of set 0 move to set 1\n");
	printf("# pattern: every call sends other bytes (a table at a per-call offset); drained sockets\n"
	       "#   compare every byte; discard sockets: per-socket byte counts from the BPF program;\n"
	       "#   all sender sockets: tcpi_bytes_acked must grow by exactly the bytes written\n");
	printf("# reps: %d per engine, interleaved (engine A rep 1, engine B rep 1, ..., A rep 2, ...),\n"
	       "#   one warm-up repetition per engine first; figures are medians over the reps\n",
	       opt.reps);
	printf("# grid: each repetition has a closed-loop phase (each call delivered everywhere\n"
	       "#   before the next: cpu/write, latency, segs/write) and an open-loop phase (calls back\n"
	       "#   to back: cpu/write under load, MB/s); writevvtest: open loop only, as the original\n");
	printf("# io_uring: setup flags %s, engine 'uring' uses %s; sendzc: IORING_OP_SEND_ZC "
	       "+ IORING_RECVSEND_FIXED_BUF%s\n",
	       uring_setup_desc, uring_op_send ? "IORING_OP_SEND (SENDMSG for >1 iovec), MSG_WAITALL" : "IORING_OP_WRITEV",
	       " + IORING_SEND_ZC_REPORT_USAGE when accepted");
	for (i = 0; i < N_ENGINES; i++) {
		if (!opt.eng[i])
			continue;
		eng_ok[i] = engines[i].available(eng_why[i], sizeof(eng_why[i])) == 0;
		if (eng_ok[i])
			printf("# engine %-12s available: %s\n", engines[i].name, engines[i].desc);
		else
			printf("# engine %-12s UNAVAILABLE (%s): skipped in this run\n", engines[i].name,
			       eng_why[i]);
	}
	if (opt.eng[ENG_WVV_KERNEL] && !eng_ok[ENG_WVV_KERNEL])
		printf("kernel: unavailable (%s)\n", eng_why[ENG_WVV_KERNEL]);
	printf("# writevv pins: %s\n", getenv("WRITEVV_PIN_DIR") && *getenv("WRITEVV_PIN_DIR")
					    ? getenv("WRITEVV_PIN_DIR") : "/sys/fs/bpf/writevv (default)");
	m = WRITEVV_MODE_DEFAULT;
	if (!writevv_control(WRITEVV_SETMODE, &m))
		printf("# writevv default mode resolves to (WRITEVV_GETMODE): %s\n",
		       wvv_mode_name(wvv_effective_mode()));
	for (i = 0; i < n_recv_modes; i++)
		if (opt.recv[i])
			printf("# receivers '%s': %s\n", recv_modes[i].name, recv_modes[i].desc);
	fflush(stdout);
}
