/* SPDX-License-Identifier: MIT */
/*
 * writevv-bench: writevv's engines and the alternatives side by side, in one
 * process, on the same connections, with interleaved repetitions.
 * See BENCHMARKS.md and `writevv-bench --help`.
 */
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

struct bench_opts opt;
struct cell *cells;
int ncells;


static uint32_t g_seed = 1;
char eng_why[N_ENGINES][200];
bool eng_ok[N_ENGINES];

/* ---- running -----------------------------------------------------------------*/
struct phase_out {
	double cpu, wall, mbps, p50, p99, segs;
	bool lat;
	uint64_t retrans;
};

struct rep_out {
	struct phase_out cl, op; /* closed loop, open loop */
};

static void build_iov(struct iovec *iov, int iovcnt, uint32_t seed, size_t total)
{
	const uint8_t *p = pattern_at(seed);
	size_t piece = total / (size_t)iovcnt, off = 0;
	int i;

	for (i = 0; i < iovcnt; i++) {
		size_t l = i == iovcnt - 1 ? total - off : piece;

		iov[i].iov_base = (void *)(p + off);
		iov[i].iov_len = l;
		off += l;
	}
}

/*
 * One phase of a repetition: 'calls' calls of engine e on all of c's
 * sockets. Closed loop: each call is delivered everywhere before the next
 * one starts (latency of an isolated call). Open loop: calls back to back,
 * the wait for delivery at the end is part of the wall time (throughput).
 */
/* The writevv engine that must stay in effect for engine e, or -1. */
static int wvv_expected_mode(int e)
{
	if (e == ENG_WVV_KERNEL)
		return WRITEVV_MODE_KERNEL;
	if (e == ENG_WVV_URING)
		return WRITEVV_MODE_IOURING;
	if (e == ENG_WVV_SENDFILE)
		return WRITEVV_MODE_SENDFILE;
	if (e == ENG_WVV_ZEROCOPY)
		return WRITEVV_MODE_ZEROCOPY;
	return -1;
}

/* 0, or 1 when the engine stopped being what it claims (the BPF program
 * was unloaded meanwhile, ...): the phase is abandoned, reason in eng_why. */
static int run_phase(int e, struct conns *c, size_t total, int iovcnt, int calls, bool open_loop,
		     struct phase_out *o)
{
	int want_mode = wvv_expected_mode(e);
	int n = c->n, k, i;
	uint64_t *start, *done;
	size_t *rets = malloc(sizeof(size_t) * (size_t)n);
	int *errs = malloc(sizeof(int) * (size_t)n);
	uint32_t seed = g_seed;
	struct tcp_sums before, after;
	uint64_t cpu = 0, t0, t1, *lat;
	size_t nlat = 0, stride, idx;

	if (!rets || !errs)
		abort();
	g_seed += (uint32_t)calls;
	tcp_snapshot(c, &before);
	rx_begin(c, total, seed, calls);
	start = c->sh->start_ns;
	done = c->sh->done_ns;
	t0 = now_ns();
	for (k = 0; k < calls; k++) {
		struct iovec iov[MAX_IOV];
		uint64_t c0;
		int full;

		build_iov(iov, iovcnt, seed + (uint32_t)k, total);
		start[k] = now_ns();
		c0 = thread_cpu_ns();
		full = engines[e].call(c->snd, n, iov, iovcnt, total, rets, errs);
		cpu += thread_cpu_ns() - c0;
		if (full != n) {
			for (i = 0; i < n; i++)
				if (errs[i] || rets[i] != total)
					break;
			fprintf(stderr, "\nwritevv-bench: FAILED: engine %s: %d of %d targets took "
				"everything; target %d: returned %zd, error %s\n",
				engines[e].name, full, n, i < n ? i : -1, i < n ? (ssize_t)rets[i] : 0,
				i < n ? strerror(errs[i]) : "-");
			exit(1);
		}
		if (want_mode >= 0 && wvv_effective_mode() != want_mode) {
			const char *st = writevv_kernel_status();

			snprintf(eng_why[e], sizeof(eng_why[e]),
				 "left %s mode after %d calls (now %s)%s%s", wvv_mode_name(want_mode), k + 1,
				 wvv_mode_name(wvv_effective_mode()), st && *st ? ": " : "", st ? st : "");
			fprintf(stderr, "\nwritevv-bench: engine %s %s; its results are dropped\n",
				engines[e].name, eng_why[e]);
			/* let what was written arrive before the next phase starts */
			if (rx_wait(c, k + 1, -1))
				exit(1);
			free(rets);
			free(errs);
			return 1;
		}
		if (!open_loop && rx_wait(c, k + 1, k))
			exit(1);
	}
	if (open_loop && rx_wait(c, calls, -1))
		exit(1);
	t1 = now_ns();
	if (rx_finish(c, &before, &after))
		exit(1);

	o->cpu = (double)cpu / ((double)calls * n);
	o->wall = (double)(t1 - t0) / ((double)calls * n);
	o->mbps = (double)calls * n * (double)total / (double)(t1 - t0) * 1e3;
	o->segs = after.valid ? (double)(after.segs_out - before.segs_out) / ((double)calls * n) : NAN;
	o->retrans = after.retrans - before.retrans;

	/* latency: call start -> last byte at each receiver; at most ~1M samples */
	stride = ((size_t)calls * (size_t)n + 999999) / 1000000;
	if (!stride)
		stride = 1;
	lat = malloc(sizeof(uint64_t) * ((size_t)calls * (size_t)n / stride + 1));
	if (!lat)
		abort();
	for (idx = 0; idx < (size_t)calls * (size_t)n; idx += stride) {
		size_t kk = idx / (size_t)n;

		if (done[idx] && done[idx] >= start[kk])
			lat[nlat++] = done[idx] - start[kk];
	}
	o->lat = nlat > 0;
	o->p50 = pct_u64(lat, nlat, 50) / 1e3;
	o->p99 = pct_u64(lat, nlat, 99) / 1e3;
	free(lat);
	free(rets);
	free(errs);
	return 0;
}

static int run_rep(int e, struct conns *c, size_t total, int iovcnt, int closed_calls,
		   int open_calls, struct rep_out *o)
{
	char why[200];

	memset(o, 0, sizeof(*o));
	if (engines[e].prepare(why, sizeof(why))) {
		fprintf(stderr, "writevv-bench: engine %s: %s\n", engines[e].name, why);
		snprintf(eng_why[e], sizeof(eng_why[e]), "%s", why);
		return 1;
	}
	if (closed_calls > 0 && run_phase(e, c, total, iovcnt, closed_calls, false, &o->cl))
		return 1;
	if (open_calls > 0 && run_phase(e, c, total, iovcnt, open_calls, true, &o->op))
		return 1;
	return 0;
}

#define PH_CL 0
#define PH_OP 1
/* median over repetitions of one figure of one phase */
static double median_phase(struct rep_out *ro, int reps, int e, int ph,
			   double (*get)(const struct phase_out *), bool need_lat, double *lo,
			   double *hi, int *count)
{
	double v[256];
	int r, n = 0;

	for (r = 0; r < reps && n < 256; r++) {
		const struct phase_out *po = ph == PH_CL ? &ro[r * N_ENGINES + e].cl
							 : &ro[r * N_ENGINES + e].op;

		if (need_lat && !po->lat)
			continue;
		v[n++] = get(po);
	}
	if (count)
		*count = n;
	if (!n)
		return NAN;
	r = n;
	{
		double m = median_d(v, n);

		if (lo)
			*lo = v[0];
		if (hi)
			*hi = v[r - 1];
		return m;
	}
}

static double g_cpu(const struct phase_out *p) { return p->cpu; }
static double g_wall(const struct phase_out *p) { return p->wall; }
static double g_mbps(const struct phase_out *p) { return p->mbps; }
static double g_p50(const struct phase_out *p) { return p->p50; }
static double g_p99(const struct phase_out *p) { return p->p99; }
static double g_segs(const struct phase_out *p) { return p->segs; }

static void run_cell(struct conns **cs, const char *workload, size_t total, int iovcnt,
		     int closed_calls, int open_calls)
{
	struct conns *c = cs[0] ? cs[0] : cs[1];
	uint64_t t_cell = now_ns();
	struct cell *cell;
	struct rep_out *ro = calloc((size_t)opt.reps * N_ENGINES, sizeof(*ro));
	bool ok[N_ENGINES];
	int e, r;

	cells = realloc(cells, sizeof(*cells) * (size_t)(ncells + 1));
	if (!cells || !ro)
		abort();
	cell = &cells[ncells++];
	memset(cell, 0, sizeof(*cell));
	cell->recv = c->mode->name;
	cell->workload = workload;
	cell->n = c->n;
	cell->payload = total;
	cell->iovcnt = iovcnt;
	cell->closed_calls = closed_calls;
	cell->open_calls = open_calls;
	cell->reps = opt.reps;

	/* availability now: the BPF program may have been loaded or unloaded
	 * since the start (engines of a set that was not opened stay out) */
	for (e = 0; e < N_ENGINES; e++) {
		ok[e] = opt.eng[e] && cs[engines[e].set] &&
			engines[e].available(eng_why[e], sizeof(eng_why[e])) == 0;
		if (opt.eng[e] && !ok[e])
			snprintf(cell->e[e].why, sizeof(cell->e[e].why), "unavailable: %.200s",
				 cs[engines[e].set] ? eng_why[e] : "its connection set was not opened");
		if (e == ENG_WVV_KERNEL && opt.eng[e] && !ok[e])
			printf("kernel: unavailable (%s)\n", eng_why[e]);
	}
	/* warm-up: one short repetition per engine (lazy set-up, caches, cwnd) */
	for (e = 0; e < N_ENGINES; e++) {
		struct rep_out w;

		if (ok[e] && run_rep(e, cs[engines[e].set], total, iovcnt, closed_calls < 2 ? closed_calls : 2,
				     open_calls < 3 ? open_calls : 3, &w)) {
			ok[e] = false;
			snprintf(cell->e[e].why, sizeof(cell->e[e].why), "failed: %.200s", eng_why[e]);
		}
	}
	for (r = 0; r < opt.reps; r++) {
		for (e = 0; e < N_ENGINES; e++) {
			struct zc_usage z0 = zc_usage;
			uint64_t d0, u0 = uring_resubmits;

			if (!ok[e])
				continue;
			d0 = softnet_drops();
			if (run_rep(e, cs[engines[e].set], total, iovcnt, closed_calls, open_calls,
				    &ro[r * N_ENGINES + e])) {
				ok[e] = false;
				snprintf(cell->e[e].why, sizeof(cell->e[e].why), "failed: %.200s", eng_why[e]);
				continue;
			}
			cell->e[e].backlog_drops += softnet_drops() - d0;
			cell->e[e].resubmits += uring_resubmits - u0;
			cell->e[e].zc.notifs += zc_usage.notifs - z0.notifs;
			cell->e[e].zc.copied += zc_usage.copied - z0.copied;
		}
		fprintf(stderr, ".");
	}
	for (e = 0; e < N_ENGINES; e++) {
		struct eng_result *er = &cell->e[e];
		int nl = 0, ph_lat = closed_calls > 0 ? PH_CL : PH_OP;

		if (!ok[e])
			continue;
		er->ran = true;
		for (r = 0; r < opt.reps; r++)
			er->retrans += ro[r * N_ENGINES + e].cl.retrans + ro[r * N_ENGINES + e].op.retrans;
		if (closed_calls > 0) {
			er->cpu = median_phase(ro, opt.reps, e, PH_CL, g_cpu, false, &er->cpu_lo,
					       &er->cpu_hi, NULL);
			er->segs = median_phase(ro, opt.reps, e, PH_CL, g_segs, false, NULL, NULL, NULL);
		}
		if (open_calls > 0) {
			er->cpu_open = median_phase(ro, opt.reps, e, PH_OP, g_cpu, false, &er->cpu_open_lo,
						    &er->cpu_open_hi, NULL);
			er->wall_ns = median_phase(ro, opt.reps, e, PH_OP, g_wall, false, NULL, NULL, NULL);
			er->mbps = median_phase(ro, opt.reps, e, PH_OP, g_mbps, false, NULL, NULL, NULL);
			er->segs_open = median_phase(ro, opt.reps, e, PH_OP, g_segs, false, NULL, NULL, NULL);
		}
		er->p50_us = median_phase(ro, opt.reps, e, ph_lat, g_p50, true, NULL, NULL, &nl);
		er->p99_us = median_phase(ro, opt.reps, e, ph_lat, g_p99, true, NULL, NULL, NULL);
		er->lat_valid = nl > 0;
		er->lat_open = ph_lat == PH_OP;
	}
	free(ro);
	fprintf(stderr, "\n");
	cell->secs = (double)(now_ns() - t_cell) / 1e9;
	report_cell(cell);
	if (opt.csv)
		csv_write(opt.csv); /* after every cell: an interrupted run keeps its results */
}

static int grid_closed_calls(int open_calls)
{
	if (opt.closed_calls >= 0)
		return opt.closed_calls;
	return open_calls < opt.max_closed ? open_calls : opt.max_closed;
}

static int grid_calls(int n, size_t p)
{
	double w = (double)opt.budget_writes / n, b = (double)opt.budget_bytes / ((double)n * (double)p);
	double c = w < b ? w : b;

	if (opt.calls > 0)
		return opt.calls;
	if (c < 1)
		c = 1;
	if (c > opt.max_calls)
		c = opt.max_calls;
	return (int)c;
}

/*
 * Set 0: the engines that send zero-copy; set 1: the others, on
 * connections of the same kind (writevv's kernel engine puts set 1's
 * sockets in its sockhash, and a socket that has been in a sockmap no
 * longer supports SEND_ZC). The io_uring engines get their set as
 * registered files; when both sets do not fit in RLIMIT_NOFILE, set 0's
 * descriptors are closed, only the ring's file table keeps those sockets,
 * and the writevv engines of set 0 (which need descriptors) use set 1.
 */
static void conns_open_sets(const struct recv_mode *rm, int n, int max_calls, struct conns **cs)
{
	static const int set0_wvv[] = { ENG_WVV_ZEROCOPY, ENG_WVV_DEFAULT };
	bool need[2] = { false, false };
	struct rlimit rl;
	int e, k;

	getrlimit(RLIMIT_NOFILE, &rl);
	for (k = 0; k < 2; k++)
		engines[set0_wvv[k]].set = (rlim_t)(2 * n + 256) > rl.rlim_cur ? 1 : 0;
	if (engines[ENG_WVV_DEFAULT].set)
		fprintf(stderr, "  set 0 does not fit beside set 1 in RLIMIT_NOFILE: wvv-zerocopy and "
			"wvv-default write to set 1 (no zero-copy after wvv-kernel ran there)\n");
	for (e = 0; e < N_ENGINES; e++)
		if (opt.eng[e] && eng_ok[e])
			need[engines[e].set] = true;
	cs[0] = cs[1] = NULL;
	if (need[0]) {
		cs[0] = conns_open(rm, n, 0, 0, max_calls);
		if (engines_attach(0, cs[0]->snd, n) == 0 && need[1] &&
		    (rlim_t)(2 * n + 256) > rl.rlim_cur) {
			conns_drop_sender_fds(cs[0]);
			fprintf(stderr, "  set 0: descriptors closed, io_uring's file table holds the "
				"sockets (segs/write and bytes_acked not available for sendzc)\n");
		}
	}
	if (need[1]) {
		cs[1] = conns_open(rm, n, 1, need[0] ? n : 0, max_calls);
		engines_attach(1, cs[1]->snd, n);
	}
}

static void conns_close_sets(struct conns **cs)
{
	int s;

	for (s = 0; s < 2; s++) {
		if (!cs[s])
			continue;
		conns_stop_rx(cs[s]);
		engines_detach(s);
		conns_close(cs[s]);
		cs[s] = NULL;
	}
}

static void raise_nofile(int need)
{
	struct rlimit rl;
	rlim_t cur;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_max < (rlim_t)need && nofile_set((rlim_t)need) == 0) {
		printf("# RLIMIT_NOFILE raised to %d (hard limit was %llu)\n", need,
		       (unsigned long long)rl.rlim_max);
		return;
	}
	cur = nofile_raise_to_hard(NULL);
	printf("# RLIMIT_NOFILE %llu\n", (unsigned long long)cur);
	if (cur < (rlim_t)need)
		printf("# WARNING: %d descriptors wanted; the largest cells may fail\n", need);
}

int main(int argc, char **argv)
{
	int i, j, maxn = 1000, m;
	size_t maxp = 4 * 974;
	cpu_set_t set;
	char why[256];
	uint64_t t_start = now_ns();

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv);
	env.ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (env.sender_cpu >= env.ncpus)
		env.sender_cpu = 0;
	for (i = 0; i < env.ncpus && i < 64; i++)
		if (i != env.sender_cpu)
			env.rx_mask |= 1ul << i;
	if (!env.rx_mask)
		env.rx_mask = 1ul << env.sender_cpu;
	CPU_ZERO(&set);
	CPU_SET(env.sender_cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);

	for (i = 0; i < opt.ntargets; i++)
		if (opt.targets[i] > maxn)
			maxn = opt.targets[i];
	for (i = 0; i < opt.npayloads; i++)
		if (opt.payloads[i] > maxp)
			maxp = opt.payloads[i];
	raise_nofile(2 * maxn + 512);
	pattern_init(maxp);
	net_install_signal_handlers();
	atexit(net_cleanup);
	engines_init(maxn, why, sizeof(why));
	print_header();

	for (m = 0; m < n_recv_modes; m++) {
		const struct recv_mode *rm = &recv_modes[m];
		struct conns *cs[2];

		if (!opt.recv[m])
			continue;
		printf("\n######## receivers: %s ########\n", rm->name);
		if (rm->net == NET_VETH) {
			if (veth_up(why, sizeof(why))) {
				printf("receivers %s: unavailable (%s): skipped\n", rm->name, why);
				continue;
			}
			printf("# %s\n", veth_desc());
		}
		if (rm->rx == RX_DISCARD) {
			if (discard_load(why, sizeof(why))) {
				printf("receivers %s: unavailable (%s): skipped\n", rm->name, why);
				continue;
			}
			printf("# discard: sockets i %% %d == 0 drained and checked byte by byte, the others "
			       "dropped by the sk_skb verdict (counts checked)\n", env.discard_sample);
		}
		if (opt.wl_writevvtest) {
			conns_open_sets(rm, 1000, opt.loops, cs);
			run_cell(cs, "writevvtest", 4 * 974, 4, 0, opt.loops);
			conns_close_sets(cs);
		}
		if (opt.wl_grid) {
			for (i = 0; i < opt.ntargets; i++) {
				int mc = 1;

				for (j = 0; j < opt.npayloads; j++)
					if (grid_calls(opt.targets[i], opt.payloads[j]) > mc)
						mc = grid_calls(opt.targets[i], opt.payloads[j]);
				conns_open_sets(rm, opt.targets[i], mc, cs);
				for (j = 0; j < opt.npayloads; j++) {
					int oc = grid_calls(opt.targets[i], opt.payloads[j]);

					run_cell(cs, "grid", opt.payloads[j], 1, grid_closed_calls(oc), oc);
				}
				conns_close_sets(cs);
			}
		}
	}
	if (opt.csv && csv_write(opt.csv) == 0)
		printf("\n# CSV written to %s\n", opt.csv);
	if (opt.plot && plot_write(opt.plot) == 0)
		printf("# plots written to %s\n", opt.plot);
	if (opt.calibrate)
		calibrate_print();
	printf("\n# total run time %.1f s\n", (double)(now_ns() - t_start) / 1e9);
	return 0;
}
