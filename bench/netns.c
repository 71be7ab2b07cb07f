/* SPDX-License-Identifier: MIT */
/*
 * writevv-bench: the veth pair into a private network namespace, and the
 * clean-up of everything the benchmark changes on the machine (also on a
 * signal); the input backlog's drops.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "net_internal.h"

/* ---- machine state changes and their clean-up ---------------------------*/
static char ns_name[32], ns_path[96], veth_a[16], veth_b[16];
static char addr_a[20], veth_info[512];
char addr_b[20];
static volatile sig_atomic_t ns_created;
static volatile sig_atomic_t backlog_changed;
static char backlog_saved[32];
int ns_fd = -1, self_ns_fd = -1;

static const char BACKLOG_PATH[] = "/proc/sys/net/core/netdev_max_backlog";

static int read_file_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = read(fd, buf, len - 1);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = 0;
	while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == ' '))
		buf[--r] = 0;
	return 0;
}

static int write_file_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = write(fd, s, strlen(s));
	close(fd);
	return r < 0 ? -1 : 0;
}

/* Only async-signal-safe calls: used from the signal handler too. */
static void cleanup_async(void)
{
	if (backlog_changed) {
		int fd = open(BACKLOG_PATH, O_WRONLY);

		if (fd >= 0) {
			if (write(fd, backlog_saved, strlen(backlog_saved)) < 0) {
				/* nothing more can be done here */
			}
			close(fd);
		}
		backlog_changed = 0;
	}
	if (ns_created) {
		/* What `ip netns del` does; the namespace and with it the veth
		 * pair go away when this process's sockets are closed. */
		umount2(ns_path, MNT_DETACH);
		unlink(ns_path);
		ns_created = 0;
	}
}

static void on_signal(int sig)
{
	static const char msg[] = "\nwritevv-bench: interrupted, cleaning up\n";

	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* ignore */
	}
	cleanup_async();
	signal(sig, SIG_DFL);
	raise(sig);
}

void net_install_signal_handlers(void)
{
	struct sigaction sa;
	int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGABRT, SIGFPE };
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_cmd(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return rc == 0 ? 0 : -1;
}

void net_cleanup(void)
{
	if (ns_fd >= 0) {
		close(ns_fd);
		ns_fd = -1;
	}
	if (ns_created) {
		run_cmd("ip link del %s 2>/dev/null", veth_a);
		run_cmd("ip netns del %s 2>/dev/null", ns_name);
		/* if ip failed, do it by hand */
		cleanup_async();
	}
	if (backlog_changed) {
		write_file_str(BACKLOG_PATH, backlog_saved);
		backlog_changed = 0;
		fprintf(stderr, "writevv-bench: net.core.netdev_max_backlog restored to %s\n",
			backlog_saved);
	}
}

/* Namespaces left by a benchmark that was killed with SIGKILL. */
static void remove_stale_namespaces(void)
{
	DIR *d = opendir("/run/netns");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		int pid;

		if (sscanf(de->d_name, "wvvb-%d", &pid) == 1 && pid > 0 &&
		    kill(pid, 0) < 0 && errno == ESRCH) {
			fprintf(stderr, "writevv-bench: removing stale namespace %s\n", de->d_name);
			run_cmd("ip netns del %s 2>/dev/null", de->d_name);
		}
	}
	closedir(d);
}

bool veth_is_up(void)
{
	return ns_fd >= 0;
}

const char *veth_desc(void)
{
	return veth_info;
}

int veth_up(char *why, size_t len)
{
	int pid = getpid();
	unsigned net = ((unsigned)pid & 0x3fffu) << 2; /* a /30 inside 10.200.0.0/16 */
	char rps[64], cur[32];

	if (ns_fd >= 0)
		return 0;
	remove_stale_namespaces();
	snprintf(ns_name, sizeof(ns_name), "wvvb-%d", pid);
	snprintf(ns_path, sizeof(ns_path), "/run/netns/%s", ns_name);
	snprintf(veth_a, sizeof(veth_a), "wvb%da", pid % 1000000);
	snprintf(veth_b, sizeof(veth_b), "wvb%db", pid % 1000000);
	snprintf(addr_a, sizeof(addr_a), "10.200.%u.%u", (net >> 8) & 255, (net & 255) + 1);
	snprintf(addr_b, sizeof(addr_b), "10.200.%u.%u", (net >> 8) & 255, (net & 255) + 2);

	if (access("/usr/sbin/ip", X_OK) && access("/sbin/ip", X_OK) && access("/usr/bin/ip", X_OK)) {
		snprintf(why, len, "the ip command (iproute2) is not installed");
		return -1;
	}
	if (run_cmd("ip netns add %s", ns_name)) {
		snprintf(why, len, "ip netns add %s failed (need root)", ns_name);
		return -1;
	}
	ns_created = 1;
	if (run_cmd("ip link add %s type veth peer name %s netns %s", veth_a, veth_b, ns_name) ||
	    run_cmd("ip addr add %s/30 dev %s", addr_a, veth_a) ||
	    run_cmd("ip link set %s up", veth_a) ||
	    run_cmd("ip -n %s addr add %s/30 dev %s", ns_name, addr_b, veth_b) ||
	    run_cmd("ip -n %s link set %s up", ns_name, veth_b) ||
	    run_cmd("ip -n %s link set lo up", ns_name)) {
		snprintf(why, len, "creating the veth pair %s/%s failed", veth_a, veth_b);
		net_cleanup();
		return -1;
	}
	/* RPS: the receive work of the namespace side on the receivers' CPUs */
	snprintf(rps, sizeof(rps), "%lx", env.rx_mask);
	if (run_cmd("ip netns exec %s sh -c 'echo %s > /sys/class/net/%s/queues/rx-0/rps_cpus'",
		    ns_name, rps, veth_b)) {
		snprintf(why, len, "setting rps_cpus on %s failed", veth_b);
		net_cleanup();
		return -1;
	}
	if (read_file_str(BACKLOG_PATH, backlog_saved, sizeof(backlog_saved))) {
		snprintf(why, len, "cannot read %s", BACKLOG_PATH);
		net_cleanup();
		return -1;
	}
	if (atol(backlog_saved) < env.backlog_set) {
		snprintf(cur, sizeof(cur), "%ld", env.backlog_set);
		backlog_changed = 1;
		if (write_file_str(BACKLOG_PATH, cur)) {
			backlog_changed = 0;
			snprintf(why, len, "cannot raise netdev_max_backlog");
			net_cleanup();
			return -1;
		}
	}
	ns_fd = open(ns_path, O_RDONLY | O_CLOEXEC);
	if (self_ns_fd < 0)
		self_ns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns_fd < 0 || self_ns_fd < 0) {
		snprintf(why, len, "cannot open the namespace: %s", strerror(errno));
		net_cleanup();
		return -1;
	}
	snprintf(veth_info, sizeof(veth_info),
		 "veth %s (%s/30) <-> %s (%s/30) in netns %s; rps_cpus(%s)=%s; "
		 "netdev_max_backlog %s -> %ld (restored on exit)",
		 veth_a, addr_a, veth_b, addr_b, ns_name, veth_b, rps, backlog_saved,
		 backlog_changed ? env.backlog_set : atol(backlog_saved));
	return 0;
}

/* Packets dropped at the per-CPU input backlog (netdev_max_backlog), all
 * CPUs: the second column of /proc/net/softnet_stat. */
uint64_t softnet_drops(void)
{
	FILE *f = fopen("/proc/net/softnet_stat", "r");
	unsigned long long total = 0;
	unsigned processed, dropped;
	char line[512];

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%x %x", &processed, &dropped) == 2)
			total += dropped;
	fclose(f);
	return total;
}
