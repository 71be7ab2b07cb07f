/* SPDX-License-Identifier: MIT */
/* writevv-bench: shared declarations. */
#ifndef WVV_BENCH_H
#define WVV_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define MAX_IOV 64

/* ---- payload pattern ----------------------------------------------------
 * A pseudo-random table; call number s sends the bytes starting at
 * pattern_at(s), so the contents change from call to call and a byte that
 * lands in the wrong call, socket or offset is caught by memcmp. */
#define PAT_OFFSETS 65521u
extern uint8_t *pat_table;
extern size_t pat_len;
void pattern_init(size_t max_total);
static inline const uint8_t *pattern_at(uint32_t seed)
{
	return pat_table + ((uint64_t)seed * 2654435761u) % PAT_OFFSETS;
}

/* ---- clocks --------------------------------------------------------------*/
uint64_t now_ns(void);        /* CLOCK_MONOTONIC (same base as bpf_ktime_get_ns) */
uint64_t thread_cpu_ns(void); /* CLOCK_THREAD_CPUTIME_ID */

/* ---- receiver modes ------------------------------------------------------*/
enum net_kind { NET_LO, NET_VETH };
enum rx_kind { RX_DRAIN, RX_DISCARD };

struct recv_mode {
	const char *name;
	enum net_kind net;
	enum rx_kind rx;
	const char *desc;
};
extern const struct recv_mode recv_modes[];
extern const int n_recv_modes;

/* ---- receivers -----------------------------------------------------------*/
/* What the receivers expect in the current repetition. */
struct rx_shared {
	_Atomic uint32_t gen;     /* bumped per repetition; sockets reset on change */
	int n;                    /* sockets */
	size_t total;             /* bytes per call per socket */
	uint32_t seed_base;       /* call k carries pattern_at(seed_base + k) */
	int calls;
	uint64_t *start_ns;       /* [calls], written by the sender before call k */
	uint64_t *done_ns;        /* [calls * n], last byte of call k at socket i */
	_Atomic uint32_t completed; /* (socket, call) pairs fully received by threads */
	_Atomic uint32_t wake_at;
	_Atomic int failed;
	char why[512];
};

struct rx_sock;

struct conns {
	int n;
	const struct recv_mode *mode;
	int dbase;
	int *snd;                 /* sender ends: blocking */
	int *rcv;                 /* receiver ends: non-blocking */
	unsigned char *drained;   /* 1: a thread drains and checks it; 0: BPF discard */
	int ndrained, ndiscard;
	struct rx_sock *rxs;
	int nthreads;
	struct rx_thread *threads;
	int stop_efd;
	struct rx_shared sh;
	/* discard mode: per-socket byte counters at the start of the rep */
	uint64_t *discard_base;
	uint64_t discard_total_base;
	/* per-socket tcp_info at the start of the rep */
	uint64_t *acked_base;
};

/* ---- net.c ---------------------------------------------------------------*/
struct bench_env {
	int sender_cpu;
	char rx_cpus[64];          /* e.g. "1" */
	unsigned long rx_mask;     /* CPUs of the receivers / RPS */
	int ncpus;
	const char *cc;            /* congestion control, "cubic" */
	long backlog_set;          /* netdev_max_backlog while veth mode is up */
	int rx_threads;
	int discard_sample;        /* every Nth socket drained in discard mode */
};
extern struct bench_env env;

void net_install_signal_handlers(void);
void net_cleanup(void);
/* Create the namespace pair; 0 or -1 with a reason. */
int veth_up(char *why, size_t len);
bool veth_is_up(void);
const char *veth_desc(void);
int discard_load(char *why, size_t len);
bool discard_loaded(void);

/* dbase: first index of this set in the discard program's counters */
struct conns *conns_open(const struct recv_mode *mode, int n, int dbase);
void conns_close(struct conns *c);

/* Prepare the receivers for a repetition of 'calls' calls of 'total' bytes. */
void rx_begin(struct conns *c, size_t total, uint32_t seed_base, int calls,
	      uint64_t *start_ns, uint64_t *done_ns);
/* Wait until calls [0, ncalls) are delivered everywhere. 0 or -1 (message
 * already printed: run failed). 'record_discard_k' >= 0 copies the discard
 * sockets' arrival stamps into done_ns for that call. */
int rx_wait(struct conns *c, int ncalls, int record_discard_k);
/* After the repetition: checks per-socket byte counts (discard sockets and
 * bytes_acked at the sender) and sums TCP counters. */
struct tcp_sums {
	uint64_t segs_out, retrans, bytes_acked;
};
void tcp_snapshot(struct conns *c, struct tcp_sums *s);
int rx_finish(struct conns *c, const struct tcp_sums *before, struct tcp_sums *after);

/* ---- engines.c -----------------------------------------------------------*/
struct zc_usage {
	uint64_t notifs, copied;
};

enum { ENG_LOOP, ENG_URING, ENG_MEMFD, ENG_SENDZC, ENG_WVV_KERNEL, ENG_WVV_USER,
       ENG_WVV_DEFAULT, N_ENGINES };

struct engine {
	const char *name;
	/* connection set: 0 plain sockets, 1 sockets writevv may put in its
	 * sockhash (that clears SOCK_SUPPORT_ZC, so SEND_ZC would fail there) */
	int set;
	const char *desc;
	/* 0 if usable now, else -1 and a reason */
	int (*available)(char *why, size_t len);
	/* before each repetition (e.g. select the writevv mode); 0 or -1 */
	int (*prepare)(char *why, size_t len);
	/* one call: returns how many targets took everything */
	int (*call)(const int *fds, int n, const struct iovec *iov, int iovcnt,
		    size_t total, size_t *rets, int *errs);
};
extern struct engine engines[N_ENGINES];
extern struct zc_usage zc_usage;
extern bool zc_report_usage;
extern int uring_op_send; /* 0: IORING_OP_WRITEV, 1: IORING_OP_SEND(MSG) */
extern unsigned uring_setup_flags;
extern const char *uring_setup_desc;
int engines_init(int max_targets, char *why, size_t len);
int engine_index(const char *name);
/* Did the last writevv call run in kernel mode? (WRITEVV_GETMODE) */
int wvv_effective_mode(void);

/* ---- stats.c -------------------------------------------------------------*/
double median_d(double *v, int n);
double pct_u64(uint64_t *v, size_t n, double p); /* nearest rank, sorts v */

/* ---- results and reports -------------------------------------------------*/
struct eng_result {
	bool ran;
	char why[256];
	/* closed loop: each call delivered everywhere before the next */
	double cpu;         /* median over reps of sender CPU ns per target-write */
	double cpu_lo, cpu_hi;
	double segs;        /* median TCP segments per target-write */
	/* open loop: calls back to back */
	double cpu_open, cpu_open_lo, cpu_open_hi;
	double wall_ns;     /* wall time per target-write until all delivered */
	double mbps;        /* delivered MB/s (10^6 bytes) */
	double segs_open;
	/* latency: call start to the last byte at each receiver; closed loop
	 * unless the cell has no closed phase (then queueing is included) */
	double p50_us, p99_us; /* medians over reps of per-rep percentiles */
	bool lat_valid, lat_open;
	uint64_t retrans;   /* summed over reps */
	struct zc_usage zc;
};

struct cell {
	const char *recv;
	const char *workload;
	int n;
	size_t payload;
	int iovcnt;
	int closed_calls, open_calls; /* per repetition */
	int reps;
	struct eng_result e[N_ENGINES];
};

extern struct cell *cells;
extern int ncells;

void report_cell(const struct cell *c);
int csv_write(const char *path);
int plot_write(const char *dir);
void calibrate_print(void);
const char *fmt_size(size_t b, char *buf, size_t len);

#endif
