/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* IOV_MAX */
#include <errno.h>
#include <limits.h>
#include <stddef.h>

#include "writev_reference.h"

int writev_reference(const int *fds, int n, const struct iovec *iov, int iovcnt, size_t *rets,
		     int *errs, writev_one_fn one)
{
	size_t total = 0;
	int i, full = 0;

	if (n < 0 || iovcnt < 0 || iovcnt > IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	if ((n > 0 && !fds) || (iovcnt > 0 && !iov)) {
		errno = EFAULT;
		return -1;
	}
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > (size_t)SSIZE_MAX - total) {
			errno = EINVAL;
			return -1;
		}
		total += iov[i].iov_len;
	}
	for (i = 0; i < n; i++) {
		ssize_t r;

		if (one) {
			r = one(fds[i], iov, iovcnt, &errs[i]);
		} else {
			r = writev(fds[i], iov, iovcnt);
			errs[i] = r < 0 ? errno : 0;
		}
		rets[i] = r < 0 ? (size_t)-1 : (size_t)r;
		full += r >= 0 && (size_t)r == total;
	}
	errno = 0;
	return full;
}
