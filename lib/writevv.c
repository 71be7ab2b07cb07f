/* SPDX-License-Identifier: MIT */
/* Public entry points: argument checks, mode selection, engine dispatch. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine_choice.h"
#include "internal.h"
#include "writevv.h"

#define MODE_UNSET (-1)

static _Atomic int wvv_mode = MODE_UNSET;

static int mode_from_env(void)
{
	const char *s = getenv("WRITEVV_MODE");

	if (!s || !*s || !strcmp(s, "default"))
		return WRITEVV_MODE_DEFAULT;
	if (!strcmp(s, "kernel"))
		return WRITEVV_MODE_KERNEL;
	if (!strcmp(s, "userland"))
		return WRITEVV_MODE_USERLAND;
	if (!strcmp(s, "iouring"))
		return WRITEVV_MODE_IOURING;
	if (!strcmp(s, "sendfile"))
		return WRITEVV_MODE_SENDFILE;
	if (!strcmp(s, "zerocopy"))
		return WRITEVV_MODE_ZEROCOPY;
	return WRITEVV_MODE_DEFAULT;
}

static int current_mode(void)
{
	int m = atomic_load_explicit(&wvv_mode, memory_order_relaxed);
	int expected = MODE_UNSET;

	if (m != MODE_UNSET)
		return m;
	m = mode_from_env();
	atomic_compare_exchange_strong(&wvv_mode, &expected, m);
	return atomic_load(&wvv_mode);
}

static int effective_engine(void);

/* Where the default mode switches from the writev loop to sendfile when it
 * has no io_uring: the loop and io_uring cost about the same (BENCHMARKS.md). */
#define SENDFILE_MIN_WITHOUT_URING 16384
/* The most one writev writes: the kernel's MAX_RW_COUNT (INT_MAX rounded
 * down to a page) for pages up to 64 KiB; larger calls go to the loop. */
#define RW_MAX ((size_t)INT_MAX & ~(size_t)0xffff)

/*
 * WRITEVV_SENDFILE_MIN, if set: a fixed size from which the default mode
 * uses the sendfile engine (e.g. what `writevv-bench --calibrate` measured);
 * 0 if unset: the default mode learns the choice (engine_choice.c).
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

/* What each size class learnt, per thread. */
static _Thread_local struct wvv_choice choices[WVV_CHOICE_CLASSES];

/* While the kernel copies this thread's zero-copy sends anyway (receivers
 * on this host), the default mode leaves the zero-copy engine out of its
 * choice: the copy is only moved to the receiving side, which costs the
 * host as much and delays delivery. One call in this many tries it again;
 * in between, the thread's zero-copy buffer is unpinned. */
#define ZC_RECHECK_EVERY 256
static _Thread_local unsigned zc_recheck;
static _Thread_local bool zc_rechecking; /* this call: zero-copy to every target */

/*
 * The engine call c uses; *learn is set to the class to record its cost
 * in, when the default mode chose between io_uring, sendfile and zero-copy.
 */
static int engine_for(const struct wvv_call *c, struct wvv_choice **learn)
{
	int engine = effective_engine(), cls, pick;
	unsigned eligible = 1u << WVV_CHOICE_URING;
	bool sendfile;
	size_t fixed;

	*learn = NULL;
	zc_rechecking = false;
	if (current_mode() != WRITEVV_MODE_DEFAULT)
		return engine;
	sendfile = wvv_sendfile_available() == 0;
	fixed = sendfile_min();
	if (sendfile && fixed)
		return c->total >= fixed ? WRITEVV_MODE_SENDFILE : engine;
	if (engine != WRITEVV_MODE_IOURING) /* no io_uring: nothing to learn */
		return sendfile && c->total >= SENDFILE_MIN_WITHOUT_URING ? WRITEVV_MODE_SENDFILE
									  : engine;
	cls = wvv_choice_class(c->total);
	if (cls < 0)
		return engine;
	if (sendfile)
		eligible |= 1u << WVV_CHOICE_SENDFILE;
	*learn = &choices[cls];
	if (!wvv_zc_mostly_copied()) {
		if (c->total <= wvv_zc_max())
			eligible |= 1u << WVV_CHOICE_ZEROCOPY;
	} else if (++zc_recheck >= ZC_RECHECK_EVERY && c->total <= wvv_zc_max()) {
		zc_recheck = 0;
		zc_rechecking = true;
		return WRITEVV_MODE_ZEROCOPY;
	} else {
		wvv_zc_idle(); /* no need to keep its pages pinned meanwhile */
	}
	pick = wvv_choice_pick(*learn, eligible);
	return pick == WVV_CHOICE_SENDFILE   ? WRITEVV_MODE_SENDFILE
	       : pick == WVV_CHOICE_ZEROCOPY ? WRITEVV_MODE_ZEROCOPY
					     : WRITEVV_MODE_IOURING;
}

/* The engine a call made now would use (for small payloads in the default mode). */
static int effective_engine(void)
{
	switch (current_mode()) {
	case WRITEVV_MODE_USERLAND:
		return WRITEVV_MODE_USERLAND;
	case WRITEVV_MODE_KERNEL:
		return wvv_kernel_available() == 0 && wvv_kernel_thread_usable()
			       ? WRITEVV_MODE_KERNEL
			       : WRITEVV_MODE_USERLAND;
	case WRITEVV_MODE_SENDFILE:
		return wvv_sendfile_available() == 0 ? WRITEVV_MODE_SENDFILE
						     : WRITEVV_MODE_USERLAND;
	case WRITEVV_MODE_ZEROCOPY:
		if (wvv_zc_available() == 0)
			return WRITEVV_MODE_ZEROCOPY;
		__attribute__((fallthrough)); /* a thread without its buffer copies */
	case WRITEVV_MODE_IOURING:
	default:
		return wvv_uring_available() == 0 ? WRITEVV_MODE_IOURING
						  : WRITEVV_MODE_USERLAND;
	}
}

/* Run c on 'engine'; an engine that cannot start leaves it to the loop.
 * Returns the engine that ran the call (WRITEVV_MODE_USERLAND if none did). */
static int run_engine(int engine, struct wvv_call *c)
{
	int err = -ENOENT;

	if (engine == WRITEVV_MODE_ZEROCOPY) {
		/* the default mode sends copies to targets the kernel copied
		 * for anyway, except when it checks again whether it still does */
		err = wvv_zc_run(c, current_mode() == WRITEVV_MODE_DEFAULT && !zc_rechecking);
		if (err == -ENOBUFS || err == -EMSGSIZE || err == -EFAULT) {
			/* no room in (or too big for) the buffer: copy per target;
			 * EFAULT: not all of the payload is readable, and only the
			 * kernel's own copy from the caller's memory gives writev's
			 * answer to that */
			engine = WRITEVV_MODE_IOURING;
			err = wvv_uring_run(c);
		}
	} else if (engine == WRITEVV_MODE_KERNEL) {
		err = wvv_kernel_run(c);
	} else if (engine == WRITEVV_MODE_IOURING) {
		err = wvv_uring_run(c);
	} else if (engine == WRITEVV_MODE_SENDFILE) {
		err = wvv_sendfile_run(c);
	}
	if (err) {
		wvv_userland_run(c);
		return WRITEVV_MODE_USERLAND;
	}
	return engine;
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

WVV_EXPORT int writevv(const int *fds, int fdcnt, const struct iovec *iov, int iovcnt,
	    size_t *returns, int *errors)
{
	struct wvv_call c;
	struct wvv_choice *learn;
	uint64_t cpu0 = 0;
	size_t *rets = returns;
	int *errs = errors;
	int i, full = 0, err, engine, ran;

	err = wvv_validate(fds, fdcnt, iov, iovcnt, &c.total);
	if (err) {
		errno = -err;
		return -1;
	}
	if (fdcnt == 0)
		return 0;
	if (!rets)
		rets = malloc(sizeof(*rets) * (size_t)fdcnt);
	if (!errs)
		errs = malloc(sizeof(*errs) * (size_t)fdcnt);
	if (!rets || !errs) {
		if (rets != returns)
			free(rets);
		if (errs != errors)
			free(errs);
		errno = ENOMEM;
		return -1;
	}
	c.fds = fds;
	c.fdcnt = fdcnt;
	c.iov = iov;
	c.iovcnt = iovcnt;
	c.returns = rets;
	c.errors = errs;

	if (c.total > RW_MAX) {
		/* writev writes at most MAX_RW_COUNT; the engines would write
		 * on, and plan their work by the nominal length */
		wvv_userland_run(&c);
		learn = NULL;
		goto count;
	}
	engine = engine_for(&c, &learn);
	if (learn)
		cpu0 = wvv_thread_cpu_ns();
	ran = choice_of(run_engine(engine, &c));
	if (learn && cpu0 && ran >= 0)
		wvv_choice_record(learn, ran, (wvv_thread_cpu_ns() - cpu0) / (uint64_t)fdcnt);

count:
	for (i = 0; i < fdcnt; i++)
		if (errs[i] == 0 && rets[i] == c.total)
			full++;
	if (rets != returns)
		free(rets);
	if (errs != errors)
		free(errs);
	return full;
}

WVV_EXPORT int writevv_control(int op, int *val)
{
	int err;

	if (!val) {
		errno = EINVAL;
		return -1;
	}
	switch (op) {
	case WRITEVV_GETMODE:
		*val = effective_engine();
		return 0;
	case WRITEVV_SETMODE:
		switch (*val) {
		case WRITEVV_MODE_KERNEL:
		case WRITEVV_MODE_IOURING:
		case WRITEVV_MODE_SENDFILE:
		case WRITEVV_MODE_ZEROCOPY:
			err = *val == WRITEVV_MODE_KERNEL     ? wvv_kernel_available()
			      : *val == WRITEVV_MODE_IOURING  ? wvv_uring_available()
			      : *val == WRITEVV_MODE_SENDFILE ? wvv_sendfile_available()
							      : wvv_zc_available();
			if (err) {
				errno = -err;
				return -1;
			}
			/* fallthrough */
		case WRITEVV_MODE_DEFAULT:
		case WRITEVV_MODE_USERLAND:
			atomic_store(&wvv_mode, *val);
			return 0;
		default:
			errno = EINVAL;
			return -1;
		}
	default:
		errno = EINVAL;
		return -1;
	}
}

WVV_EXPORT const char *writevv_kernel_status(void)
{
	return wvv_kernel_available() == 0 ? "" : wvv_kernel_reason();
}
