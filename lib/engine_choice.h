/* SPDX-License-Identifier: MIT */
/* The default mode's per-call engine choice (engine_choice.c). */
#ifndef WRITEVV_ENGINE_CHOICE_H
#define WRITEVV_ENGINE_CHOICE_H

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

#endif
