/* SPDX-License-Identifier: MIT */
/* Fan-out correctness in the engine under test (WVV_TEST_ENGINE: kernel unless
 * set; ctest runs it in every engine): every byte at every receiver. */
#define _GNU_SOURCE
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"
#include "writevv.h"
#include "writevv_frame.h"

static unsigned call_no = 1;

/* Run fanout_check and prove the bytes went through the BPF program. */
static void kernel_fanout(struct tcp_fleet *f, const int *idx, int n, const size_t *lens,
			  int nlens)
{
	struct wvv_stats before, after;
	size_t total = 0;
	int i;

	for (i = 0; i < nlens; i++)
		total += lens[i];
	if (test_engine() != WRITEVV_MODE_KERNEL) {
		fanout_check(f, idx, n, lens, nlens, call_no++);
		return;
	}
	assert_int_equal(read_bpf_stats(&before), 0);
	fanout_check(f, idx, n, lens, nlens, call_no++);
	assert_int_equal(read_bpf_stats(&after), 0);
	if (after.bytes - before.bytes != total * (size_t)n)
		fprintf(stderr, "BPF counters: frames +%llu bytes +%llu refused +%llu stale +%llu "
			"not-writable +%llu bad +%llu ring-full +%llu\n",
			(unsigned long long)(after.frames - before.frames),
			(unsigned long long)(after.bytes - before.bytes),
			(unsigned long long)(after.redirect_failures - before.redirect_failures),
			(unsigned long long)(after.stale_fd - before.stale_fd),
			(unsigned long long)(after.not_writable - before.not_writable),
			(unsigned long long)(after.bad_frames - before.bad_frames),
			(unsigned long long)(after.ring_full - before.ring_full));
	/* All through the program, but for targets whose fd numbers were
	 * reused since registration (found stale, written in user space). */
	assert_true(after.stale_fd - before.stale_fd <= (uint64_t)n);
	assert_int_equal(after.bytes - before.bytes,
			 total * ((size_t)n - (after.stale_fd - before.stale_fd)));
}

static int setup_kernel(void **state)
{
	(void)state;
	use_test_engine();
	return 0;
}

static void test_one_target_sizes(void **state)
{
	static const size_t sizes[] = { 1, 2, 100, 1400, 4096, 65487, 65488, 65489, 131072,
					200000, 1 << 20 };
	struct tcp_fleet f;
	int idx = 0;
	size_t i;

	(void)state;
	fleet_open(&f, 1, 1);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		kernel_fanout(&f, &idx, 1, &sizes[i], 1);
	fleet_close(&f);
}

static void test_two_targets(void **state)
{
	static const size_t lens[] = { 974, 974, 974, 974 };
	static const size_t big = 300000;
	struct tcp_fleet f;
	int idx[2] = { 0, 1 };

	(void)state;
	fleet_open(&f, 2, 1);
	kernel_fanout(&f, idx, 2, lens, 4);
	kernel_fanout(&f, idx, 2, &big, 1);
	fleet_close(&f);
}

static void test_thousand_targets(void **state)
{
	static const size_t sizes[] = { 64, 1400, 65536 };
	struct tcp_fleet f;
	int idx[1000], i;
	size_t s;

	(void)state;
	for (i = 0; i < 1000; i++)
		idx[i] = i;
	fleet_open(&f, 1000, 1);
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		kernel_fanout(&f, idx, 1000, &sizes[s], 1);
	fleet_close(&f);
}

static void test_same_fd_twice(void **state)
{
	static const size_t small = 777, big = 150000;
	struct tcp_fleet f;
	int idx[5] = { 0, 1, 0, 2, 0 };

	(void)state;
	fleet_open(&f, 3, 1);
	kernel_fanout(&f, idx, 5, &small, 1);
	kernel_fanout(&f, idx, 5, &big, 1);
	fleet_close(&f);
}

static void test_zero_length_iovecs(void **state)
{
	static const size_t lens[] = { 0, 10, 0, 0, 20, 0, 70000, 0 };
	struct tcp_fleet f;
	int idx[3] = { 0, 1, 2 };

	(void)state;
	fleet_open(&f, 3, 1);
	kernel_fanout(&f, idx, 3, lens, 8);
	fleet_close(&f);
}

static void test_iov_max(void **state)
{
	static size_t lens[IOV_MAX];
	struct tcp_fleet f;
	int idx[4] = { 0, 1, 2, 3 }, i;

	(void)state;
	for (i = 0; i < IOV_MAX; i++)
		lens[i] = (size_t)(i % 7) * 33; /* some zero, ~100 KiB in all */
	fleet_open(&f, 4, 1);
	kernel_fanout(&f, idx, 4, lens, IOV_MAX);
	for (i = 0; i < IOV_MAX; i++)
		lens[i] = 1;
	kernel_fanout(&f, idx, 4, lens, IOV_MAX);
	fleet_close(&f);
}

static void test_many_calls(void **state)
{
	static const size_t lens[] = { 100, 1000 };
	struct tcp_fleet f;
	int idx[8] = { 0, 1, 2, 3, 4, 5, 6, 7 }, k;

	(void)state;
	fleet_open(&f, 8, 1);
	for (k = 0; k < 500; k++)
		kernel_fanout(&f, idx, 8, lens, 2);
	fleet_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_target_sizes),
		cmocka_unit_test(test_two_targets),
		cmocka_unit_test(test_thousand_targets),
		cmocka_unit_test(test_same_fd_twice),
		cmocka_unit_test(test_zero_length_iovecs),
		cmocka_unit_test(test_iov_max),
		cmocka_unit_test(test_many_calls),
	};

	return cmocka_run_group_tests(tests, setup_kernel, NULL);
}
