/* SPDX-License-Identifier: MIT */
/* Unit tests: the zero-copy engine's payload ring (zc_arena.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "zc_arena.h"

#define SIZE 4096 /* max payload 1024 */

static void test_limits(void **state)
{
	struct wvv_arena a;
	size_t off;

	(void)state;
	wvv_arena_init(&a, SIZE);
	assert_int_equal(wvv_arena_max(&a), SIZE / 4);
	assert_int_equal(wvv_arena_alloc(&a, 0, &off), -EMSGSIZE);
	assert_int_equal(wvv_arena_alloc(&a, SIZE / 4 + 1, &off), -EMSGSIZE);
	assert_int_equal(wvv_arena_used(&a), 0);
}

/* A payload's place is reused only when its every notification came. */
static void test_held_until_notified(void **state)
{
	struct wvv_arena a;
	size_t off[5];
	int id[5], i;

	(void)state;
	wvv_arena_init(&a, SIZE);
	for (i = 0; i < 4; i++) {
		id[i] = wvv_arena_alloc(&a, 1000, &off[i]); /* 1024 with alignment */
		assert_true(id[i] >= 0);
		assert_int_equal(off[i], (size_t)i * 1024);
		wvv_arena_hold(&a, id[i]);
		wvv_arena_hold(&a, id[i]);
		wvv_arena_close(&a, id[i]);
	}
	assert_int_equal(wvv_arena_alloc(&a, 1, &off[4]), -ENOBUFS); /* full */
	/* the second payload's notifications come first: nothing frees yet */
	wvv_arena_release(&a, id[1]);
	wvv_arena_release(&a, id[1]);
	assert_int_equal(wvv_arena_alloc(&a, 1, &off[4]), -ENOBUFS);
	/* half of the first's: still held */
	wvv_arena_release(&a, id[0]);
	assert_int_equal(wvv_arena_alloc(&a, 1, &off[4]), -ENOBUFS);
	wvv_arena_release(&a, id[0]);
	/* both oldest are free now: 2048 bytes at the start */
	assert_int_equal(wvv_arena_used(&a), 2048);
	id[4] = wvv_arena_alloc(&a, 2048 - 64, &off[4]);
	assert_int_equal(id[4], -EMSGSIZE); /* over the quarter anyway */
	id[4] = wvv_arena_alloc(&a, 1024, &off[4]);
	assert_true(id[4] >= 0);
	assert_int_equal(off[4], 0); /* wrapped */
	i = wvv_arena_alloc(&a, 1024, &off[0]);
	assert_true(i >= 0);
	assert_int_equal(off[0], 1024);
	assert_int_equal(wvv_arena_alloc(&a, 1, &off[0]), -ENOBUFS); /* up to the oldest */
}

/* A record stays while its call submits, even if notifications came first. */
static void test_open_while_submitting(void **state)
{
	struct wvv_arena a;
	size_t off;
	int id;

	(void)state;
	wvv_arena_init(&a, SIZE);
	id = wvv_arena_alloc(&a, 512, &off);
	wvv_arena_release(&a, id); /* a notification before its send's CQE */
	wvv_arena_hold(&a, id);
	assert_int_equal(wvv_arena_used(&a), 512);
	wvv_arena_close(&a, id);
	assert_int_equal(wvv_arena_used(&a), 0);
	/* an empty arena starts again from the beginning */
	id = wvv_arena_alloc(&a, 100, &off);
	assert_int_equal(off, 0);
}

/* No more records than WVV_ARENA_RECORDS in flight. */
static void test_record_limit(void **state)
{
	struct wvv_arena a;
	size_t off;
	int i, id = -1;

	(void)state;
	wvv_arena_init(&a, (size_t)WVV_ARENA_RECORDS * 1024);
	for (i = 0; i < WVV_ARENA_RECORDS; i++) {
		id = wvv_arena_alloc(&a, 1, &off);
		assert_true(id >= 0);
		wvv_arena_hold(&a, id);
		wvv_arena_close(&a, id);
	}
	assert_int_equal(wvv_arena_alloc(&a, 1, &off), -ENOBUFS);
	wvv_arena_release(&a, (id + 1) % WVV_ARENA_RECORDS); /* the oldest */
	assert_true(wvv_arena_alloc(&a, 1, &off) >= 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_held_until_notified),
		cmocka_unit_test(test_open_while_submitting),
		cmocka_unit_test(test_record_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
