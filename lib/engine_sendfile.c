/* SPDX-License-Identifier: MIT */
/*
 * The copy-once engine, for large payloads: the payload is written once
 * into a per-thread memfd, then sendfile() lends its pages to each TCP
 * target, so the kernel copies nothing per target.
 *
 * The memfd is truncated before each call's write: the pages still held by
 * sockets (queued or unacknowledged, so maybe retransmitted) keep their
 * content, and the new payload gets new pages. Rewriting in place would
 * change bytes a socket has not sent yet.
 *
 * Only TCP sockets get sendfile (one getsockopt each says so): it has
 * writev's stream semantics there, not on datagram sockets or O_APPEND
 * files. Everything else, and the rest of any target sendfile did not
 * finish, is written with writev semantics. splice raises SIGPIPE on a
 * dead peer (also after a partial send, when the call still succeeds), and
 * a write past RLIMIT_FSIZE raises SIGXFSZ: both are held back for the
 * call, and those the call raised are consumed before they are unblocked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "call.h"
#include "internal.h"
#include "thread_state.h"

struct memfd_thread {
	int fd;
};

static _Atomic int memfd_status = 1; /* 1 unknown, 0 usable, <0 -errno */
static _Atomic long long memfd_retry_at;

static int memfd_init(void *state)
{
	struct memfd_thread *m = state;

	m->fd = memfd_create("writevv", MFD_CLOEXEC);
	return m->fd < 0 ? -errno : 0;
}

static void memfd_fini(void *state)
{
	/* In a fork()ed child: the parent keeps writing its own copy. */
	close(((struct memfd_thread *)state)->fd);
}

static struct wvv_tls memfd_tls = WVV_TLS_INIT(struct memfd_thread, memfd_init, memfd_fini);

static int thread_memfd(void)
{
	int err = 0;
	struct memfd_thread *m = wvv_tls_get(&memfd_tls, &err);

	return m ? m->fd : err;
}

int wvv_sendfile_available(void)
{
	int st = atomic_load(&memfd_status), fd;

	if (st == 0 || (st < 0 && !wvv_probe_again(st, &memfd_retry_at)))
		return st;
	fd = thread_memfd();
	atomic_store(&memfd_status, fd < 0 ? fd : 0);
	wvv_probe_failed(fd < 0 ? fd : 0, &memfd_retry_at);
	return fd < 0 ? fd : 0;
}

static int is_tcp(int fd)
{
	int proto = 0;
	socklen_t len = sizeof(proto);

	return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 && proto == IPPROTO_TCP;
}

/* One target: sendfile what it takes, writev semantics for the rest. */
static void send_one(struct wvv_call *c, int i, int memfd)
{
	off_t off = 0;
	ssize_t r;

	if (!is_tcp(c->fds[i])) {
		wvv_finish_target(c, i, 0);
		return;
	}
	r = sendfile(c->fds[i], memfd, &off, c->total);
	if (r >= 0) {
		if ((size_t)r == c->total)
			wvv_set_result(c, i, r);
		else
			wvv_finish_target(c, i, (size_t)r);
		return;
	}
	switch (errno) {
	case EAGAIN:
	case EINVAL:
	case ENOSYS:
	case EOVERFLOW:
	case EINTR:
		/* Full (its own blocking mode decides), or not splice-able. */
		wvv_finish_target(c, i, 0);
		break;
	default:
		wvv_set_result(c, i, -errno);
		break;
	}
}

/* Consume the instances of 'sig' this call raised (none was pending). */
static void consume(int sig)
{
	const struct timespec zero = { 0, 0 };
	sigset_t one;

	sigemptyset(&one);
	sigaddset(&one, sig);
	while (sigtimedwait(&one, NULL, &zero) < 0 && errno == EINTR)
		;
}

int wvv_sendfile_run(struct wvv_call *c)
{
	static const int held[] = { SIGPIPE, SIGXFSZ };
	sigset_t block, old, pending;
	int memfd = thread_memfd(), i, was_pending[2], err = 0;
	ssize_t w;

	if (memfd < 0)
		return memfd;
	if (c->total == 0)
		return -EINVAL;
	sigemptyset(&block);
	sigpending(&pending);
	for (i = 0; i < 2; i++) {
		sigaddset(&block, held[i]);
		was_pending[i] = sigismember(&pending, held[i]);
	}
	pthread_sigmask(SIG_BLOCK, &block, &old);

	/* New pages for this payload; sockets keep the old ones. */
	if (ftruncate(memfd, 0)) {
		err = -errno;
		goto out;
	}
	w = pwritev(memfd, c->iov, c->iovcnt, 0);
	if (w < 0 || (size_t)w != c->total) {
		/* e.g. EFAULT or EFBIG: another engine writes (and reports) it */
		err = w < 0 ? -errno : -EIO;
		goto out;
	}
	for (i = 0; i < c->fdcnt; i++)
		send_one(c, i, memfd);
out:
	/* A signal pending before the call is the caller's: leave it. */
	for (i = 0; i < 2; i++)
		if (!was_pending[i])
			consume(held[i]);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}
