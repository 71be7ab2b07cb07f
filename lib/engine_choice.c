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
 *
 * Everything the default mode decides is here: the size thresholds, the
 * learnt choice, and when zero-copy is left out because the kernel copies
 * anyway (the zero-copy engine reports each target to wvv_copied_share_add).
 * It calls no engine: what it asks of them comes as struct wvv_engine_facts.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "engine_choice.h"
#include "writevv.h" /* the modes */

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

void wvv_copied_share_add(unsigned *share, bool copied)
{
	*share -= *share / 16;
	if (copied)
		*share += 1024 / 16;
}

bool wvv_copied_share_mostly(unsigned share)
{
	return share > 512;
}

/* Where the default mode switches from the writev loop to sendfile when it
 * has no io_uring: the loop and io_uring cost about the same (BENCHMARKS.md). */
#define SENDFILE_MIN_WITHOUT_URING 16384

struct wvv_plan wvv_plan_fixed(int engine)
{
	struct wvv_plan p = { engine, NULL, false, 0 };

	return p;
}

/*
 * While the kernel copies this thread's zero-copy sends anyway (receivers
 * on this host), the default mode leaves the zero-copy engine out of its
 * choice: the copy is only moved to the receiving side, which costs the
 * host as much and delays delivery. One call in WVV_ZC_RECHECK_EVERY tries
 * it again, sending zero-copy to every target; in between, the thread's
 * zero-copy buffer is unpinned.
 */
struct wvv_plan wvv_default_plan_with(struct wvv_default_state *st,
				      const struct wvv_engine_facts *f, size_t total,
				      int engine, size_t sendfile_min)
{
	struct wvv_plan p = wvv_plan_fixed(engine);
	unsigned eligible = 1u << WVV_CHOICE_URING;
	bool sendfile = f->sendfile_usable();
	int cls, pick;

	if (sendfile && sendfile_min) {
		if (total >= sendfile_min)
			p.engine = WRITEVV_MODE_SENDFILE;
		return p;
	}
	if (engine != WRITEVV_MODE_IOURING) { /* no io_uring: nothing to learn */
		if (sendfile && total >= SENDFILE_MIN_WITHOUT_URING)
			p.engine = WRITEVV_MODE_SENDFILE;
		return p;
	}
	cls = wvv_choice_class(total);
	if (cls < 0)
		return p;
	if (sendfile)
		eligible |= 1u << WVV_CHOICE_SENDFILE;
	p.learn = &st->choices[cls];
	if (!f->zc_mostly_copied()) {
		if (total <= f->zc_max())
			eligible |= 1u << WVV_CHOICE_ZEROCOPY;
	} else if (++st->zc_recheck >= WVV_ZC_RECHECK_EVERY && total <= f->zc_max()) {
		st->zc_recheck = 0;
		p.engine = WRITEVV_MODE_ZEROCOPY; /* zero-copy to every target */
		return p;
	} else {
		f->zc_idle(); /* no need to keep its pages pinned meanwhile */
	}
	pick = wvv_choice_pick(p.learn, eligible);
	p.engine = pick == WVV_CHOICE_SENDFILE   ? WRITEVV_MODE_SENDFILE
		   : pick == WVV_CHOICE_ZEROCOPY ? WRITEVV_MODE_ZEROCOPY
						 : WRITEVV_MODE_IOURING;
	p.zc_skip_copied = true;
	return p;
}

/*
 * WRITEVV_SENDFILE_MIN, if set: a fixed size from which the default mode
 * uses the sendfile engine (e.g. what `writevv-bench --calibrate` measured);
 * 0 if unset: the default mode learns the choice.
 */
static size_t sendfile_min(void)
{
	static _Atomic long long cached = -1; /* -1: not read yet */
	long long v = atomic_load_explicit(&cached, memory_order_relaxed);
	const char *s;

	if (v >= 0)
		return (size_t)v;
	s = getenv("WRITEVV_SENDFILE_MIN");
	v = 0;
	if (s && *s) {
		unsigned long long n = strtoull(s, NULL, 0); /* "-1" wraps: never */

		v = n > LLONG_MAX ? LLONG_MAX : n == 0 ? 1 /* 0 or garbage: always */
						      : (long long)n;
	}
	atomic_store(&cached, v);
	return (size_t)v;
}

static _Thread_local struct wvv_default_state this_thread;

struct wvv_plan wvv_default_plan(const struct wvv_engine_facts *f, size_t total, int engine)
{
	return wvv_default_plan_with(&this_thread, f, total, engine, sendfile_min());
}

void wvv_plan_start(struct wvv_plan *p)
{
	if (p->learn)
		p->cpu0 = wvv_thread_cpu_ns();
}

/* The learnt choice an engine that ran is recorded as (-1: none). */
static int choice_of(int engine)
{
	switch (engine) {
	case WRITEVV_MODE_IOURING:
		return WVV_CHOICE_URING;
	case WRITEVV_MODE_SENDFILE:
		return WVV_CHOICE_SENDFILE;
	case WRITEVV_MODE_ZEROCOPY:
		return WVV_CHOICE_ZEROCOPY;
	default:
		return -1;
	}
}

void wvv_plan_done(const struct wvv_plan *p, int ran, int fdcnt)
{
	int choice = choice_of(ran);

	if (p->learn && p->cpu0 && choice >= 0)
		wvv_choice_record(p->learn, choice,
				  (wvv_thread_cpu_ns() - p->cpu0) / (uint64_t)fdcnt);
}
