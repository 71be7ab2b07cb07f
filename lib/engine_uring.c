/* SPDX-License-Identifier: MIT */
/*
 * The io_uring engine: one SEND/SENDMSG per target, all submitted with one
 * io_uring_enter per batch. Every request carries MSG_DONTWAIT so that none
 * is parked on a full socket and none stalls the batch; a target that did
 * not take everything is finished with one writev-equivalent call, which
 * blocks or not as the target's own O_NONBLOCK says, exactly as writev
 * would. MSG_NOSIGNAL keeps SIGPIPE away; descriptors that are not sockets
 * (ENOTSOCK) are written with writev in the same call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <stdint.h>

#include <liburing.h>

#include "internal.h"
#include "thread_state.h"

#define RING_ENTRIES 1024u

struct uring_thread {
	struct io_uring ring;
	/* fd number -> batch stamp, to split batches at a repeated fd */
	uint32_t *stamp;
	size_t nstamp;
	uint32_t cur;
};

static _Atomic int uring_status = 1; /* 1 unknown, 0 usable, <0 -errno */
static _Atomic long uring_retry_s;

static int uring_init(void *state)
{
	struct uring_thread *u = state;
	struct io_uring_params p;
	int err;

	/* One thread submits and reaps: let the kernel skip the locking and
	 * run completions when we wait (6.1+); older kernels refuse the
	 * flags and get a plain ring. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
		  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	err = io_uring_queue_init_params(RING_ENTRIES, &u->ring, &p);
	if (err == -EINVAL) {
		memset(&p, 0, sizeof(p));
		err = io_uring_queue_init_params(RING_ENTRIES, &u->ring, &p);
	}
	return err;
}

static void uring_fini(void *state)
{
	struct uring_thread *u = state;

	/* In a fork()ed child this unmaps and closes the child's copy only. */
	io_uring_queue_exit(&u->ring);
	free(u->stamp);
}

static struct wvv_tls uring_tls = WVV_TLS_INIT(struct uring_thread, uring_init, uring_fini);

static struct uring_thread *thread_ring(int *err)
{
	return wvv_tls_get(&uring_tls, err);
}

int wvv_uring_available(void)
{
	int st = atomic_load(&uring_status), err = 0;

	if (st == 0 || (st < 0 && !wvv_probe_again(st, &uring_retry_s)))
		return st;
	/* Probe once per process (io_uring can be disabled by sysctl or
	 * seccomp); the ring made here is this thread's. */
	if (!thread_ring(&err) && err == 0)
		err = -ENOMEM;
	atomic_store(&uring_status, err);
	wvv_probe_failed(err, &uring_retry_s);
	return err;
}

/*
 * Has fd already been put in the current batch? Exact duplicates must not
 * share a batch: a partial write to the first would be finished after the
 * second. Returns 1 for a repeat, 0 after marking, -1 if out of memory.
 */
static int seen_in_batch(struct uring_thread *u, int fd)
{
	if (fd < 0)
		return 0; /* EBADF whatever happens */
	if ((size_t)fd >= u->nstamp) {
		size_t n = u->nstamp ? u->nstamp : 1024;
		uint32_t *p;

		while (n <= (size_t)fd)
			n *= 2;
		p = realloc(u->stamp, n * sizeof(*p));
		if (!p)
			return -1;
		memset(p + u->nstamp, 0, (n - u->nstamp) * sizeof(*p));
		u->stamp = p;
		u->nstamp = n;
	}
	if (u->stamp[fd] == u->cur)
		return 1;
	u->stamp[fd] = u->cur;
	return 0;
}

static void new_batch(struct uring_thread *u)
{
	if (++u->cur == 0) { /* wrapped: forget all stamps */
		memset(u->stamp, 0, u->nstamp * sizeof(*u->stamp));
		u->cur = 1;
	}
}

/* Submit n queued requests; returns how many the kernel took. */
static int submit_all(struct io_uring *ring, int n)
{
	int done = 0, r, tries = 0;

	while (done < n) {
		r = io_uring_submit(ring);
		if (r > 0) {
			done += r;
			continue;
		}
		if ((r == -EINTR || r == -EAGAIN) && ++tries < 1000)
			continue;
		break;
	}
	return done;
}

/* Reap n completions and store each target's result. 0 or -errno. */
static int reap(struct io_uring *ring, struct wvv_call *c, int n)
{
	struct io_uring_cqe *cqe;

	while (n > 0) {
		unsigned head, seen = 0;
		int err = io_uring_wait_cqe(ring, &cqe);

		if (err == -EINTR)
			continue;
		if (err)
			return err;
		io_uring_for_each_cqe(ring, head, cqe) {
			int t = (int)io_uring_cqe_get_data64(cqe);
			int res = cqe->res;

			seen++;
			if (res >= 0 && (size_t)res == c->total)
				wvv_set_result(c, t, res);
			else if (res >= 0)
				wvv_finish_target(c, t, (size_t)res);
			else if (res == -EAGAIN || res == -ENOTSOCK || res == -EINTR)
				wvv_finish_target(c, t, 0); /* its own blocking mode / writev */
			else
				wvv_set_result(c, t, res);
		}
		io_uring_cq_advance(ring, seen);
		n -= (int)seen;
	}
	return 0;
}

int wvv_uring_run(struct wvv_call *c)
{
	struct msghdr mh;
	struct uring_thread *u;
	struct io_uring *ring;
	int err, start = 0, end, i, n, submitted;

	if (c->total == 0)
		return -EINVAL;
	u = thread_ring(&err);
	if (!u)
		return err;
	ring = &u->ring;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = (struct iovec *)c->iov;
	mh.msg_iovlen = (size_t)c->iovcnt;

	while (start < c->fdcnt) {
		new_batch(u);
		end = start;
		while (end < c->fdcnt && end - start < (int)RING_ENTRIES) {
			int r = seen_in_batch(u, c->fds[end]);

			if (r < 0)
				return start == 0 ? -ENOMEM : (wvv_userland_finish_from(c, start), 0);
			if (r)
				break;
			end++;
		}
		for (i = start; i < end; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			if (!sqe) {
				end = i;
				break;
			}
			if (c->iovcnt == 1)
				io_uring_prep_send(sqe, c->fds[i], c->iov[0].iov_base,
						   c->iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
			else
				io_uring_prep_sendmsg(sqe, c->fds[i], &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
			io_uring_sqe_set_data64(sqe, (__u64)i);
		}
		n = end - start;
		submitted = submit_all(ring, n);
		if (reap(ring, c, submitted) || submitted < n) {
			/* The ring failed (never seen in practice): drop it with
			 * whatever it still holds unsubmitted, and write those
			 * targets in user space. */
			wvv_tls_drop(&uring_tls);
			wvv_userland_finish_from(c, start + submitted);
			return 0;
		}
		start = end;
	}
	return 0;
}
