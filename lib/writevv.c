/* SPDX-License-Identifier: MIT */
/* Public entry points: argument checks, the mode, dispatch to the engine
 * (the default mode's choice is engine_choice.c's). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine_choice.h"
#include "call.h"
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

/* The most one writev writes: the kernel's MAX_RW_COUNT (INT_MAX rounded
 * down to a page) for pages up to 64 KiB; larger calls go to the loop. */
#define RW_MAX ((size_t)INT_MAX & ~(size_t)0xffff)

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

static bool sendfile_usable(void)
{
	return wvv_sendfile_available() == 0;
}

/* What the default mode's policy may ask of the engines. */
static const struct wvv_engine_facts engine_facts = {
	.sendfile_usable = sendfile_usable,
	.zc_mostly_copied = wvv_zc_mostly_copied,
	.zc_max = wvv_zc_max,
	.zc_idle = wvv_zc_idle,
};

/* How call c runs: the mode's engine, or the default mode's plan. */
static struct wvv_plan plan_for(const struct wvv_call *c)
{
	int engine = effective_engine();

	if (current_mode() != WRITEVV_MODE_DEFAULT)
		return wvv_plan_fixed(engine);
	return wvv_default_plan(&engine_facts, c->total, engine);
}

/* Run c as planned; an engine that cannot start leaves it to the loop.
 * Returns the engine that ran the call (WRITEVV_MODE_USERLAND if none did). */
static int run_engine(const struct wvv_plan *p, struct wvv_call *c)
{
	int engine = p->engine, err = -ENOENT;

	if (engine == WRITEVV_MODE_ZEROCOPY) {
		err = wvv_zc_run(c, p->zc_skip_copied);
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

WVV_EXPORT int writevv(const int *fds, int fdcnt, const struct iovec *iov, int iovcnt,
	    size_t *returns, int *errors)
{
	struct wvv_call c;
	struct wvv_plan plan;
	size_t *rets = returns;
	int *errs = errors;
	int i, full = 0, err;

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
	} else {
		plan = plan_for(&c);
		wvv_plan_start(&plan);
		wvv_plan_done(&plan, run_engine(&plan, &c), fdcnt);
	}
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
