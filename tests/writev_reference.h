/* SPDX-License-Identifier: MIT */
/* What writevv must equal: the plain writev loop (tests and fuzz target). */
#ifndef WRITEVV_TEST_WRITEV_REFERENCE_H
#define WRITEVV_TEST_WRITEV_REFERENCE_H

#include <sys/types.h>
#include <sys/uio.h>

/* One writev in place of writev(2): returns like it, its errno in *err. */
typedef ssize_t (*writev_one_fn)(int fd, const struct iovec *iov, int iovcnt, int *err);

/*
 * writev(fds[i], iov, iovcnt) on each fd in turn, with writevv's call-level
 * answers (writevv.h): -1 and EINVAL for a negative count, more than IOV_MAX
 * iovecs or a total over SSIZE_MAX; -1 and EFAULT for a NULL array with a
 * count. Else rets[i]/errs[i] as writevv fills them, the number of targets
 * that took every byte, and errno 0. one: NULL for writev itself.
 */
int writev_reference(const int *fds, int n, const struct iovec *iov, int iovcnt, size_t *rets,
		     int *errs, writev_one_fn one);

#endif
