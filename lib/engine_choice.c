/* SPDX-License-Identifier: MIT */
/*
 * The default mode's choice between the io_uring engine (a copy per
 * target, one system call per batch) and the sendfile engine (one copy,
 * then a sendfile per target), learnt per thread and per payload size
 * class from what each call cost.
 *
 * Where the two cross over depends on the machine and on where the
 * receivers are: measured at 16 KiB on one 2-vCPU VM and between 32 and
 * 64 KiB on another; lower when the receivers' TCP work runs on another
 * core or host than when it is charged to the sender (loopback). A fixed
 * threshold is right on one machine only, so each call's sender CPU per
 * target-write is measured (CLOCK_THREAD_CPUTIME_ID, the figure the
 * benchmark ranks engines by) and each class mostly uses the cheaper
 * engine, trying the other one call in EXPLORE_EVERY to follow changes.
 */
#define _GNU_SOURCE
#include <time.h>

#include "engine_choice.h"

#define EWMA_WEIGHT 8 /* past the first samples (a plain mean), new ones weigh 1/8 */

int wvv_choice_class(size_t total)
{
	int c = 0;

	if (total < ((size_t)1 << WVV_CHOICE_MIN_SHIFT))
		return -1;
	total >>= WVV_CHOICE_MIN_SHIFT;
	while (total > 1 && c < WVV_CHOICE_CLASSES - 1) {
		total >>= 1;
		c++;
	}
	return c;
}

int wvv_choice_pick(struct wvv_choice *k)
{
	int e, best;

	/* Warm up: each engine's first call (cold ring, memfd, caches) is
	 * not counted, then WVV_CHOICE_WARM calls each, alternating. */
	for (e = 0; e < WVV_CHOICE_ENGINES; e++)
		if (k->samples[e] <= WVV_CHOICE_WARM && k->samples[e] <= k->samples[!e])
			return e;
	best = k->cost[WVV_CHOICE_SENDFILE] < k->cost[WVV_CHOICE_URING] ? WVV_CHOICE_SENDFILE
									 : WVV_CHOICE_URING;
	if (++k->since_explore >= WVV_CHOICE_EXPLORE_EVERY) {
		k->since_explore = 0;
		return !best;
	}
	return best;
}

void wvv_choice_record(struct wvv_choice *k, int engine, uint64_t ns_per_target)
{
	uint32_t n = k->samples[engine];
	int64_t w = n < EWMA_WEIGHT ? (int64_t)n : EWMA_WEIGHT;

	if (n < UINT32_MAX)
		k->samples[engine] = n + 1;
	if (n == 0)
		return; /* the cold first call */
	k->cost[engine] = (uint64_t)((int64_t)k->cost[engine] +
				     ((int64_t)ns_per_target - (int64_t)k->cost[engine]) / w);
}

uint64_t wvv_thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
