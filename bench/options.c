/* SPDX-License-Identifier: MIT */
/* writevv-bench: the command line. */
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

/* The machine set-up; the command line changes it. */
struct bench_env env = {
	.sender_cpu = 0,
	.cc = "cubic",
	.backlog_set = 100000,
	.rx_threads = 1,
	.discard_sample = 64,
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: writevv-bench [options]\n"
"  --quick              small grid {10,100,1000} x {64B,1400B,64KiB}, 3 reps, writevvtest 20 loops\n"
"  --workload LIST      writevvtest,grid (default: both)\n"
"  --recv LIST          drain,discard,nic,nic-discard (default: drain,discard,nic)\n"
"  --targets LIST       grid target counts (default 10,100,1000,10000)\n"
"  --payloads LIST      grid payload sizes, K/M suffixes (default 64,1400,16K,64K,256K)\n"
"  --engines LIST       loop,uring,memfd,sendzc,wvv-kernel,wvv-user,wvv-uring,wvv-sendfile,\n"
"                       wvv-zerocopy,wvv-default\n"
"                       (default all)\n"
"  --reps N             repetitions per engine and cell (default 5, quick 3)\n"
"  --loops N            writevvtest calls per repetition (default 5000 as the original, quick 20)\n"
"  --calls N            grid: open-loop calls per repetition (default: from a budget per cell)\n"
"  --closed-calls N     grid: closed-loop calls per repetition (default: min(calls, 200); 0: none)\n"
"  --csv FILE           write all results as CSV\n"
"  --plot DIR           write gnuplot scripts and PNG plots into DIR\n"
"  --calibrate          print the fastest engine per payload size (grid)\n"
"  --cpu N              the sender's CPU (default 0); receivers and RPS get the others\n"
"  --rx-threads N       draining threads (default 1)\n"
"  --uring-op OP        writev (default) or send: the io_uring engine's opcode\n"
"  --backlog N          net.core.netdev_max_backlog during nic modes (default 100000)\n"
"  --discard-sample N   discard modes: drain and check every Nth socket (default 64)\n"
"  --cc NAME            TCP_CONGESTION on every socket (default cubic)\n");
}

static size_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (*end == 'k' || *end == 'K')
		v *= 1024;
	else if (*end == 'm' || *end == 'M')
		v *= 1024 * 1024;
	return (size_t)v;
}

static void parse_list(const char *arg, void (*fn)(const char *))
{
	char *dup = strdup(arg), *save = NULL, *tok;

	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		fn(tok);
	free(dup);
}

static void add_workload(const char *s)
{
	if (!strcmp(s, "writevvtest"))
		opt.wl_writevvtest = true;
	else if (!strcmp(s, "grid"))
		opt.wl_grid = true;
	else {
		fprintf(stderr, "unknown workload %s\n", s);
		exit(2);
	}
}

static void add_recv(const char *s)
{
	int i;

	for (i = 0; i < n_recv_modes; i++)
		if (!strcmp(s, recv_modes[i].name)) {
			opt.recv[i] = true;
			return;
		}
	fprintf(stderr, "unknown receiver mode %s\n", s);
	exit(2);
}

static void add_engine(const char *s)
{
	int i = engine_index(s);

	if (i < 0) {
		fprintf(stderr, "unknown engine %s\n", s);
		exit(2);
	}
	opt.eng[i] = true;
}

static void add_target(const char *s)
{
	if (opt.ntargets < 16)
		opt.targets[opt.ntargets++] = atoi(s);
}

static void add_payload(const char *s)
{
	if (opt.npayloads < 16)
		opt.payloads[opt.npayloads++] = parse_size(s);
}

void parse_args(int argc, char **argv)
{
	enum { O_QUICK = 256, O_WORKLOAD, O_RECV, O_TARGETS, O_PAYLOADS, O_ENGINES, O_REPS,
	       O_LOOPS, O_CALLS, O_CLOSED, O_CSV, O_PLOT, O_CALIBRATE, O_CPU, O_RXT, O_UOP,
	       O_BACKLOG, O_SAMPLE, O_CC };
	static const struct option lo[] = {
		{ "quick", no_argument, 0, O_QUICK },
		{ "workload", required_argument, 0, O_WORKLOAD },
		{ "recv", required_argument, 0, O_RECV },
		{ "targets", required_argument, 0, O_TARGETS },
		{ "payloads", required_argument, 0, O_PAYLOADS },
		{ "engines", required_argument, 0, O_ENGINES },
		{ "reps", required_argument, 0, O_REPS },
		{ "loops", required_argument, 0, O_LOOPS },
		{ "calls", required_argument, 0, O_CALLS },
		{ "closed-calls", required_argument, 0, O_CLOSED },
		{ "csv", required_argument, 0, O_CSV },
		{ "plot", required_argument, 0, O_PLOT },
		{ "calibrate", no_argument, 0, O_CALIBRATE },
		{ "cpu", required_argument, 0, O_CPU },
		{ "rx-threads", required_argument, 0, O_RXT },
		{ "uring-op", required_argument, 0, O_UOP },
		{ "backlog", required_argument, 0, O_BACKLOG },
		{ "discard-sample", required_argument, 0, O_SAMPLE },
		{ "cc", required_argument, 0, O_CC },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	bool any_recv = false, any_eng = false;
	int c, i;

	opt.closed_calls = -1;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_QUICK: opt.quick = true; break;
		case O_WORKLOAD: parse_list(optarg, add_workload); break;
		case O_RECV: parse_list(optarg, add_recv); any_recv = true; break;
		case O_TARGETS: parse_list(optarg, add_target); break;
		case O_PAYLOADS: parse_list(optarg, add_payload); break;
		case O_ENGINES: parse_list(optarg, add_engine); any_eng = true; break;
		case O_REPS: opt.reps = atoi(optarg); break;
		case O_LOOPS: opt.loops = atoi(optarg); break;
		case O_CALLS: opt.calls = atoi(optarg); break;
		case O_CLOSED: opt.closed_calls = atoi(optarg); break;
		case O_CSV: opt.csv = optarg; break;
		case O_PLOT: opt.plot = optarg; break;
		case O_CALIBRATE: opt.calibrate = true; break;
		case O_CPU: env.sender_cpu = atoi(optarg); break;
		case O_RXT: env.rx_threads = atoi(optarg) > 0 ? atoi(optarg) : 1; break;
		case O_UOP:
			if (strcmp(optarg, "send") && strcmp(optarg, "writev")) {
				fprintf(stderr, "--uring-op writev|send\n");
				exit(2);
			}
			uring_op_send = !strcmp(optarg, "send");
			break;
		case O_BACKLOG: env.backlog_set = atol(optarg); break;
		case O_SAMPLE: env.discard_sample = atoi(optarg) > 0 ? atoi(optarg) : 1; break;
		case O_CC: env.cc = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc) {
		usage(stderr);
		exit(2);
	}
	if (!opt.wl_writevvtest && !opt.wl_grid) {
		opt.wl_grid = true;
		opt.wl_writevvtest = true;
	}
	if (!any_recv)
		opt.recv[0] = opt.recv[1] = opt.recv[2] = true;
	if (!any_eng)
		for (i = 0; i < N_ENGINES; i++)
			opt.eng[i] = true;
	if (!opt.ntargets) {
		static const int q[] = { 10, 100, 1000 }, f[] = { 10, 100, 1000, 10000 };
		const int *t = opt.quick ? q : f;

		opt.ntargets = opt.quick ? 3 : 4;
		for (i = 0; i < opt.ntargets; i++)
			opt.targets[i] = t[i];
	}
	if (!opt.npayloads) {
		static const size_t q[] = { 64, 1400, 65536 }, f[] = { 64, 1400, 16384, 65536, 262144 };
		const size_t *p = opt.quick ? q : f;

		opt.npayloads = opt.quick ? 3 : 5;
		for (i = 0; i < opt.npayloads; i++)
			opt.payloads[i] = p[i];
	}
	if (!opt.reps)
		opt.reps = opt.quick ? 3 : 5;
	if (!opt.loops)
		opt.loops = opt.quick ? 20 : 5000;
	opt.budget_writes = opt.quick ? 3000 : 20000;
	opt.budget_bytes = opt.quick ? (8l << 20) : (64l << 20);
	opt.max_calls = opt.quick ? 300 : 2000;
	opt.max_closed = opt.quick ? 60 : 200;
}
