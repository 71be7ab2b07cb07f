/* SPDX-License-Identifier: MIT */
/*
 * The per-thread io_uring ring of the io_uring engines. A call is cut into
 * batches of up to WVV_RING_ENTRIES targets, each submitted with one
 * io_uring_enter and reaped before the next; a batch also ends before a
 * descriptor (or blocking open file) it already has, so that a short
 * target is finished in user space before the same socket gets more.
 * What each request is and what its completion means is the engine's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "thread_state.h"
#include "uring_ring.h"

/* Room for the notifications of earlier zero-copy calls next to a batch's
 * completions (more are kept by the kernel, IORING_FEAT_NODROP). */
#define CQ_ENTRIES (4 * WVV_RING_ENTRIES)

_Static_assert(WVV_BATCH_SET == 1u << 11, "seen_in_batch hashes to 11 bits");

static _Atomic int uring_status = 1; /* 1 unknown, 0 usable, <0 -errno */
static _Atomic long long uring_retry_at;

static int ring_init(void *state)
{
	struct wvv_ring *r = state;
	struct io_uring_params p;
	int err;

	/* One thread submits and reaps: let the kernel skip the locking and
	 * run completions when we wait (6.1+); older kernels refuse the
	 * flags and get a plain ring. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
		  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = CQ_ENTRIES;
	err = io_uring_queue_init_params(WVV_RING_ENTRIES, &r->ring, &p);
	if (err == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = CQ_ENTRIES;
		err = io_uring_queue_init_params(WVV_RING_ENTRIES, &r->ring, &p);
	}
	return err;
}

static void ring_fini(void *state)
{
	struct wvv_ring *r = state;

	/* In a fork()ed child this unmaps and closes the child's copy only. */
	io_uring_queue_exit(&r->ring);
	if (r->ext)
		r->ext->fini(r->ext);
}

static struct wvv_tls ring_tls = WVV_TLS_INIT(struct wvv_ring, ring_init, ring_fini);

struct wvv_ring *wvv_ring_get(int *err)
{
	return wvv_tls_get(&ring_tls, err);
}

int wvv_uring_available(void)
{
	int st = atomic_load(&uring_status), err = 0;

	if (st == 0 || (st < 0 && !wvv_probe_again(st, &uring_retry_at)))
		return st;
	/* Probe once per process (io_uring can be disabled by sysctl or
	 * seccomp); the ring made here is this thread's. */
	if (!wvv_ring_get(&err) && err == 0)
		err = -ENOMEM;
	atomic_store(&uring_status, err);
	wvv_probe_failed(err, &uring_retry_at);
	return err;
}

/*
 * Has fd already been put in the current batch? Exact duplicates must not
 * share a batch: a partial write to the first would be finished after the
 * second. Returns 1 for a repeat, 0 after marking it. A batch has at most
 * WVV_RING_ENTRIES descriptors, so the set is at most half full.
 */
static int seen_in_batch(struct wvv_ring *r, int fd)
{
	uint32_t h = ((uint32_t)fd * 0x9e3779b1u) >> 21; /* 11 bits: WVV_BATCH_SET */

	if (fd < 0)
		return 0; /* EBADF whatever happens: no need to split */
	for (;; h = (h + 1) & (WVV_BATCH_SET - 1)) {
		struct batch_entry *e = &r->batch[h];

		if (e->stamp != r->cur) {
			e->stamp = r->cur;
			e->fd = fd;
			return 0;
		}
		if (e->fd == fd)
			return 1;
	}
}

static void new_batch(struct wvv_ring *r)
{
	if (++r->cur == 0) { /* wrapped: forget all stamps */
		memset(r->batch, 0, sizeof(r->batch));
		r->cur = 1;
	}
}

int wvv_ring_submit(struct wvv_ring *r, int n)
{
	int done = 0, ret, tries = 0;

	while (done < n) {
		/* With zero-copy payloads in flight, the same system call also
		 * runs the deferred completions (notifications among them). */
		ret = r->ext && r->ext->in_flight(r->ext) ? io_uring_submit_and_get_events(&r->ring)
							  : io_uring_submit(&r->ring);
		if (ret > 0) {
			done += ret;
			continue;
		}
		if ((ret == -EINTR || ret == -EAGAIN) && ++tries < 1000)
			continue;
		break;
	}
	return done;
}

void wvv_ring_reap_others(struct wvv_ring *r)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;

	io_uring_get_events(&r->ring); /* runs deferred completions */
	io_uring_for_each_cqe(&r->ring, head, cqe) {
		if (r->ext) /* no send is outstanding between calls */
			r->ext->other_cqe(r->ext, cqe);
		seen++;
	}
	io_uring_cq_advance(&r->ring, seen);
}

void wvv_ring_store_result(struct wvv_call *c, int t, size_t done, int res)
{
	if (res >= 0 && done + (size_t)res == c->total)
		wvv_set_result(c, t, (ssize_t)c->total);
	else if (res >= 0)
		wvv_finish_target(c, t, done + (size_t)res);
	else if (done > 0 || res == -EAGAIN || res == -ENOTSOCK || res == -EINTR ||
		 res == -EOPNOTSUPP || res == -ECANCELED || res == -EFAULT)
		/* its own blocking mode / writev; EOPNOTSUPP: no zero-copy
		 * here, and writev says if it was more; EFAULT: SENDMSG reads
		 * the iovecs before it looks at the descriptor, where writev
		 * answers EBADF (or a pipe takes the readable part) first */
		wvv_finish_target(c, t, done);
	else
		wvv_set_result(c, t, res);
}

/*
 * A signal while waiting, where the sender asks for it, cancels the
 * batch's sends, and each ends as a blocking writev interrupted by it
 * would (the sender's complete() is told).
 */
int wvv_ring_reap(struct wvv_ring *r, struct wvv_call *c, int start, int n,
		  const struct wvv_ring_sender *s, void *ctx)
{
	struct io_uring *ring = &r->ring;
	struct io_uring_cqe *cqe;
	bool cancelled = false;

	while (n > 0) {
		unsigned head, seen = 0;
		int err = io_uring_wait_cqe(ring, &cqe);

		if (err == -EINTR && s->cancel_on_signal && !cancelled) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			if (sqe) {
				io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
				io_uring_sqe_set_data64(sqe, WVV_UD_CANCEL);
				cancelled = wvv_ring_submit(r, 1) == 1;
				r->cancels += cancelled;
			}
		}
		if (err == -EINTR)
			continue;
		if (err)
			return err;
		io_uring_for_each_cqe(ring, head, cqe) {
			seen++;
			if (io_uring_cqe_get_data64(cqe) == WVV_UD_CANCEL ||
			    (r->ext && r->ext->other_cqe(r->ext, cqe)))
				continue;
			n--;
			s->complete(ctx, c, start, cqe, cancelled);
		}
		io_uring_cq_advance(ring, seen);
	}
	return 0;
}

static void file_set_init(struct file_set *s, int n)
{
	size_t cap = 16;

	while (cap < 2 * (size_t)n)
		cap <<= 1;
	s->mask = cap - 1;
	memset(s->used, 0, cap * sizeof(s->used[0]));
}

/* 1 if fd is blocking and its file is already in the set, else adds it
 * (nonblocking and bad fds: 0). */
static int file_set_add(struct file_set *s, int fd)
{
	struct stat st;
	size_t h;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || (fl & O_NONBLOCK) || fstat(fd, &st))
		return 0;
	h = (size_t)((st.st_ino ^ (uint64_t)st.st_dev << 32) * 0x9e3779b97f4a7c15ull >> 40) & s->mask;
	while (s->used[h]) {
		if (s->ino[h] == st.st_ino && s->dev[h] == st.st_dev)
			return 1;
		h = (h + 1) & s->mask;
	}
	s->used[h] = true;
	s->dev[h] = st.st_dev;
	s->ino[h] = st.st_ino;
	return 0;
}

int wvv_ring_run(struct wvv_ring *r, struct wvv_call *c, const struct wvv_ring_sender *s,
		 void *ctx)
{
	struct msghdr mh;
	struct io_uring *ring = &r->ring;
	struct file_set *files = &r->files;
	int start = 0, end, i, n, submitted;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = (struct iovec *)c->iov;
	mh.msg_iovlen = (size_t)c->iovcnt;

	while (start < c->fdcnt) {
		new_batch(r);
		file_set_init(files, c->fdcnt - start < (int)WVV_RING_ENTRIES ? c->fdcnt - start
									       : (int)WVV_RING_ENTRIES);
		end = start;
		while (end < c->fdcnt && end - start < (int)WVV_RING_ENTRIES) {
			if (seen_in_batch(r, c->fds[end]) || file_set_add(files, c->fds[end]))
				break;
			end++;
		}
		for (i = start; i < end; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			if (!sqe) {
				end = i;
				break;
			}
			s->prep(ctx, sqe, c, i, i - start, &mh);
		}
		n = end - start;
		submitted = wvv_ring_submit(r, n);
		if (wvv_ring_reap(r, c, start, submitted, s, ctx) || submitted < n ||
		    (s->after_batch && s->after_batch(ctx, r, c, start))) {
			/* The ring failed (never seen in practice): drop it with
			 * whatever it still holds unsubmitted, and write those
			 * targets in user space. */
			if (s->abandon)
				s->abandon(ctx, c, start);
			wvv_tls_drop(&ring_tls);
			wvv_finish_from(c, start + submitted);
			return 1;
		}
		start = end;
	}
	return 0;
}
