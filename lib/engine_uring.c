/* SPDX-License-Identifier: MIT */
/*
 * The io_uring engines: one SEND/SENDMSG (or SEND_ZC) per target, all
 * submitted with one io_uring_enter per batch. Every request carries
 * MSG_DONTWAIT so that none is parked on a full socket and none stalls the
 * batch; a target that did not take everything is finished with one
 * writev-equivalent call, which blocks or not as the target's own
 * O_NONBLOCK says, exactly as writev would. MSG_NOSIGNAL keeps SIGPIPE
 * away; descriptors that are not sockets (ENOTSOCK) are written with writev
 * in the same call.
 *
 * The zero-copy engine copies the payload once into a per-thread buffer
 * registered with the ring (zc_arena.c) and sends it to each target with
 * SEND_ZC: the sockets take references to its pages instead of copies.
 * The call returns when every send has been queued, like writev; the
 * payload's place in the buffer is reused only after the kernel has sent
 * the notification of every one of those sends (the pages may be read
 * until the data is acknowledged). Sockets without zero-copy support
 * (EOPNOTSUPP: AF_UNIX, or TCP sockets that were ever in a sockmap) are
 * written with writev, and their fd number gets plain sends of the buffer
 * for the next NOZC_CALLS zero-copy calls. The kernel also says when it
 * had to copy a zero-copy send after all (the receiver is on this host):
 * the pages then stayed pinned until the ACK and the receiving side made
 * the copy, so nothing was saved for the host; the default mode sends such
 * targets plain copies too (the forced zero-copy mode does not).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <stdint.h>

#include <liburing.h>

#include "engine_choice.h"
#include "internal.h"
#include "thread_state.h"
#include "zc_arena.h"

#define RING_ENTRIES 1024u
/* Room for the notifications of earlier zero-copy calls next to a batch's
 * completions (more are kept by the kernel, IORING_FEAT_NODROP). */
#define CQ_ENTRIES (4 * RING_ENTRIES)
/* user_data: the fd (a notification names its socket by it), the index
 * in the batch (the result's place), the arena record + 1, a SEND_ZC bit */
#define UD_FD_MASK 0x7fffffffull
#define UD_IDX_SHIFT 31
#define UD_IDX_MASK 0x3ffull /* RING_ENTRIES */
#define UD_REC_SHIFT 41
#define UD_REC_MASK 0xffffull
#define UD_ZC (1ull << 63)
#define UD_FIN (1ull << 62)   /* a zero-copy send of the rest of a short target */
#define UD_CANCEL (~0ull)     /* the cancellation of those, on a signal */

static uint64_t ud_pack(int rec, int idx, int fd)
{
	return (uint64_t)(rec + 1) << UD_REC_SHIFT | (uint64_t)idx << UD_IDX_SHIFT |
	       ((uint64_t)fd & UD_FD_MASK);
}

/* The arena record of a request (-1: none). */
static int ud_rec(uint64_t ud)
{
	return (int)(ud >> UD_REC_SHIFT & UD_REC_MASK) - 1;
}

#ifndef IORING_SEND_ZC_REPORT_USAGE /* 6.2 UAPI, newer than liburing 2.3's */
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

/* After a socket refused zero-copy, or the kernel reported that it copied
 * the data anyway (a receiver on this host: loopback, veth), its fd number
 * gets plain sends for this many zero-copy calls (up to twice as many
 * after a copy), then is tried again (the number may be reused by another
 * socket). */
#define NOZC_CALLS 64

/*
 * What the zero-copy engine remembers of a descriptor number. Kept in a
 * fixed cache indexed by the number's low bits (NOTE_CACHE entries per
 * thread, whatever numbers the calls pass): a number that shares its entry
 * with another one evicts it, which only costs the evicted one a zero-copy
 * try the note would have spared it.
 */
struct fd_note {
	int fd;              /* the number it is about (a new entry: 0, without marks) */
	uint8_t refused_for; /* zero-copy calls left that send it a copy instead */
	uint8_t copied_for;  /* the same, where zero-copy was copied (default mode only) */
	bool zc_sent;        /* its last zero-copy send moved data (its notification can
				say whether it was copied; one of a send of nothing cannot) */
};

#define NOTE_CACHE 4096u

/*
 * The descriptors of the current batch, to split a batch at a repeated
 * one: open addressing over twice a batch's size, an entry belonging to
 * the batch whose stamp it carries (a new batch costs no clearing).
 */
#define BATCH_SET (2 * RING_ENTRIES)
_Static_assert(BATCH_SET == 1u << 11, "seen_in_batch hashes to 11 bits");

struct batch_entry {
	int fd;
	uint32_t stamp;
};

/*
 * The blocking open files of a batch, by (st_dev, st_ino): the same socket
 * under two numbers (dup) must not be in one batch either, or the second
 * send would go before the first target, if short, is finished in user
 * space, and the bytes would interleave. Only a blocking target is
 * finished that way, and two numbers of one socket share its O_NONBLOCK
 * (a socket has one open file description), so nonblocking targets need
 * no fstat.
 */
struct file_set {
	dev_t dev[2 * RING_ENTRIES];
	ino_t ino[2 * RING_ENTRIES];
	bool used[2 * RING_ENTRIES];
	size_t mask;
};

/* The zero-copy buffer: per thread, pinned (registered) for the ring. */
#define ZC_ARENA_DEFAULT (2u << 20)

struct uring_thread {
	struct io_uring ring;
	struct fd_note note[NOTE_CACHE];
	struct batch_entry batch[BATCH_SET];
	uint32_t cur;         /* stamp of the current batch (0: none yet) */
	/* zero-copy: 0 not tried yet, 1 ready, -errno unusable */
	int zc_state;
	bool zc_report;       /* IORING_SEND_ZC_REPORT_USAGE accepted */
	pid_t pid;            /* ours, for process_vm_readv (a fork()ed child remakes it) */
	bool zc_skip_copied;  /* this call sends copies where zero-copy was copied */
	unsigned zc_copied_share; /* wvv_copied_share_add (engine_choice.c) */
	unsigned zc_idle_calls;
	/* short zero-copy targets of the current batch, finished in the ring */
	int npend;
	int pend_idx[RING_ENTRIES];
	size_t pend_done[RING_ENTRIES];
	bool fin_inflight[RING_ENTRIES];
	unsigned char *zc_mem;
	struct wvv_arena arena;
	struct wvv_zc_counters zc_count;
	struct file_set files; /* of the current batch */
};

static _Atomic int uring_status = 1; /* 1 unknown, 0 usable, <0 -errno */
static _Atomic long uring_retry_s;
/* 0: process_vm_readv works here (or was not tried yet); -errno: refused
 * (seccomp, ...), and the zero-copy engine cannot copy a payload safely. */
static _Atomic int vm_read_status;


static int uring_init(void *state)
{
	struct uring_thread *u = state;
	struct io_uring_params p;
	int err;

	u->pid = getpid();
	/* One thread submits and reaps: let the kernel skip the locking and
	 * run completions when we wait (6.1+); older kernels refuse the
	 * flags and get a plain ring. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
		  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = CQ_ENTRIES;
	err = io_uring_queue_init_params(RING_ENTRIES, &u->ring, &p);
	if (err == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = CQ_ENTRIES;
		err = io_uring_queue_init_params(RING_ENTRIES, &u->ring, &p);
	}
	return err;
}

static void uring_fini(void *state)
{
	struct uring_thread *u = state;

	/* In a fork()ed child this unmaps and closes the child's copy only. */
	io_uring_queue_exit(&u->ring);
	/* Sends still in flight keep the buffer's pages pinned in the kernel;
	 * unmapping (never free()) ensures nothing of ours is put in them. */
	if (u->zc_mem)
		munmap(u->zc_mem, u->arena.size);
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
 * second. Returns 1 for a repeat, 0 after marking it. A batch has at most
 * RING_ENTRIES descriptors, so the set is at most half full.
 */
static int seen_in_batch(struct uring_thread *u, int fd)
{
	uint32_t h = ((uint32_t)fd * 0x9e3779b1u) >> 21; /* 11 bits: BATCH_SET */

	if (fd < 0)
		return 0; /* EBADF whatever happens: no need to split */
	for (;; h = (h + 1) & (BATCH_SET - 1)) {
		struct batch_entry *e = &u->batch[h];

		if (e->stamp != u->cur) {
			e->stamp = u->cur;
			e->fd = fd;
			return 0;
		}
		if (e->fd == fd)
			return 1;
	}
}

static void new_batch(struct uring_thread *u)
{
	if (++u->cur == 0) { /* wrapped: forget all stamps */
		memset(u->batch, 0, sizeof(u->batch));
		u->cur = 1;
	}
}

/* fd's note, or NULL if the cache holds none for it. */
static struct fd_note *note_of(struct uring_thread *u, int fd)
{
	struct fd_note *n = &u->note[(unsigned)fd % NOTE_CACHE];

	return fd >= 0 && n->fd == fd ? n : NULL;
}

/* fd's note, made (evicting whichever number had its entry) if none. */
static struct fd_note *note_for(struct uring_thread *u, int fd)
{
	struct fd_note *n = &u->note[(unsigned)fd % NOTE_CACHE];

	if (n->fd != fd) {
		memset(n, 0, sizeof(*n));
		n->fd = fd;
	}
	return n;
}

/* Submit n queued requests; returns how many the kernel took. */
static int submit_all(struct uring_thread *u, int n)
{
	int done = 0, r, tries = 0;

	while (done < n) {
		/* With zero-copy payloads in flight, the same system call also
		 * runs the deferred completions (notifications among them). */
		r = u->arena.count ? io_uring_submit_and_get_events(&u->ring)
				   : io_uring_submit(&u->ring);
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

/* Report a target zero-copy did or did not help to the default mode's policy. */
static void count_copied(struct uring_thread *u, bool copied)
{
	wvv_copied_share_add(&u->zc_copied_share, copied);
}

/* A notification: the sockets let go of a zero-copy payload's pages. */
static bool is_notif(struct uring_thread *u, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	int fd = (int)(ud & UD_FD_MASK);
	struct fd_note *n;

	if (!(cqe->flags & IORING_CQE_F_NOTIF))
		return false;
	u->zc_count.notifs++;
	if ((unsigned)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
		count_copied(u, true);
	else if ((n = note_of(u, fd)) && n->zc_sent)
		count_copied(u, false);
	if ((unsigned)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) {
		u->zc_count.copied++;
		/* spread the retries of targets marked together */
		note_for(u, fd)->copied_for = NOZC_CALLS + (uint8_t)(fd % NOZC_CALLS);
	}
	wvv_arena_release(&u->arena, ud_rec(ud));
	return true;
}

/* Take the notifications that have come, without waiting. */
static void reap_notifs(struct uring_thread *u)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;

	io_uring_get_events(&u->ring); /* runs deferred completions */
	io_uring_for_each_cqe(&u->ring, head, cqe) {
		is_notif(u, cqe); /* no send is outstanding between calls */
		seen++;
	}
	io_uring_cq_advance(&u->ring, seen);
}

/* The result of target t, which took res (bytes or -errno) after 'done'. */
static void store_result(struct wvv_call *c, int t, size_t done, int res)
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
 * Reap the n send completions of the batch from target 'start' on (and any
 * notifications) and store each target's result. A zero-copy target that
 * took part of the data or none (EAGAIN) is left in u->pend when 'keep_short'.
 * A signal while waiting for finishing sends cancels them, and each ends as
 * a blocking writev interrupted by it would: with the count sent, or, if it
 * sent nothing at all, restarted (a writev that blocks as SA_RESTART would
 * have it). 0 or -errno.
 */
static int reap(struct uring_thread *u, struct wvv_call *c, int start, int n, bool keep_short)
{
	struct io_uring *ring = &u->ring;
	struct io_uring_cqe *cqe;
	bool cancelled = false;

	while (n > 0) {
		unsigned head, seen = 0;
		int err = io_uring_wait_cqe(ring, &cqe);

		if (err == -EINTR && !keep_short && !cancelled) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			if (sqe) {
				io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
				io_uring_sqe_set_data64(sqe, UD_CANCEL);
				cancelled = submit_all(u, 1) == 1;
				u->zc_count.cancels += cancelled;
			}
		}
		if (err == -EINTR)
			continue;
		if (err)
			return err;
		io_uring_for_each_cqe(ring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			int idx = (int)(ud >> UD_IDX_SHIFT & UD_IDX_MASK);
			int t = start + idx, res = cqe->res;

			seen++;
			if (ud == UD_CANCEL || is_notif(u, cqe))
				continue;
			n--;
			if (cqe->flags & IORING_CQE_F_MORE) { /* a notification follows */
				wvv_arena_hold(&u->arena, ud_rec(ud));
				u->zc_count.sends++;
				note_for(u, (int)(ud & UD_FD_MASK))->zc_sent = res > 0;
			}
			if (res == -EINVAL && (ud & UD_ZC) && u->zc_report) {
				u->zc_report = false; /* a kernel before 6.2: ask no more */
				res = -EAGAIN;        /* and write it below */
			}
			if (res == -EOPNOTSUPP && (ud & UD_ZC) && c->fds[t] >= 0) {
				note_for(u, c->fds[t])->refused_for = NOZC_CALLS;
				u->zc_count.refused++;
				count_copied(u, true);
			}
			if (ud & UD_FIN) {
				size_t sent = u->pend_done[idx] + (size_t)(res > 0 ? res : 0);

				u->fin_inflight[idx] = false;
				if (cancelled && sent > 0 && sent < c->total &&
				    (res >= 0 || res == -ECANCELED || res == -EINTR))
					/* interrupted after sending some: writev returns that */
					wvv_set_result(c, t, (ssize_t)sent);
				else
					store_result(c, t, u->pend_done[idx], res);
			} else if (keep_short && (ud & UD_ZC) &&
				   ((res >= 0 && (size_t)res < c->total) || res == -EAGAIN)) {
				u->pend_done[idx] = res > 0 ? (size_t)res : 0;
				u->pend_idx[u->npend++] = idx;
			} else {
				store_result(c, t, 0, res);
			}
		}
		io_uring_cq_advance(ring, seen);
	}
	return 0;
}

/* Does writev to fd block until everything is sent (no O_NONBLOCK, no
 * SO_SNDTIMEO)? Then a zero-copy send with MSG_WAITALL has its effect. */
static bool blocks_until_sent(int fd)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || (fl & O_NONBLOCK))
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) || tv.tv_sec || tv.tv_usec)
		return false;
	return true;
}

/*
 * Finish the short targets of a zero-copy batch. Blocking ones get the
 * rest of the payload zero-copy, all at once through the ring (MSG_WAITALL:
 * the ring waits for room in each socket); the others are finished with
 * writev as in the io_uring engine. 0 or -errno (the ring failed).
 */
static int finish_short(struct uring_thread *u, struct wvv_call *c, int start, int rec,
			const unsigned char *zc)
{
	int k, m = 0, n = u->npend, nwritev = 0;
	int writev_idx[RING_ENTRIES];

	u->npend = 0;
	for (k = 0; k < n; k++) {
		int idx = u->pend_idx[k], t = start + idx, fd = c->fds[t];
		size_t done = u->pend_done[idx];
		struct io_uring_sqe *sqe;

		if (!blocks_until_sent(fd) || !(sqe = io_uring_get_sqe(&u->ring))) {
			writev_idx[nwritev++] = idx;
			continue;
		}
		io_uring_prep_send_zc_fixed(sqe, fd, zc + done, c->total - done,
					    MSG_NOSIGNAL | MSG_WAITALL,
					    u->zc_report ? IORING_SEND_ZC_REPORT_USAGE : 0, 0);
		io_uring_sqe_set_data64(sqe, UD_FIN | UD_ZC | ud_pack(rec, idx, fd));
		u->fin_inflight[idx] = true;
		u->zc_count.finishes++;
		m++;
	}
	if (m && submit_all(u, m) < m)
		m = -1;
	/* the others while those wait in the kernel */
	for (k = 0; k < nwritev; k++)
		wvv_finish_target(c, start + writev_idx[k], u->pend_done[writev_idx[k]]);
	if (m && (m < 0 || reap(u, c, start, m, false))) {
		/* The ring failed (never seen): what these sends did is unknown
		 * past what was known sent; the rest is reported not written. */
		for (k = 0; k < n; k++) {
			int idx = u->pend_idx[k];

			if (u->fin_inflight[idx]) {
				u->fin_inflight[idx] = false;
				wvv_set_result(c, start + idx, u->pend_done[idx] ? (ssize_t)u->pend_done[idx]
										  : -EIO);
			}
		}
		return -EIO;
	}
	return 0;
}

/* Should target fd of a zero-copy call get a plain send of the buffer? */
static bool send_a_copy(struct uring_thread *u, int fd)
{
	struct fd_note *n = note_of(u, fd);

	if (!n)
		return false;
	if (n->refused_for) {
		n->refused_for--;
		count_copied(u, true);
		return true;
	}
	if (u->zc_skip_copied && n->copied_for) {
		n->copied_for--;
		count_copied(u, true);
		return true;
	}
	return false;
}

/* Queue the send of c to target i (index idx in its batch); rec >= 0:
 * SEND_ZC from the arena at zc, or a plain send from there. */
static void prep_send(struct uring_thread *u, struct io_uring_sqe *sqe, const struct wvv_call *c,
		      int i, int idx, struct msghdr *mh, int rec, const void *zc)
{
	const int flags = MSG_NOSIGNAL | MSG_DONTWAIT, fd = c->fds[i];
	uint64_t ud = ud_pack(rec, idx, fd);

	if (rec >= 0 && send_a_copy(u, fd)) {
		io_uring_prep_send(sqe, fd, zc, c->total, flags);
	} else if (rec >= 0) {
		io_uring_prep_send_zc_fixed(sqe, fd, zc, c->total, flags,
					    u->zc_report ? IORING_SEND_ZC_REPORT_USAGE : 0, 0);
		ud |= UD_ZC;
	} else if (c->iovcnt == 1) {
		io_uring_prep_send(sqe, fd, c->iov[0].iov_base, c->iov[0].iov_len, flags);
	} else {
		io_uring_prep_sendmsg(sqe, fd, mh, flags);
	}
	io_uring_sqe_set_data64(sqe, ud);
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

/* Run c through the ring in batches; rec >= 0 sends from the arena. */
static int run_batches(struct uring_thread *u, struct wvv_call *c, int rec,
		       const unsigned char *zc)
{
	struct msghdr mh;
	struct io_uring *ring = &u->ring;
	struct file_set *files = &u->files;
	int start = 0, end, i, n, submitted;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = (struct iovec *)c->iov;
	mh.msg_iovlen = (size_t)c->iovcnt;

	while (start < c->fdcnt) {
		new_batch(u);
		file_set_init(files, c->fdcnt - start < (int)RING_ENTRIES ? c->fdcnt - start
									   : (int)RING_ENTRIES);
		end = start;
		while (end < c->fdcnt && end - start < (int)RING_ENTRIES) {
			if (seen_in_batch(u, c->fds[end]) || file_set_add(files, c->fds[end]))
				break;
			end++;
		}
		for (i = start; i < end; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			if (!sqe) {
				end = i;
				break;
			}
			prep_send(u, sqe, c, i, i - start, &mh, rec, zc);
		}
		n = end - start;
		submitted = submit_all(u, n);
		u->npend = 0;
		if (reap(u, c, start, submitted, rec >= 0) || submitted < n ||
		    (u->npend && finish_short(u, c, start, rec, zc))) {
			/* The ring failed (never seen in practice): drop it with
			 * whatever it still holds unsubmitted, and write those
			 * targets in user space. */
			for (i = 0; i < u->npend; i++) /* reaped short, not finished */
				wvv_finish_target(c, start + u->pend_idx[i],
						  u->pend_done[u->pend_idx[i]]);
			wvv_tls_drop(&uring_tls);
			wvv_finish_from(c, start + submitted);
			return 1;
		}
		start = end;
	}
	return 0;
}

int wvv_uring_run(struct wvv_call *c)
{
	struct uring_thread *u;
	int err;

	if (c->total == 0)
		return -EINVAL;
	u = thread_ring(&err);
	if (!u)
		return err;
	err = run_batches(u, c, -1, NULL);
	return err < 0 ? err : 0;
}

/* The arena's size: WRITEVV_ZC_ARENA bytes if set (0 turns zero-copy off). */
static size_t zc_arena_size(void)
{
	const char *s = getenv("WRITEVV_ZC_ARENA");

	return s && *s ? (size_t)strtoull(s, NULL, 0) : ZC_ARENA_DEFAULT;
}

/* Make this thread's zero-copy buffer; 0 or -errno (remembered). */
static int zc_setup(struct uring_thread *u)
{
	struct io_uring_probe *probe;
	struct iovec iov;
	size_t size;
	void *mem;
	int err;

	if (u->zc_state)
		return u->zc_state > 0 ? 0 : u->zc_state;
	err = atomic_load(&vm_read_status);
	if (err)
		return u->zc_state = err;
	size = zc_arena_size();
	err = -EOPNOTSUPP;
	probe = io_uring_get_probe_ring(&u->ring);
	if (size < 4 * WVV_ARENA_ALIGN || !probe ||
	    !io_uring_opcode_supported(probe, IORING_OP_SEND_ZC))
		goto out;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	iov.iov_base = mem;
	iov.iov_len = size;
	/* Pins the pages (RLIMIT_MEMLOCK for unprivileged users: ENOMEM). */
	err = io_uring_register_buffers(&u->ring, &iov, 1);
	if (err) {
		munmap(mem, size);
		goto out;
	}
	u->zc_mem = mem;
	u->zc_report = true;
	u->zc_count.registrations++;
	wvv_arena_init(&u->arena, size);
out:
	if (probe)
		io_uring_free_probe(probe);
	u->zc_state = err ? err : 1;
	return err;
}

/* This thread's ring with its zero-copy buffer set up, or NULL with *err. */
static struct uring_thread *zc_thread(int *err)
{
	struct uring_thread *u;

	if ((*err = wvv_uring_available()))
		return NULL;
	u = thread_ring(err);
	if (u && (*err = zc_setup(u)))
		u = NULL;
	return u;
}

int wvv_zc_available(void)
{
	int err;

	zc_thread(&err);
	return err;
}

size_t wvv_zc_max(void)
{
	struct uring_thread *u;
	int err;

	u = zc_thread(&err);
	return u ? wvv_arena_max(&u->arena) : 0;
}

void wvv_zc_idle(void)
{
	struct uring_thread *u;
	int err;

	u = thread_ring(&err);
	if (!u || u->zc_state != 1)
		return;
	/* Payloads still held by sockets: look for their notifications (which
	 * the other engines' calls do not read) once in 8 calls. */
	if (u->arena.count && (++u->zc_idle_calls % 8 || (reap_notifs(u), u->arena.count)))
		return;
	io_uring_unregister_buffers(&u->ring);
	munmap(u->zc_mem, u->arena.size);
	u->zc_mem = NULL;
	u->zc_state = 0; /* set up again when needed */
}

bool wvv_zc_mostly_copied(void)
{
	struct uring_thread *u;
	int err;

	u = thread_ring(&err);
	return u && wvv_copied_share_mostly(u->zc_copied_share);
}

void wvv_zc_counters(struct wvv_zc_counters *out)
{
	struct uring_thread *u;
	int err;

	u = thread_ring(&err);
	memset(out, 0, sizeof(*out));
	if (u) {
		*out = u->zc_count;
		out->held = u->zc_mem ? u->arena.size : 0;
	}
}

/*
 * Copy c's payload to dst without ever faulting: process_vm_readv on our
 * own process reads what is readable and says how much, where memcpy would
 * die on an unmapped or PROT_NONE page. 0, or -EFAULT when not all of it
 * could be read: nothing was sent, and the call must be run by an engine
 * that hands the caller's memory to the kernel, which gives writev's own
 * answer (EFAULT, or a short count that depends on each target's kind).
 */
static int copy_payload(struct uring_thread *u, const struct wvv_call *c, unsigned char *dst)
{
	struct iovec local = { dst, c->total };
	ssize_t r = process_vm_readv(u->pid, &local, 1, c->iov, (unsigned long)c->iovcnt, 0);

	if (r >= 0 && (size_t)r == c->total)
		return 0;
	if (r < 0 && errno != EFAULT && errno != ENOMEM && errno != EINTR) {
		/* ENOSYS, EPERM...: never usable here (the engine turns off) */
		atomic_store(&vm_read_status, -errno);
		u->zc_state = -errno;
	}
	return -EFAULT;
}

int wvv_zc_run(struct wvv_call *c, bool skip_copied)
{
	struct uring_thread *u;
	size_t off;
	int err, rec;

	if (c->total == 0)
		return -EINVAL;
	u = zc_thread(&err);
	if (!u)
		return err;
	rec = wvv_arena_alloc(&u->arena, c->total, &off);
	if (rec == -ENOBUFS) {
		reap_notifs(u);
		rec = wvv_arena_alloc(&u->arena, c->total, &off);
	}
	if (rec < 0) {
		u->zc_count.no_room += rec == -ENOBUFS;
		return rec; /* nothing written: the caller uses another engine */
	}
	err = copy_payload(u, c, u->zc_mem + off);
	if (err) {
		wvv_arena_close(&u->arena, rec); /* nothing sent from it: free at once */
		return err;
	}
	u->zc_count.calls++;
	u->zc_skip_copied = skip_copied;
	err = run_batches(u, c, rec, u->zc_mem + off);
	if (err > 0)
		return 0; /* the ring (and arena) went away; the call was finished */
	wvv_arena_close(&u->arena, rec);
	return err;
}
