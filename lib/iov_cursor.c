/* SPDX-License-Identifier: MIT */
/* Byte-offset arithmetic over iovec arrays, used to resume and to frame. */
#include "internal.h"

struct wvv_iov_slice wvv_iov_locate(const struct iovec *iov, int iovcnt, size_t off)
{
	struct wvv_iov_slice s = { iovcnt, 0 };
	int i;

	for (i = 0; i < iovcnt; i++) {
		if (off < iov[i].iov_len) {
			s.first = i;
			s.first_skip = off;
			return s;
		}
		off -= iov[i].iov_len;
	}
	return s;
}

int wvv_iov_slice(const struct iovec *iov, int iovcnt, size_t off, size_t len,
		  struct iovec *out, int max, size_t *covered)
{
	struct wvv_iov_slice s = wvv_iov_locate(iov, iovcnt, off);
	size_t skip = s.first_skip, got = 0;
	int i, n = 0;

	for (i = s.first; i < iovcnt && n < max && got < len; i++) {
		size_t l = iov[i].iov_len - skip;

		if (l == 0)
			continue;
		if (l > len - got)
			l = len - got;
		/* As an address, not a pointer: NULL + n is undefined in C, and
		 * a NULL base is the caller's EFAULT to get from the kernel. */
		out[n].iov_base = (void *)((uintptr_t)iov[i].iov_base + skip);
		out[n].iov_len = l;
		n++;
		got += l;
		skip = 0;
	}
	*covered = got;
	return n;
}
