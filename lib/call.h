/* SPDX-License-Identifier: MIT */
/*
 * One writevv call as every engine sees it (call.c): its arguments, each
 * target's result, and finishing a target an engine left short with
 * writev's semantics. The engines build on this layer, never on each other.
 */
#ifndef WRITEVV_CALL_H
#define WRITEVV_CALL_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct wvv_call {
	const int *fds;
	int fdcnt;
	const struct iovec *iov; /* caller's vector, zero-length entries included */
	int iovcnt;
	size_t total;            /* sum of iov lengths */
	size_t *returns;         /* never NULL inside the library */
	int *errors;             /* never NULL inside the library */
};

/* writev(fd, iov from byte 'off') as one writev would do it; no SIGPIPE.
 * Returns bytes written (>= 0) or -errno. */
ssize_t wvv_write_one(int fd, const struct iovec *iov, int iovcnt, size_t off,
		      size_t total);
/* Set the result of target i from a writev-like result (bytes or -errno). */
void wvv_set_result(struct wvv_call *c, int i, ssize_t r);
/* Finish target i given 'done' bytes already delivered: store returns/errors. */
void wvv_finish_target(struct wvv_call *c, int i, size_t done);
/* Write targets from..fdcnt-1 whole, one writev each (an engine giving up
 * half way, or the userland engine from 0). */
void wvv_finish_from(struct wvv_call *c, int from);

#endif
