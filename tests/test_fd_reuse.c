/* SPDX-License-Identifier: MIT */
/*
 * Registration is cached per fd number. A socket closed and replaced by
 * another at the same number must never get the old one's data, and data
 * meant for the new one must never reach the old socket, even while the old
 * socket is still alive elsewhere (dup) and still registered.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "writevv.h"
#include "writevv_frame.h"

static void send_to(int fd, unsigned call, size_t len)
{
	unsigned char *buf = malloc(len);
	struct iovec iov = { buf, len };
	size_t ret;
	int err;

	pattern_fill(buf, len, call, 0);
	assert_int_equal(writevv(&fd, 1, &iov, 1, &ret, &err), 1);
	assert_int_equal(ret, len);
	assert_int_equal(err, 0);
	free(buf);
}

static void test_reused_fd_number(void **state)
{
	struct tcp_fleet a, b;
	struct wvv_stats before, after;
	int fd, keep_old, sizes_i;
	static const size_t sizes[] = { 500, 200000 };

	(void)state;
	must_set_mode(WRITEVV_MODE_KERNEL);
	fleet_open(&a, 1, 1);
	fleet_open(&b, 1, 1);
	for (sizes_i = 0; sizes_i < 2; sizes_i++) {
		size_t len = sizes[sizes_i];

		fleet_reset(&a);
		fleet_reset(&b);
		fd = a.tx[0];
		send_to(fd, 1, len); /* registers socket A under number fd */
		assert_int_equal(fleet_wait(&a, 0, len, 10000), 0);

		/* Keep A alive elsewhere, then put socket B at number fd. */
		keep_old = dup(fd);
		assert_true(keep_old >= 0);
		assert_int_equal(dup2(b.tx[0], fd), fd);

		assert_int_equal(read_bpf_stats(&before), 0);
		send_to(fd, 2, len); /* must reach B, not A */
		send_to(fd, 3, len); /* and again, now re-registered */
		assert_int_equal(read_bpf_stats(&after), 0);
		assert_true(after.stale_fd - before.stale_fd >= 1);
		/* the second call went through the program again */
		assert_true(after.bytes - before.bytes >= len);

		assert_int_equal(fleet_wait(&b, 0, 2 * len, 10000), 0);
		usleep(50000);
		assert_int_equal(b.got_len[0], 2 * len);
		assert_int_equal(pattern_check(b.got[0], len, 2, 0), 0);
		assert_int_equal(pattern_check(b.got[0] + len, len, 3, 0), 0);
		assert_int_equal(a.got_len[0], len); /* nothing more reached A */
		assert_int_equal(pattern_check(a.got[0], len, 1, 0), 0);

		/* Put A back at its number for the next round. */
		assert_int_equal(dup2(keep_old, fd), fd);
		close(keep_old);
	}
	fleet_close(&a);
	fleet_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reused_fd_number),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
