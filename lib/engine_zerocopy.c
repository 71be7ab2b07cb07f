/* SPDX-License-Identifier: MIT */
/*
 * The zero-copy engine copies the payload once into a per-thread buffer
 * registered with the thread's io_uring ring (uring_ring.c; places in it:
 * zc_arena.c) and sends it to each target with SEND_ZC, in the same
 * batches as the io_uring engine: the sockets take references to its
 * pages instead of copies. The call returns when every send has been
 * queued, like writev; the payload's place in the buffer is reused only
 * after the kernel has sent the notification of every one of those sends
 * (the pages may be read until the data is acknowledged). Sockets without
 * zero-copy support (EOPNOTSUPP: AF_UNIX, or TCP sockets that were ever in
 * a sockmap) are written with writev, and their fd number gets plain sends
 * of the buffer for the next NOZC_CALLS zero-copy calls. The kernel also
 * says when it had to copy a zero-copy send after all (the receiver is on
 * this host): the pages then stayed pinned until the ACK and the receiving
 * side made the copy, so nothing was saved for the host; the default mode
 * sends such targets plain copies too (the forced zero-copy mode does not),
 * and leaves the engine out while most are (engine_choice.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine_choice.h"
#include "call.h"
#include "internal.h"
#include "uring_ring.h"
#include "zc_arena.h"

/* user_data marks of this engine's requests (next to uring_ring.h's) */
#define UD_ZC (1ull << 63)
#define UD_FIN (1ull << 62)   /* a zero-copy send of the rest of a short target */

/* The arena record of a request (-1: none). */
static int ud_rec(uint64_t ud)
{
	return (int)(ud >> WVV_UD_REC_SHIFT & WVV_UD_REC_MASK) - 1;
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

/* The zero-copy buffer: per thread, pinned (registered) for the ring. */
#define ZC_ARENA_DEFAULT (2u << 20)

/* This engine's state on a thread's ring (made at its first use there). */
struct zc_thread {
	struct wvv_ring_ext ext; /* first: the ring's view of it */
	struct wvv_ring *r;
	struct fd_note note[NOTE_CACHE];
	int state;            /* 0 not tried yet, 1 ready, -errno unusable */
	bool report;          /* IORING_SEND_ZC_REPORT_USAGE accepted */
	pid_t pid;            /* ours, for process_vm_readv (a fork()ed child remakes it) */
	bool skip_copied;     /* this call sends copies where zero-copy was copied */
	unsigned copied_share; /* wvv_copied_share_add (engine_choice.c) */
	unsigned idle_calls;
	/* the current call: its arena record and its payload there */
	int rec;
	const unsigned char *payload;
	/* short targets of the current batch, finished in the ring */
	int npend;
	int pend_idx[WVV_RING_ENTRIES];
	size_t pend_done[WVV_RING_ENTRIES];
	bool fin_inflight[WVV_RING_ENTRIES];
	unsigned char *mem;
	struct wvv_arena arena;
	struct wvv_zc_counters count;
};

/* 0: process_vm_readv works here (or was not tried yet); -errno: refused
 * (seccomp, ...), and the zero-copy engine cannot copy a payload safely. */
static _Atomic int vm_read_status;

/* fd's note, or NULL if the cache holds none for it. */
static struct fd_note *note_of(struct zc_thread *z, int fd)
{
	struct fd_note *n = &z->note[(unsigned)fd % NOTE_CACHE];

	return fd >= 0 && n->fd == fd ? n : NULL;
}

/* fd's note, made (evicting whichever number had its entry) if none. */
static struct fd_note *note_for(struct zc_thread *z, int fd)
{
	struct fd_note *n = &z->note[(unsigned)fd % NOTE_CACHE];

	if (n->fd != fd) {
		memset(n, 0, sizeof(*n));
		n->fd = fd;
	}
	return n;
}

/* Report a target zero-copy did or did not help to the default mode's policy. */
static void count_copied(struct zc_thread *z, bool copied)
{
	wvv_copied_share_add(&z->copied_share, copied);
}

/* A notification: the sockets let go of a zero-copy payload's pages. */
static bool is_notif(struct wvv_ring_ext *x, const struct io_uring_cqe *cqe)
{
	struct zc_thread *z = (struct zc_thread *)x;
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	int fd = wvv_ud_fd(ud);
	struct fd_note *n;

	if (!(cqe->flags & IORING_CQE_F_NOTIF))
		return false;
	z->count.notifs++;
	if ((unsigned)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
		count_copied(z, true);
	else if ((n = note_of(z, fd)) && n->zc_sent)
		count_copied(z, false);
	if ((unsigned)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) {
		z->count.copied++;
		/* spread the retries of targets marked together */
		note_for(z, fd)->copied_for = NOZC_CALLS + (uint8_t)(fd % NOZC_CALLS);
	}
	wvv_arena_release(&z->arena, ud_rec(ud));
	return true;
}

static bool payloads_in_flight(struct wvv_ring_ext *x)
{
	return ((struct zc_thread *)x)->arena.count != 0;
}

static void zc_fini(struct wvv_ring_ext *x)
{
	struct zc_thread *z = (struct zc_thread *)x;

	/* Sends still in flight keep the buffer's pages pinned in the kernel;
	 * unmapping (never free()) ensures nothing of ours is put in them. */
	if (z->mem)
		munmap(z->mem, z->arena.size);
	free(z);
}

/*
 * A send of the batch completed. A zero-copy target that took part of the
 * data or none (EAGAIN) is kept in z->pend for finish_short. A finishing
 * send cancelled by a signal ends as a blocking writev interrupted by it
 * would: with the count sent, or, if it sent nothing at all, restarted (a
 * writev that blocks as SA_RESTART would have it).
 */
static void complete(void *ctx, struct wvv_call *c, int start, const struct io_uring_cqe *cqe,
		     bool cancelled)
{
	struct zc_thread *z = ctx;
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	int idx = wvv_ud_idx(ud), t = start + idx, res = cqe->res;

	if (cqe->flags & IORING_CQE_F_MORE) { /* a notification follows */
		wvv_arena_hold(&z->arena, ud_rec(ud));
		z->count.sends++;
		note_for(z, wvv_ud_fd(ud))->zc_sent = res > 0;
	}
	if (res == -EINVAL && (ud & UD_ZC) && z->report) {
		z->report = false; /* a kernel before 6.2: ask no more */
		res = -EAGAIN;     /* and write it below */
	}
	if (res == -EOPNOTSUPP && (ud & UD_ZC) && c->fds[t] >= 0) {
		note_for(z, c->fds[t])->refused_for = NOZC_CALLS;
		z->count.refused++;
		count_copied(z, true);
	}
	if (ud & UD_FIN) {
		size_t sent = z->pend_done[idx] + (size_t)(res > 0 ? res : 0);

		z->fin_inflight[idx] = false;
		if (cancelled && sent > 0 && sent < c->total &&
		    (res >= 0 || res == -ECANCELED || res == -EINTR))
			/* interrupted after sending some: writev returns that */
			wvv_set_result(c, t, (ssize_t)sent);
		else
			wvv_ring_store_result(c, t, z->pend_done[idx], res);
	} else if ((ud & UD_ZC) && ((res >= 0 && (size_t)res < c->total) || res == -EAGAIN)) {
		z->pend_done[idx] = res > 0 ? (size_t)res : 0;
		z->pend_idx[z->npend++] = idx;
	} else {
		wvv_ring_store_result(c, t, 0, res);
	}
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

/* The finishing sends: a signal cancels them (see complete()). */
static const struct wvv_ring_sender finish_sender = {
	.complete = complete,
	.cancel_on_signal = true,
};

/*
 * Finish the short targets of a zero-copy batch. Blocking ones get the
 * rest of the payload zero-copy, all at once through the ring (MSG_WAITALL:
 * the ring waits for room in each socket); the others are finished with
 * writev as in the io_uring engine. 0 or -errno (the ring failed).
 */
static int finish_short(void *ctx, struct wvv_ring *r, struct wvv_call *c, int start)
{
	struct zc_thread *z = ctx;
	int k, m = 0, n = z->npend, nwritev = 0;
	int writev_idx[WVV_RING_ENTRIES];

	if (!n)
		return 0;
	z->npend = 0;
	for (k = 0; k < n; k++) {
		int idx = z->pend_idx[k], t = start + idx, fd = c->fds[t];
		size_t done = z->pend_done[idx];
		struct io_uring_sqe *sqe;

		if (!blocks_until_sent(fd) || !(sqe = io_uring_get_sqe(&r->ring))) {
			writev_idx[nwritev++] = idx;
			continue;
		}
		io_uring_prep_send_zc_fixed(sqe, fd, z->payload + done, c->total - done,
					    MSG_NOSIGNAL | MSG_WAITALL,
					    z->report ? IORING_SEND_ZC_REPORT_USAGE : 0, 0);
		io_uring_sqe_set_data64(sqe, UD_FIN | UD_ZC | wvv_ud_pack(z->rec, idx, fd));
		z->fin_inflight[idx] = true;
		z->count.finishes++;
		m++;
	}
	if (m && wvv_ring_submit(r, m) < m)
		m = -1;
	/* the others while those wait in the kernel */
	for (k = 0; k < nwritev; k++)
		wvv_finish_target(c, start + writev_idx[k], z->pend_done[writev_idx[k]]);
	if (m && (m < 0 || wvv_ring_reap(r, c, start, m, &finish_sender, z))) {
		/* The ring failed (never seen): what these sends did is unknown
		 * past what was known sent; the rest is reported not written. */
		for (k = 0; k < n; k++) {
			int idx = z->pend_idx[k];

			if (z->fin_inflight[idx]) {
				z->fin_inflight[idx] = false;
				wvv_set_result(c, start + idx, z->pend_done[idx] ? (ssize_t)z->pend_done[idx]
										  : -EIO);
			}
		}
		return -EIO;
	}
	return 0;
}

/* The ring failed: the targets reaped short, not finished, get writev. */
static void abandon(void *ctx, struct wvv_call *c, int start)
{
	struct zc_thread *z = ctx;
	int i;

	for (i = 0; i < z->npend; i++)
		wvv_finish_target(c, start + z->pend_idx[i], z->pend_done[z->pend_idx[i]]);
	z->npend = 0;
}

/* Should target fd of a zero-copy call get a plain send of the buffer? */
static bool send_a_copy(struct zc_thread *z, int fd)
{
	struct fd_note *n = note_of(z, fd);

	if (!n)
		return false;
	if (n->refused_for) {
		n->refused_for--;
		count_copied(z, true);
		return true;
	}
	if (z->skip_copied && n->copied_for) {
		n->copied_for--;
		count_copied(z, true);
		return true;
	}
	return false;
}

/* Queue the send of the payload (in the buffer) to target i: SEND_ZC, or
 * a plain send from the buffer where zero-copy does not help. */
static void prep_send(void *ctx, struct io_uring_sqe *sqe, const struct wvv_call *c, int i,
		      int idx, struct msghdr *mh)
{
	struct zc_thread *z = ctx;
	const int flags = MSG_NOSIGNAL | MSG_DONTWAIT, fd = c->fds[i];
	uint64_t ud = wvv_ud_pack(z->rec, idx, fd);

	(void)mh;
	if (send_a_copy(z, fd)) {
		io_uring_prep_send(sqe, fd, z->payload, c->total, flags);
	} else {
		io_uring_prep_send_zc_fixed(sqe, fd, z->payload, c->total, flags,
					    z->report ? IORING_SEND_ZC_REPORT_USAGE : 0, 0);
		ud |= UD_ZC;
	}
	io_uring_sqe_set_data64(sqe, ud);
}

static const struct wvv_ring_sender zc_sender = {
	.prep = prep_send,
	.complete = complete,
	.after_batch = finish_short,
	.abandon = abandon,
	.cancel_on_signal = false, /* MSG_DONTWAIT sends: short ones are kept */
};

/* The arena's size: WRITEVV_ZC_ARENA bytes if set (0 turns zero-copy off). */
static size_t zc_arena_size(void)
{
	const char *s = getenv("WRITEVV_ZC_ARENA");

	return s && *s ? (size_t)strtoull(s, NULL, 0) : ZC_ARENA_DEFAULT;
}

/* This engine's state on ring r, made if none; NULL if out of memory. */
static struct zc_thread *zc_of(struct wvv_ring *r)
{
	struct zc_thread *z;

	if (r->ext)
		return (struct zc_thread *)r->ext;
	z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	z->ext.other_cqe = is_notif;
	z->ext.in_flight = payloads_in_flight;
	z->ext.fini = zc_fini;
	z->r = r;
	z->pid = getpid();
	r->ext = &z->ext;
	return z;
}

/* Make this thread's zero-copy buffer; 0 or -errno (remembered). */
static int zc_setup(struct zc_thread *z)
{
	struct io_uring_probe *probe;
	struct iovec iov;
	size_t size;
	void *mem;
	int err;

	if (z->state)
		return z->state > 0 ? 0 : z->state;
	err = atomic_load(&vm_read_status);
	if (err)
		return z->state = err;
	size = zc_arena_size();
	err = -EOPNOTSUPP;
	probe = io_uring_get_probe_ring(&z->r->ring);
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
	err = io_uring_register_buffers(&z->r->ring, &iov, 1);
	if (err) {
		munmap(mem, size);
		goto out;
	}
	z->mem = mem;
	z->report = true;
	z->count.registrations++;
	wvv_arena_init(&z->arena, size);
out:
	if (probe)
		io_uring_free_probe(probe);
	z->state = err ? err : 1;
	return err;
}

/* This thread's engine state with its buffer set up, or NULL with *err. */
static struct zc_thread *zc_thread(int *err)
{
	struct wvv_ring *r;
	struct zc_thread *z;

	if ((*err = wvv_uring_available()))
		return NULL;
	r = wvv_ring_get(err);
	if (!r)
		return NULL;
	z = zc_of(r);
	if (!z)
		*err = -ENOMEM;
	else if ((*err = zc_setup(z)))
		z = NULL;
	return z;
}

/* This thread's engine state if it has any (nothing is made). */
static struct zc_thread *zc_existing(void)
{
	struct wvv_ring *r;
	int err;

	r = wvv_ring_get(&err);
	return r ? (struct zc_thread *)r->ext : NULL;
}

int wvv_zc_available(void)
{
	int err;

	zc_thread(&err);
	return err;
}

size_t wvv_zc_max(void)
{
	struct zc_thread *z;
	int err;

	z = zc_thread(&err);
	return z ? wvv_arena_max(&z->arena) : 0;
}

void wvv_zc_idle(void)
{
	struct zc_thread *z = zc_existing();

	if (!z || z->state != 1)
		return;
	/* Payloads still held by sockets: look for their notifications (which
	 * the other engines' calls do not read) once in 8 calls. */
	if (z->arena.count &&
	    (++z->idle_calls % 8 || (wvv_ring_reap_others(z->r), z->arena.count)))
		return;
	io_uring_unregister_buffers(&z->r->ring);
	munmap(z->mem, z->arena.size);
	z->mem = NULL;
	z->state = 0; /* set up again when needed */
}

bool wvv_zc_mostly_copied(void)
{
	struct zc_thread *z = zc_existing();

	return z && wvv_copied_share_mostly(z->copied_share);
}

void wvv_zc_counters(struct wvv_zc_counters *out)
{
	struct wvv_ring *r;
	struct zc_thread *z;
	int err;

	memset(out, 0, sizeof(*out));
	r = wvv_ring_get(&err);
	if (!r)
		return;
	z = (struct zc_thread *)r->ext;
	if (z) {
		*out = z->count;
		out->held = z->mem ? z->arena.size : 0;
	}
	out->cancels = r->cancels;
}

/*
 * Copy c's payload to dst without ever faulting: process_vm_readv on our
 * own process reads what is readable and says how much, where memcpy would
 * die on an unmapped or PROT_NONE page. 0, or -EFAULT when not all of it
 * could be read: nothing was sent, and the call must be run by an engine
 * that hands the caller's memory to the kernel, which gives writev's own
 * answer (EFAULT, or a short count that depends on each target's kind).
 */
static int copy_payload(struct zc_thread *z, const struct wvv_call *c, unsigned char *dst)
{
	struct iovec local = { dst, c->total };
	ssize_t r = process_vm_readv(z->pid, &local, 1, c->iov, (unsigned long)c->iovcnt, 0);

	if (r >= 0 && (size_t)r == c->total)
		return 0;
	if (r < 0 && errno != EFAULT && errno != ENOMEM && errno != EINTR) {
		/* ENOSYS, EPERM...: never usable here (the engine turns off) */
		atomic_store(&vm_read_status, -errno);
		z->state = -errno;
	}
	return -EFAULT;
}

int wvv_zc_run(struct wvv_call *c, bool skip_copied)
{
	struct zc_thread *z;
	size_t off;
	int err, rec;

	if (c->total == 0)
		return -EINVAL;
	z = zc_thread(&err);
	if (!z)
		return err;
	rec = wvv_arena_alloc(&z->arena, c->total, &off);
	if (rec == -ENOBUFS) {
		wvv_ring_reap_others(z->r);
		rec = wvv_arena_alloc(&z->arena, c->total, &off);
	}
	if (rec < 0) {
		z->count.no_room += rec == -ENOBUFS;
		return rec; /* nothing written: the caller uses another engine */
	}
	err = copy_payload(z, c, z->mem + off);
	if (err) {
		wvv_arena_close(&z->arena, rec); /* nothing sent from it: free at once */
		return err;
	}
	z->count.calls++;
	z->skip_copied = skip_copied;
	z->rec = rec;
	z->payload = z->mem + off;
	if (wvv_ring_run(z->r, c, &zc_sender, z))
		return 0; /* the ring (and arena) went away; the call was finished */
	wvv_arena_close(&z->arena, rec);
	return 0;
}
