/* SPDX-License-Identifier: MIT */
/* Unit tests: byte offsets in iovec arrays, and frame slicing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "internal.h"

static char mem[1000];

static void test_locate(void **state)
{
	struct iovec v[] = { { mem, 0 }, { mem + 10, 5 }, { mem, 0 }, { mem + 100, 7 } };
	struct wvv_iov_slice s;

	(void)state;
	s = wvv_iov_locate(v, 4, 0);
	assert_int_equal(s.first, 1);
	assert_int_equal(s.first_skip, 0);
	s = wvv_iov_locate(v, 4, 4);
	assert_int_equal(s.first, 1);
	assert_int_equal(s.first_skip, 4);
	s = wvv_iov_locate(v, 4, 5); /* skips the zero-length entry */
	assert_int_equal(s.first, 3);
	assert_int_equal(s.first_skip, 0);
	s = wvv_iov_locate(v, 4, 12);
	assert_int_equal(s.first, 4); /* past the end */
}

static void test_slice_covers_in_order(void **state)
{
	struct iovec v[] = { { mem, 3 }, { mem + 10, 0 }, { mem + 20, 4 }, { mem + 40, 10 } };
	struct iovec out[8];
	size_t covered;
	int n;

	(void)state;
	n = wvv_iov_slice(v, 4, 2, 100, out, 8, &covered);
	assert_int_equal(n, 3);
	assert_int_equal(covered, 15);
	assert_ptr_equal(out[0].iov_base, mem + 2);
	assert_int_equal(out[0].iov_len, 1);
	assert_ptr_equal(out[1].iov_base, mem + 20);
	assert_int_equal(out[2].iov_len, 10);

	n = wvv_iov_slice(v, 4, 1, 5, out, 8, &covered); /* length-limited */
	assert_int_equal(covered, 5);
	assert_int_equal(n, 2);
	assert_int_equal(out[1].iov_len, 3);

	n = wvv_iov_slice(v, 4, 0, 100, out, 2, &covered); /* entry-limited */
	assert_int_equal(n, 2);
	assert_int_equal(covered, 7);

	n = wvv_iov_slice(v, 4, 17, 100, out, 8, &covered); /* at the end */
	assert_int_equal(n, 0);
	assert_int_equal(covered, 0);
}

/* Slicing every offset and length reassembles the same bytes. */
static void test_slice_exhaustive(void **state)
{
	struct iovec v[6];
	size_t lens[6] = { 1, 0, 17, 0, 0, 40 }, total = 58, off, len, i;
	unsigned char whole[58], got[58];

	(void)state;
	for (i = 0, off = 0; i < 6; i++) {
		v[i].iov_base = mem + off;
		v[i].iov_len = lens[i];
		off += lens[i];
	}
	for (i = 0; i < total; i++)
		mem[i] = (char)(i * 7 + 1);
	memcpy(whole, mem, total);
	for (off = 0; off <= total; off++)
		for (len = 0; len <= total - off; len++) {
			struct iovec out[6];
			size_t covered, k = 0;
			int n = wvv_iov_slice(v, 6, off, len, out, 6, &covered), j;

			assert_int_equal(covered, len);
			for (j = 0; j < n; j++) {
				assert_true(out[j].iov_len > 0);
				memcpy(got + k, out[j].iov_base, out[j].iov_len);
				k += out[j].iov_len;
			}
			assert_int_equal(k, len);
			assert_memory_equal(got, whole + off, len);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_locate),
		cmocka_unit_test(test_slice_covers_in_order),
		cmocka_unit_test(test_slice_exhaustive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
