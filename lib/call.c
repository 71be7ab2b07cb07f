/* SPDX-License-Identifier: MIT */
/* The call layer: one target written with writev semantics, results stored. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "call.h"
#include "internal.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* writev() on a non-socket with SIGPIPE held back: a pipe without a reader
 * must give EPIPE, never kill the caller. */
static ssize_t writev_nosigpipe(int fd, const struct iovec *iov, int iovcnt)
{
	sigset_t pipe_set, old, pending;
	bool was_pending;
	ssize_t r;
	int err;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	r = writev(fd, iov, iovcnt);
	err = errno;
	if (r < 0 && err == EPIPE && !was_pending) {
		const struct timespec zero = { 0, 0 };

		/* Consume the SIGPIPE this writev raised, and only that one. */
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r < 0 ? -err : r;
}

ssize_t wvv_write_one(int fd, const struct iovec *iov, int iovcnt, size_t off,
		      size_t total)
{
	struct iovec rest[IOV_MAX];
	struct msghdr mh;
	size_t covered;
	ssize_t r;
	int n;

	if (off >= total) {
		/* writev of nothing returns 0 before the socket layer looks at
		 * the socket; sendmsg would report its errors. Nothing can
		 * raise SIGPIPE here. */
		r = writev(fd, iov, iovcnt);
		return r < 0 ? -errno : 0;
	}
	if (off == 0) {
		n = iovcnt;
	} else {
		n = wvv_iov_slice(iov, iovcnt, off, total - off, rest, IOV_MAX, &covered);
		iov = rest;
	}
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = (struct iovec *)iov;
	mh.msg_iovlen = (size_t)n;
	/* sendmsg on a socket is writev with MSG_NOSIGNAL available. */
	r = sendmsg(fd, &mh, MSG_NOSIGNAL);
	if (r >= 0)
		return r;
	if (errno != ENOTSOCK)
		return -errno;
	return writev_nosigpipe(fd, iov, n);
}

void wvv_set_result(struct wvv_call *c, int i, ssize_t r)
{
	if (r >= 0) {
		c->returns[i] = (size_t)r;
		c->errors[i] = 0;
	} else {
		c->returns[i] = (size_t)-1;
		c->errors[i] = (int)-r;
	}
}

void wvv_finish_target(struct wvv_call *c, int i, size_t done)
{
	ssize_t r;

	if (done >= c->total) {
		wvv_set_result(c, i, (ssize_t)done);
		return;
	}
	r = wvv_write_one(c->fds[i], c->iov, c->iovcnt, done, c->total);
	if (r >= 0)
		wvv_set_result(c, i, (ssize_t)(done + (size_t)r));
	else if (done > 0)
		wvv_set_result(c, i, (ssize_t)done); /* writev reports the partial count */
	else
		wvv_set_result(c, i, r);
}

void wvv_finish_from(struct wvv_call *c, int from)
{
	int i;

	for (i = from; i < c->fdcnt; i++)
		wvv_set_result(c, i, wvv_write_one(c->fds[i], c->iov, c->iovcnt, 0, c->total));
}
