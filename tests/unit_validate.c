/* SPDX-License-Identifier: MIT */
/* Unit tests: call-level argument validation and result mapping. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <cmocka.h>

#include "call.h"
#include "internal.h"

static void test_validate(void **state)
{
	int fds[2] = { 1, 2 };
	char b[4];
	struct iovec v[3] = { { b, 1 }, { b, 0 }, { b, 3 } };
	struct iovec huge[2] = { { b, SSIZE_MAX }, { b, 1 } };
	size_t total = 99;

	(void)state;
	assert_int_equal(wvv_validate(fds, 2, v, 3, &total), 0);
	assert_int_equal(total, 4);
	assert_int_equal(wvv_validate(fds, -1, v, 3, &total), -EINVAL);
	assert_int_equal(wvv_validate(fds, 2, v, -1, &total), -EINVAL);
	assert_int_equal(wvv_validate(fds, 2, v, IOV_MAX + 1, &total), -EINVAL);
	assert_int_equal(wvv_validate(NULL, 2, v, 3, &total), -EFAULT);
	assert_int_equal(wvv_validate(fds, 2, NULL, 3, &total), -EFAULT);
	assert_int_equal(wvv_validate(NULL, 0, NULL, 0, &total), 0);
	assert_int_equal(total, 0);
	assert_int_equal(wvv_validate(fds, 2, huge, 1, &total), 0);
	assert_int_equal(wvv_validate(fds, 2, huge, 2, &total), -EINVAL);
}

static void test_result_mapping(void **state)
{
	int fds[2] = { 1, 2 }, errs[2] = { 7, 7 };
	size_t rets[2] = { 7, 7 };
	struct wvv_call c = { fds, 2, NULL, 0, 10, rets, errs };

	(void)state;
	wvv_set_result(&c, 0, 10);
	assert_int_equal(rets[0], 10);
	assert_int_equal(errs[0], 0);
	wvv_set_result(&c, 1, -EPIPE);
	assert_int_equal(rets[1], (size_t)-1);
	assert_int_equal(errs[1], EPIPE);
	/* Nothing left to write: the delivered count is the result. */
	wvv_finish_target(&c, 0, 10);
	assert_int_equal(rets[0], 10);
	assert_int_equal(errs[0], 0);
}

static void test_probe_retry(void **state)
{
	_Atomic long long retry = 0;

	(void)state;
	/* Lack of resources is retried, after a second; refusals are final. */
	assert_true(wvv_probe_again(-EMFILE, &retry));
	wvv_probe_failed(-EMFILE, &retry);
	assert_false(wvv_probe_again(-EMFILE, &retry));
	atomic_store(&retry, 0);
	assert_true(wvv_probe_again(-ENOMEM, &retry));
	assert_false(wvv_probe_again(-ENOSYS, &retry));
	assert_false(wvv_probe_again(-EPERM, &retry));
	/* The kernel engine's retry: whatever failed, a second later. */
	atomic_store(&retry, 0);
	assert_true(wvv_retry_due(&retry));
	wvv_retry_later(&retry);
	assert_false(wvv_retry_due(&retry));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_result_mapping),
		cmocka_unit_test(test_probe_retry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
