/* SPDX-License-Identifier: MIT */
/* Public entry points: argument checks, mode selection, engine dispatch. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

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

#define SENDFILE_MIN_DEFAULT 16384

static int effective_engine(void);

/* Payload size from which the default mode copies once and uses sendfile. */
static size_t sendfile_min(void)
{
	static _Atomic size_t cached;
	size_t v = atomic_load_explicit(&cached, memory_order_relaxed);
	const char *s;

	if (v)
		return v;
	s = getenv("WRITEVV_SENDFILE_MIN");
	v = s && *s ? (size_t)strtoull(s, NULL, 0) : SENDFILE_MIN_DEFAULT;
	if (v == 0)
		v = 1;
	atomic_store(&cached, v);
	return v;
}

/* The engine a call of 'total' bytes made now would use. */
static int engine_for(size_t total)
{
	if (current_mode() == WRITEVV_MODE_DEFAULT && total >= sendfile_min() &&
	    wvv_sendfile_available() == 0)
		return WRITEVV_MODE_SENDFILE;
	return effective_engine();
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
	case WRITEVV_MODE_IOURING:
	default:
		return wvv_uring_available() == 0 ? WRITEVV_MODE_IOURING
						  : WRITEVV_MODE_USERLAND;
	}
}

/* Run c on 'engine'; an engine that cannot start leaves it to the loop. */
static void run_engine(int engine, struct wvv_call *c)
{
	int err = -ENOENT;

	if (engine == WRITEVV_MODE_KERNEL)
		err = wvv_kernel_run(c);
	else if (engine == WRITEVV_MODE_IOURING)
		err = wvv_uring_run(c);
	else if (engine == WRITEVV_MODE_SENDFILE)
		err = wvv_sendfile_run(c);
	if (err)
		wvv_userland_run(c);
}

WVV_EXPORT int writevv(const int *fds, int fdcnt, const struct iovec *iov, int iovcnt,
	    size_t *returns, int *errors)
{
	struct wvv_call c;
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

	run_engine(engine_for(c.total), &c);

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
			err = *val == WRITEVV_MODE_KERNEL  ? wvv_kernel_available()
			      : *val == WRITEVV_MODE_IOURING ? wvv_uring_available()
							     : wvv_sendfile_available();
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
