/* SPDX-License-Identifier: MIT */
/*
 * The io_uring engine: one SEND/SENDMSG per target, all submitted with one
 * io_uring_enter per batch (the thread's ring, uring_ring.c). Every request
 * carries MSG_DONTWAIT so that none is parked on a full socket and none
 * stalls the batch; a target that did not take everything is finished with
 * one writev-equivalent call, which blocks or not as the target's own
 * O_NONBLOCK says, exactly as writev would. MSG_NOSIGNAL keeps SIGPIPE
 * away; descriptors that are not sockets (ENOTSOCK) are written with writev
 * in the same call.
 */
#define _GNU_SOURCE
#include <errno.h>

#include "call.h"
#include "internal.h"
#include "uring_ring.h"

static void prep_send(void *ctx, struct io_uring_sqe *sqe, const struct wvv_call *c, int i,
		      int idx, struct msghdr *mh)
{
	const int flags = MSG_NOSIGNAL | MSG_DONTWAIT, fd = c->fds[i];

	(void)ctx;
	if (c->iovcnt == 1)
		io_uring_prep_send(sqe, fd, c->iov[0].iov_base, c->iov[0].iov_len, flags);
	else
		io_uring_prep_sendmsg(sqe, fd, mh, flags);
	io_uring_sqe_set_data64(sqe, wvv_ud_pack(-1, idx, fd));
}

static void complete(void *ctx, struct wvv_call *c, int start, const struct io_uring_cqe *cqe,
		     bool cancelled)
{
	(void)ctx;
	(void)cancelled;
	wvv_ring_store_result(c, start + wvv_ud_idx(io_uring_cqe_get_data64(cqe)), 0, cqe->res);
}

static const struct wvv_ring_sender copy_sender = {
	.prep = prep_send,
	.complete = complete,
	.cancel_on_signal = true,
};

int wvv_uring_run(struct wvv_call *c)
{
	struct wvv_ring *r;
	int err;

	if (c->total == 0)
		return -EINVAL;
	r = wvv_ring_get(&err);
	if (!r)
		return err;
	wvv_ring_run(r, c, &copy_sender, NULL);
	return 0;
}
