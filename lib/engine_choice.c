/* SPDX-License-Identifier: MIT */
/*
 * The default mode's choice between the io_uring engine (a copy per
 * target, one system call per batch), the sendfile engine (one copy, then
 * a sendfile per target) and the zero-copy engine (one copy, then a
 * SEND_ZC per target in one batch), learnt per thread and per payload
 * size class from what each call cost.
 *
 * Where io_uring and sendfile cross over depends on the machine and on where
 * the receivers are: measured at 16 KiB on one 2-vCPU VM and between 32 and
 * 64 KiB on another; lower when the receivers' TCP work runs on another
 * core or host than when it is charged to the sender (loopback). A fixed
 * threshold is right on one machine only, so each call's sender CPU per
 * target-write is measured (CLOCK_THREAD_CPUTIME_ID, the figure the
 * benchmark ranks engines by) and each class mostly uses the cheapest
 * engine, trying another one call in EXPLORE_EVERY to follow changes.
 * Zero-copy sends are copied anyway where the receiver is on this host
 * (loopback, veth), and the cost measured then says so.
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

int wvv_choice_pick(struct wvv_choice *k, unsigned eligible)
{
	int e, least = WVV_CHOICE_URING, best = WVV_CHOICE_URING;
	unsigned j;

	eligible |= 1u << WVV_CHOICE_URING;
	/* Warm up: each engine's first call (cold ring, memfd, caches) is
	 * not counted, then WVV_CHOICE_WARM calls each, in turn. */
	for (e = 0; e < WVV_CHOICE_ENGINES; e++)
		if ((eligible & 1u << e) && k->samples[e] < k->samples[least])
			least = e;
	if (k->samples[least] <= WVV_CHOICE_WARM)
		return least;
	for (e = 0; e < WVV_CHOICE_ENGINES; e++)
		if ((eligible & 1u << e) && k->cost[e] < k->cost[best])
			best = e;
	if (++k->since_explore >= WVV_CHOICE_EXPLORE_EVERY) {
		/* the other eligible engines in turn */
		for (j = 1; j <= WVV_CHOICE_ENGINES; j++) {
			e = (int)((k->explored + j) % WVV_CHOICE_ENGINES);
			if ((eligible & 1u << e) && e != best) {
				k->since_explore = 0;
				k->explored = (uint32_t)e;
				return e;
			}
		}
		k->since_explore = 0;
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
