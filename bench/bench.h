/* SPDX-License-Identifier: MIT */
/* writevv-bench: shared declarations. */
#ifndef WVV_BENCH_H
#define WVV_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "clock.h"
#include "mode_names.h"

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

/* ---- clocks: util/clock.h (CLOCK_MONOTONIC has bpf_ktime_get_ns's base) -*/

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

struct conns {
	int n;
	const struct recv_mode *mode;
	int set;                  /* engines[].set that uses it */
	int dbase;                /* first index in the discard program's counters */
	int *snd;                 /* sender ends: blocking */
	bool snd_closed;          /* descriptors closed: only io_uring's file table holds them */
	unsigned char *drained;   /* 1: a thread drains and checks it; 0: BPF discard */
	int ndrained, ndiscard;
	pid_t rx_pid;             /* the receiver process */
	int ctl;
	int max_calls;
	struct rx_shared *sh;     /* MAP_SHARED with the receiver process */
	size_t sh_bytes;
	uint64_t *discard_base;   /* per-socket discard counters at the start of the rep */
	uint64_t discard_total_base;
	uint64_t *acked_base;     /* per-socket tcpi_bytes_acked at the start of the rep */
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

/* n connections of the given kind; the receiving ends live in a child
 * process. dbase: first index of this set in the discard program's
 * counters; max_calls: the most calls a phase will make on it. */
struct conns *conns_open(const struct recv_mode *mode, int n, int set, int dbase, int max_calls);
void conns_drop_sender_fds(struct conns *c);
void conns_stop_rx(struct conns *c);
void conns_close(struct conns *c);

/* Prepare the receivers for a phase of 'calls' calls of 'total' bytes;
 * the sender then fills c->sh->start_ns[k], the receivers c->sh->done_ns. */
void rx_begin(struct conns *c, size_t total, uint32_t seed_base, int calls);
/* Wait until calls [0, ncalls) are delivered everywhere. 0 or -1 (message
 * already printed: run failed). 'record_discard_k' >= 0 copies the discard
 * sockets' arrival stamps into done_ns for that call. */
int rx_wait(struct conns *c, int ncalls, int record_discard_k);
/* After the repetition: checks per-socket byte counts (discard sockets and
 * bytes_acked at the sender) and sums TCP counters. */
struct tcp_sums {
	bool valid; /* false: the sender descriptors are closed */
	uint64_t segs_out, retrans, bytes_acked;
};
void tcp_snapshot(struct conns *c, struct tcp_sums *s);
int rx_finish(struct conns *c, const struct tcp_sums *before, struct tcp_sums *after);
uint64_t softnet_drops(void);

/* ---- engines.c -----------------------------------------------------------*/
struct zc_usage {
	uint64_t notifs, copied;
};

enum { ENG_LOOP, ENG_URING, ENG_MEMFD, ENG_SENDZC, ENG_WVV_KERNEL, ENG_WVV_USER,
       ENG_WVV_URING, ENG_WVV_SENDFILE, ENG_WVV_ZEROCOPY, ENG_WVV_DEFAULT, N_ENGINES };

struct engine {
	const char *name;
	/* connection set: 1, or 0 for the engines that send zero-copy
	 * (sendzc, wvv-zerocopy, wvv-default): writevv's kernel engine puts
	 * set 1's sockets in its sockhash, which clears SOCK_SUPPORT_ZC, and
	 * SEND_ZC then fails there with EOPNOTSUPP */
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
extern uint64_t uring_resubmits;
extern bool zc_report_usage;
extern int uring_op_send; /* 0: IORING_OP_WRITEV, 1: IORING_OP_SEND(MSG) */
extern unsigned uring_setup_flags;
extern const char *uring_setup_desc;
int engines_init(int max_targets, char *why, size_t len);
int engines_attach(int set, const int *fds, int n);
void engines_detach(int set);
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
	uint64_t retrans;   /* summed over reps (tcpi_total_retrans: includes TLP probes) */
	uint64_t backlog_drops; /* softnet_stat drops during this engine's reps (machine-wide) */
	uint64_t resubmits;     /* io_uring engines: short writes resubmitted */
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
	double secs;        /* wall time the cell took, warm-up included */
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
