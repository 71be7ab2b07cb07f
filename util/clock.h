/* SPDX-License-Identifier: MIT */
/* Clocks in nanoseconds, for the tools (loader, bench, relay, tests). */
#ifndef WVV_UTIL_CLOCK_H
#define WVV_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

uint64_t clock_ns(clockid_t clk);

/* CLOCK_MONOTONIC: durations and deadlines */
static inline uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
/* CPU time of the calling thread, of the whole process */
static inline uint64_t thread_cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }
static inline uint64_t process_cpu_ns(void) { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }

#endif /* WVV_UTIL_CLOCK_H */
