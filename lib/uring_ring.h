/* SPDX-License-Identifier: MIT */
/*
 * The per-thread io_uring ring both io_uring engines send through
 * (uring_ring.c): its set-up, cutting a call into batches, submitting and
 * reaping them. What a request is and what its completion means is the
 * engine's (struct wvv_ring_sender); the zero-copy engine also hangs its
 * per-thread state on the ring (struct wvv_ring_ext), since its buffer is
 * registered with it and its notifications come on it.
 */
#ifndef WRITEVV_URING_RING_H
#define WRITEVV_URING_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <liburing.h>

#include "call.h"

#define WVV_RING_ENTRIES 1024u /* requests per batch */

/* user_data: the fd (a notification names its socket by it), the index
 * in the batch (the result's place), the zero-copy engine's arena record
 * + 1 and its marks */
#define WVV_UD_FD_MASK 0x7fffffffull
#define WVV_UD_IDX_SHIFT 31
#define WVV_UD_IDX_MASK 0x3ffull /* WVV_RING_ENTRIES */
#define WVV_UD_REC_SHIFT 41
#define WVV_UD_REC_MASK 0xffffull
#define WVV_UD_CANCEL (~0ull)   /* the cancellation of a batch's sends, on a signal */

static inline uint64_t wvv_ud_pack(int rec, int idx, int fd)
{
	return (uint64_t)(rec + 1) << WVV_UD_REC_SHIFT | (uint64_t)idx << WVV_UD_IDX_SHIFT |
	       ((uint64_t)fd & WVV_UD_FD_MASK);
}

static inline int wvv_ud_idx(uint64_t ud)
{
	return (int)(ud >> WVV_UD_IDX_SHIFT & WVV_UD_IDX_MASK);
}

static inline int wvv_ud_fd(uint64_t ud)
{
	return (int)(ud & WVV_UD_FD_MASK);
}

/* State an engine keeps on the thread's ring, made and freed by it. */
struct wvv_ring_ext {
	/* A completion that belongs to no batch (a notification): true if taken. */
	bool (*other_cqe)(struct wvv_ring_ext *x, const struct io_uring_cqe *cqe);
	/* Are completions of earlier calls still to come (reap them while submitting)? */
	bool (*in_flight)(struct wvv_ring_ext *x);
	/* The ring goes away (thread exit, fork()ed child, failure): after io_uring_queue_exit. */
	void (*fini)(struct wvv_ring_ext *x);
};

struct batch_entry {
	int fd;
	uint32_t stamp;
};

/*
 * The descriptors of the current batch, to split a batch at a repeated
 * one: open addressing over twice a batch's size, an entry belonging to
 * the batch whose stamp it carries (a new batch costs no clearing).
 */
#define WVV_BATCH_SET (2 * WVV_RING_ENTRIES)

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
	dev_t dev[2 * WVV_RING_ENTRIES];
	ino_t ino[2 * WVV_RING_ENTRIES];
	bool used[2 * WVV_RING_ENTRIES];
	size_t mask;
};

struct wvv_ring {
	struct io_uring ring;
	struct batch_entry batch[WVV_BATCH_SET];
	uint32_t cur;           /* stamp of the current batch (0: none yet) */
	struct file_set files;  /* of the current batch */
	uint64_t cancels;       /* batches cancelled by a signal (for tests) */
	struct wvv_ring_ext *ext; /* the zero-copy engine's, or NULL */
};

/* How an engine sends through the ring. */
struct wvv_ring_sender {
	/* Queue target i's send (idx: its index in the batch). */
	void (*prep)(void *ctx, struct io_uring_sqe *sqe, const struct wvv_call *c, int i,
		     int idx, struct msghdr *mh);
	/* A send of the batch from target 'start' completed; 'cancelled': the
	 * batch was cancelled by a signal. */
	void (*complete)(void *ctx, struct wvv_call *c, int start,
			 const struct io_uring_cqe *cqe, bool cancelled);
	/* After a batch is reaped, finish what complete() kept back; 0 or
	 * -errno (the ring failed). NULL: nothing kept. */
	int (*after_batch)(void *ctx, struct wvv_ring *r, struct wvv_call *c, int start);
	/* The ring failed: finish, in user space, what complete() kept back. */
	void (*abandon)(void *ctx, struct wvv_call *c, int start);
	/* Cancel the batch's sends when a signal interrupts the wait. */
	bool cancel_on_signal;
};

/* 0 if io_uring works here, else -errno (retried as probe.c says). */
int wvv_uring_available(void);
/* This thread's ring, made on first use; NULL with *err. */
struct wvv_ring *wvv_ring_get(int *err);
/*
 * Run c through the ring in batches. 0, or 1 when the ring failed (never
 * seen in practice): it was dropped with whatever it held unsubmitted, and
 * the call was finished in user space.
 */
int wvv_ring_run(struct wvv_ring *r, struct wvv_call *c, const struct wvv_ring_sender *s,
		 void *ctx);
/* Submit n queued requests; returns how many the kernel took. */
int wvv_ring_submit(struct wvv_ring *r, int n);
/* Reap the n completions of requests of the batch from 'start' as s says
 * (other completions go to the ring's ext). 0 or -errno. */
int wvv_ring_reap(struct wvv_ring *r, struct wvv_call *c, int start, int n,
		  const struct wvv_ring_sender *s, void *ctx);
/* Hand the completions that have come to the ring's ext, without waiting. */
void wvv_ring_reap_others(struct wvv_ring *r);
/* The result of target t, which took res (bytes or -errno) after 'done':
 * complete, or finished with writev's semantics. */
void wvv_ring_store_result(struct wvv_call *c, int t, size_t done, int res);

#endif
