/* SPDX-License-Identifier: MIT */
/* The default mode's policy: which engine runs a call, learnt per thread (engine_choice.c). */
#ifndef WRITEVV_ENGINE_CHOICE_H
#define WRITEVV_ENGINE_CHOICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	WVV_CHOICE_URING = 0,    /* a copy per target, one io_uring batch */
	WVV_CHOICE_SENDFILE = 1, /* one copy into a memfd, sendfile per target */
	WVV_CHOICE_ZEROCOPY = 2, /* one copy into a registered buffer, SEND_ZC per target */
	WVV_CHOICE_ENGINES = 3
};
#define WVV_CHOICE_ALL ((1u << WVV_CHOICE_ENGINES) - 1)

/* Size classes: [1 KiB, 2 KiB), [2 KiB, 4 KiB), ... the last one open. */
#define WVV_CHOICE_MIN_SHIFT 10
#define WVV_CHOICE_CLASSES 10
#define WVV_CHOICE_WARM 3            /* calls measured per engine before choosing */
#define WVV_CHOICE_EXPLORE_EVERY 32  /* one call in this many tries another engine */

/* What one thread learnt about one size class. Zero-initialised. */
struct wvv_choice {
	uint64_t cost[WVV_CHOICE_ENGINES];   /* EWMA of sender CPU ns per target-write */
	uint32_t samples[WVV_CHOICE_ENGINES];
	uint32_t since_explore;
	uint32_t explored;                   /* the engine explored last */
};

/* Class of a call of 'total' bytes, or -1 below 1 KiB (io_uring always:
 * the other engines' fixed cost per target never pays there). */
int wvv_choice_class(size_t total);
/* The engine (WVV_CHOICE_*) the next call of this class should use, among
 * those in the bit mask 'eligible' (1 << WVV_CHOICE_URING is always in). */
int wvv_choice_pick(struct wvv_choice *k, unsigned eligible);
/* Record what a call on 'engine' cost per target. */
void wvv_choice_record(struct wvv_choice *k, int engine, uint64_t ns_per_target);
/* This thread's CPU time in ns (0 if unavailable). */
uint64_t wvv_thread_cpu_ns(void);

/*
 * The share of a thread's recent zero-copy targets that zero-copy did not
 * help (the kernel copied the data anyway, refused zero-copy, or they were
 * sent copies for those reasons), in 1/1024, a moving average over the
 * last ~16. The zero-copy engine keeps it with its thread's state and
 * reports each target; the default mode asks whether it is most of them.
 */
void wvv_copied_share_add(unsigned *share, bool copied);
bool wvv_copied_share_mostly(unsigned share);

/* How the default mode runs one call (wvv_default_plan). */
struct wvv_plan {
	int engine;               /* WRITEVV_MODE_* */
	struct wvv_choice *learn; /* the class to record the call's cost in, or NULL */
	bool zc_skip_copied;      /* zero-copy: plain sends where it was copied anyway */
	uint64_t cpu0;            /* the thread's CPU time when the call started */
};

/* What the policy asks of the engines, each only when it needs the answer
 * (zc_max sets the zero-copy buffer up; zc_idle unpins it). */
struct wvv_engine_facts {
	bool (*sendfile_usable)(void);
	bool (*zc_mostly_copied)(void);
	size_t (*zc_max)(void);
	void (*zc_idle)(void);
};

/* While the kernel copies a thread's zero-copy sends anyway, one call in
 * this many tries zero-copy again. */
#define WVV_ZC_RECHECK_EVERY 256

/* One thread's default-mode state. Zero-initialised. */
struct wvv_default_state {
	struct wvv_choice choices[WVV_CHOICE_CLASSES];
	unsigned zc_recheck;
};

/*
 * The plan for a call of 'total' bytes in the default mode, given 'engine',
 * the engine a small call uses (WRITEVV_MODE_IOURING, or the userland loop
 * without io_uring), and 'sendfile_min' (0: learn the choice; else the
 * size from which sendfile runs). wvv_default_plan: with this thread's
 * state and WRITEVV_SENDFILE_MIN.
 */
struct wvv_plan wvv_default_plan_with(struct wvv_default_state *st,
				      const struct wvv_engine_facts *f, size_t total,
				      int engine, size_t sendfile_min);
struct wvv_plan wvv_default_plan(const struct wvv_engine_facts *f, size_t total, int engine);
/* A plan that runs 'engine' as it is (the other modes). */
struct wvv_plan wvv_plan_fixed(int engine);
/* Before and after the call ran: record what it cost per target, in the
 * class it was planned in, as the engine that ran it ('ran', WRITEVV_MODE_*). */
void wvv_plan_start(struct wvv_plan *p);
void wvv_plan_done(const struct wvv_plan *p, int ran, int fdcnt);

#endif
