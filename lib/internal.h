/* SPDX-License-Identifier: MIT */
/* Internal interfaces of libwritevv. Internal functions return negative errno. */
#ifndef WRITEVV_INTERNAL_H
#define WRITEVV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Only the calls of writevv.h are exported from the shared library. */
#define WVV_EXPORT __attribute__((visibility("default")))

struct wvv_call; /* call.h: the call layer */

/* validate.c: call-level argument checks; 0 or -errno. */
int wvv_validate(const int *fds, int fdcnt, const struct iovec *iov, int iovcnt,
		 size_t *total);

/* iov_cursor.c: walking a byte offset through an iovec array. */
struct wvv_iov_slice {
	int first;          /* index of the first iovec with data at the offset */
	size_t first_skip;  /* bytes to skip in that iovec */
};
/* Locate byte offset 'off' in iov; zero-length entries are skipped. */
struct wvv_iov_slice wvv_iov_locate(const struct iovec *iov, int iovcnt, size_t off);
/*
 * Fill out[0..max) with the iovecs covering [off, off + len) of iov,
 * dropping zero-length entries. Returns the number of entries written; the
 * bytes covered may be fewer than len when max entries are not enough.
 * *covered receives the bytes covered.
 */
int wvv_iov_slice(const struct iovec *iov, int iovcnt, size_t off, size_t len,
		  struct iovec *out, int max, size_t *covered);

/* engine_userland.c: the whole call in user space, one writev each. */
void wvv_userland_run(struct wvv_call *c);

/* probe.c: when to try an engine, or a thread's part of one, again after
 * it failed: a second later. The kernel engine retries whatever the error
 * (the program may be loaded any time): wvv_retry_due / wvv_retry_later.
 * The others retry a lack of resources (EMFILE, ENOMEM...) only; a refusal
 * (ENOSYS, EPERM...) is final for the process: wvv_probe_again / _failed. */
bool wvv_retry_due(_Atomic long long *at);   /* true if no wait is pending */
void wvv_retry_later(_Atomic long long *at); /* wait a second from now */
int wvv_probe_again(int err, _Atomic long long *retry_at);
void wvv_probe_failed(int err, _Atomic long long *retry_at);

/* engine_sendfile.c */
int wvv_sendfile_available(void);
/* Copy once into a memfd, sendfile to each TCP target; -errno if it could
 * not start (then nothing was written). */
int wvv_sendfile_run(struct wvv_call *c);

/* uring_ring.c: the per-thread ring both io_uring engines use (uring_ring.h) */
int wvv_uring_available(void);       /* 0 if io_uring works here, else -errno */

/* engine_uring.c */
/* Run the call through io_uring batches; -errno if it could not start
 * (then nothing was written). */
int wvv_uring_run(struct wvv_call *c);

/* engine_zerocopy.c */
/* The zero-copy engine (the same ring): 0 if this thread can use it, else -errno
 * (EOPNOTSUPP: no SEND_ZC or WRITEVV_ZC_ARENA=0; ENOMEM: RLIMIT_MEMLOCK). */
int wvv_zc_available(void);
/* The largest payload it takes on this thread (0 if unusable). */
size_t wvv_zc_max(void);
/* Run c with one copy into this thread's registered buffer and a SEND_ZC
 * per target; skip_copied: targets whose zero-copy sends the kernel
 * reported copied get plain sends for a while. -ENOBUFS (no room now) or
 * -EMSGSIZE (too big) or -EFAULT (some of the payload is not readable):
 * nothing was written and another engine must run the call (one that
 * sends from the caller's memory, for EFAULT); other -errno as above. */
int wvv_zc_run(struct wvv_call *c, bool skip_copied);
/* Were most of this thread's recent zero-copy targets copied anyway (their
 * receivers are on this host), or refused, or sent copies for those reasons? */
bool wvv_zc_mostly_copied(void);
/* Unpin this thread's zero-copy buffer if no payload is in flight (it is
 * registered again at the next need). */
void wvv_zc_idle(void);
/* What this thread's zero-copy engine did (for tests). */
struct wvv_zc_counters {
	uint64_t calls;    /* calls that sent from the buffer */
	uint64_t sends;    /* SEND_ZC completions that announced a notification */
	uint64_t notifs;   /* notifications received */
	uint64_t no_room;  /* calls left to io_uring: the buffer was full */
	uint64_t refused;  /* sends refused (EOPNOTSUPP): that fd gets copies for a while */
	uint64_t copied;   /* notifications saying the kernel copied the data anyway */
	uint64_t registrations; /* times the buffer was registered (pinned) */
	uint64_t finishes; /* short blocking targets sent the rest zero-copy */
	uint64_t cancels;  /* such finishing sends cancelled by a signal */
	uint64_t held;     /* bytes registered now */
};
void wvv_zc_counters(struct wvv_zc_counters *out);

/* ctl_peer.c: accept, on the non-blocking listener lfd, the connection
 * whose peer is 'own' (our connect's local address); others are closed.
 * Returns the accepted fd or -errno. */
struct sockaddr_in;
int wvv_accept_peer(int lfd, const struct sockaddr_in *own);

/* engine_kernel.c */
int wvv_kernel_available(void);      /* 0 if usable, else -errno */
const char *wvv_kernel_reason(void);
/* Can this thread use the engine now (it got, or may try for, a slot)? */
int wvv_kernel_thread_usable(void);
/* Run the call through the BPF engine; targets it cannot serve are written
 * in userland in the same call. Returns 0, or -errno if the engine could not
 * start (then nothing was written). */
int wvv_kernel_run(struct wvv_call *c);

#endif
