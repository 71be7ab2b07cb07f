/* SPDX-License-Identifier: MIT */
/*
 * writevv - write one buffer to many file descriptors in one call.
 *
 * The effect of writevv(fds, fdcnt, iov, iovcnt, returns, errors) is that of
 * calling writev(fds[i], iov, iovcnt) for i = 0 .. fdcnt-1 in turn.
 * See writevv(3).
 */
#ifndef WRITEVV_H
#define WRITEVV_H

#include <stddef.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* WRITEVV_VERSION_MAJOR, _MINOR, _PATCH */
#include "writevv_version.h"

/*
 * Write iov[0..iovcnt) to each of fds[0..fdcnt).
 *
 * returns[i] receives what writev(fds[i], iov, iovcnt) would have returned
 * ((size_t)-1 on error) and errors[i] its errno (0 on success).  Either
 * array may be NULL when the caller does not want it.
 *
 * Returns the number of descriptors that took the entire data, or -1 with
 * errno set for call-level errors only:
 *   EINVAL  fdcnt < 0, iovcnt < 0, iovcnt > IOV_MAX, or the total length
 *           exceeds SSIZE_MAX
 *   EFAULT  fds or iov is NULL with a non-zero count
 *   ENOMEM  the library could not allocate its per-call state
 *
 * Never raises SIGPIPE: a dead peer shows up as EPIPE in errors[i].
 */
int writevv(const int *fds, int fdcnt, const struct iovec *iov, int iovcnt,
	    size_t *returns, int *errors);

/* writevv_control() operations */
#define WRITEVV_GETMODE 1 /* *val <- the engine really in use */
#define WRITEVV_SETMODE 2 /* select *val as the process-wide mode */

/* Modes (and, for GETMODE, engines) */
#define WRITEVV_MODE_DEFAULT  0 /* the fastest correct engine available here */
#define WRITEVV_MODE_KERNEL   1 /* the BPF sk_msg fan-out engine */
#define WRITEVV_MODE_USERLAND 2 /* a plain writev loop */
#define WRITEVV_MODE_IOURING  3 /* one io_uring submission of all the writes */
#define WRITEVV_MODE_SENDFILE 4 /* copy once into a memfd, sendfile to each */
#define WRITEVV_MODE_ZEROCOPY 5 /* copy once into a registered buffer, SEND_ZC to each */

/*
 * WRITEVV_GETMODE stores the engine that a call made now by this thread
 * would use: WRITEVV_MODE_KERNEL, WRITEVV_MODE_IOURING,
 * WRITEVV_MODE_SENDFILE, WRITEVV_MODE_ZEROCOPY or WRITEVV_MODE_USERLAND
 * (never DEFAULT; for the default mode, the engine of small payloads).
 * The default mode picks per call: payloads under 1 KiB go in one io_uring
 * batch; from 1 KiB, each thread learns per payload size class which of
 * io_uring, sendfile and zero-copy costs it the least CPU per target and
 * mostly uses that one (WRITEVV_SENDFILE_MIN=<bytes> in the environment
 * pins a fixed threshold instead: sendfile from there, io_uring below);
 * the writev loop serves where none of them works. On the kernels
 * measured, the sk_msg engine costs the sender about as much CPU as the
 * loop (see BENCHMARKS.md), so it runs only when asked for. In kernel
 * mode, GETMODE reports USERLAND once the program is found unloaded or
 * while this thread finds every control slot taken; in any engine,
 * descriptors it cannot serve are written with writev in the same call.
 * The zero-copy engine pins a buffer of WRITEVV_ZC_ARENA bytes per thread
 * (default 2 MiB, 0 turns it off) and takes payloads up to a quarter of it.
 * WRITEVV_SETMODE selects a mode; the initial mode comes from the
 * environment variable WRITEVV_MODE ("default", "kernel", "userland",
 * "iouring", "sendfile", "zerocopy").
 *
 * Returns 0, or -1 with errno:
 *   EINVAL  unknown op or mode, or val is NULL
 *   ENOENT  kernel mode asked for but the BPF program is not loaded
 *           (run `writevv-loader load`)
 *   EACCES  kernel mode asked for but the pinned objects are not accessible
 *   EPROTO  kernel mode asked for but the pinned objects belong to another
 *           version of writevv
 *   EOPNOTSUPP  zero-copy mode asked for but this kernel has no SEND_ZC
 *           or WRITEVV_ZC_ARENA is 0
 *   other   io_uring, sendfile or zero-copy mode asked for but it does not
 *           work here (the error io_uring_setup, memfd_create or the buffer
 *           registration gave; ENOMEM: RLIMIT_MEMLOCK is too low)
 */
int writevv_control(int op, int *val);

/* Human-readable reason why the kernel engine is unavailable ("" if it is). */
const char *writevv_kernel_status(void);

#ifdef __cplusplus
}
#endif

#endif /* WRITEVV_H */
