/* SPDX-License-Identifier: MIT */
/* Call-level argument validation, the errors writev(2) itself would give. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

int wvv_validate(const int *fds, int fdcnt, const struct iovec *iov, int iovcnt,
		 size_t *total)
{
	size_t sum = 0;
	int i;

	if (fdcnt < 0 || iovcnt < 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	if ((fdcnt > 0 && !fds) || (iovcnt > 0 && !iov))
		return -EFAULT;
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > (size_t)SSIZE_MAX - sum)
			return -EINVAL;
		sum += iov[i].iov_len;
	}
	*total = sum;
	return 0;
}
