/* SPDX-License-Identifier: MIT */
/* Unit tests: the default mode's learnt choice between io_uring, sendfile and zero-copy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "engine_choice.h"

enum { U = WVV_CHOICE_URING, S = WVV_CHOICE_SENDFILE, Z = WVV_CHOICE_ZEROCOPY };
#define US (1u << U | 1u << S) /* no zero-copy (e.g. a payload too big for its buffer) */

static void test_classes(void **state)
{
	(void)state;
	assert_int_equal(wvv_choice_class(0), -1);
	assert_int_equal(wvv_choice_class(1023), -1);
	assert_int_equal(wvv_choice_class(1024), 0);
	assert_int_equal(wvv_choice_class(2047), 0);
	assert_int_equal(wvv_choice_class(2048), 1);
	assert_int_equal(wvv_choice_class(3896), 1);
	assert_int_equal(wvv_choice_class(16384), 4);
	assert_int_equal(wvv_choice_class(65536), 6);
	assert_int_equal(wvv_choice_class((size_t)1 << 19), WVV_CHOICE_CLASSES - 1);
	assert_int_equal(wvv_choice_class(SIZE_MAX), WVV_CHOICE_CLASSES - 1);
}

/* Run the warm-up with fixed costs, checking its picks. */
static void warm_up(struct wvv_choice *k, uint64_t uring_ns, uint64_t sendfile_ns)
{
	int i, e;

	for (i = 0; i < 2 * (WVV_CHOICE_WARM + 1); i++) {
		e = wvv_choice_pick(k, US);
		assert_int_equal(e, i % 2 ? S : U); /* alternating */
		/* the first call of each engine is cold: a huge cost must not count */
		wvv_choice_record(k, e, i < 2 ? 1000000 : e == U ? uring_ns : sendfile_ns);
	}
}

static void test_warm_up_then_cheaper(void **state)
{
	struct wvv_choice k;
	int i, explored = 0, e;

	(void)state;
	memset(&k, 0, sizeof(k));
	warm_up(&k, 3000, 2000);
	assert_int_equal(k.cost[U], 3000);
	assert_int_equal(k.cost[S], 2000);
	for (i = 0; i < 10 * WVV_CHOICE_EXPLORE_EVERY; i++) {
		e = wvv_choice_pick(&k, US);
		explored += e == U;
		wvv_choice_record(&k, e, e == U ? 3000 : 2000);
	}
	/* mostly the cheaper one; the other exactly once per EXPLORE_EVERY */
	assert_int_equal(explored, 10);
}

static void test_follows_a_change(void **state)
{
	struct wvv_choice k;
	int i, e, last = -1;

	(void)state;
	memset(&k, 0, sizeof(k));
	warm_up(&k, 2000, 3000);
	assert_int_equal(wvv_choice_pick(&k, US), U);
	/* sendfile becomes much cheaper (e.g. receivers moved off this core) */
	for (i = 0; i < 40 * WVV_CHOICE_EXPLORE_EVERY; i++) {
		e = wvv_choice_pick(&k, US);
		wvv_choice_record(&k, e, e == U ? 2000 : 500);
		last = e;
	}
	assert_int_equal(last, S);
	assert_true(k.cost[S] < k.cost[U]);
}

static void test_mean_then_ewma(void **state)
{
	struct wvv_choice k;
	uint64_t before;
	int i;

	(void)state;
	memset(&k, 0, sizeof(k));
	wvv_choice_record(&k, U, 999999); /* cold: dropped */
	wvv_choice_record(&k, U, 1000);
	wvv_choice_record(&k, U, 2000);
	wvv_choice_record(&k, U, 3000);
	assert_int_equal(k.cost[U], 2000); /* mean of the first samples */
	for (i = 0; i < 200; i++)
		wvv_choice_record(&k, U, 8000);
	assert_in_range(k.cost[U], 7900, 8000); /* converges */
	before = k.cost[U];
	wvv_choice_record(&k, U, 0);
	assert_int_equal(k.cost[U], before - before / 8); /* one sample weighs 1/8 */
}

/* Three engines: warm-up in turn, then the cheapest, the others explored in turn. */
static void test_three_engines(void **state)
{
	struct wvv_choice k;
	int i, e, n[WVV_CHOICE_ENGINES] = { 0 };
	const uint64_t cost[WVV_CHOICE_ENGINES] = { [U] = 3000, [S] = 2000, [Z] = 1000 };

	(void)state;
	memset(&k, 0, sizeof(k));
	for (i = 0; i < 3 * (WVV_CHOICE_WARM + 1); i++) {
		e = wvv_choice_pick(&k, WVV_CHOICE_ALL);
		assert_int_equal(e, i % 3); /* U, S, Z, U, S, Z... */
		wvv_choice_record(&k, e, cost[e]);
	}
	for (i = 0; i < 10 * WVV_CHOICE_EXPLORE_EVERY; i++) {
		e = wvv_choice_pick(&k, WVV_CHOICE_ALL);
		n[e]++;
		wvv_choice_record(&k, e, cost[e]);
	}
	assert_int_equal(n[U], 5);
	assert_int_equal(n[S], 5);
	assert_int_equal(n[Z], 10 * WVV_CHOICE_EXPLORE_EVERY - 10);
}

/* An engine that is not eligible for a call is never picked, even if cheapest. */
static void test_not_eligible(void **state)
{
	struct wvv_choice k;
	int i, e;

	(void)state;
	memset(&k, 0, sizeof(k));
	for (i = 0; i < 3 * (WVV_CHOICE_WARM + 1); i++) {
		e = wvv_choice_pick(&k, WVV_CHOICE_ALL);
		wvv_choice_record(&k, e, e == Z ? 100 : e == U ? 3000 : 2000);
	}
	for (i = 0; i < 4 * WVV_CHOICE_EXPLORE_EVERY; i++) {
		e = wvv_choice_pick(&k, US);
		assert_int_not_equal(e, Z);
		assert_int_equal(wvv_choice_pick(&k, 0), U); /* io_uring is always eligible */
	}
	/* and an engine never eligible before is warmed up when it becomes so */
	memset(&k, 0, sizeof(k));
	for (i = 0; i < 2 * (WVV_CHOICE_WARM + 1); i++) {
		e = wvv_choice_pick(&k, US);
		wvv_choice_record(&k, e, 1000);
	}
	assert_int_equal(wvv_choice_pick(&k, WVV_CHOICE_ALL), Z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_warm_up_then_cheaper),
		cmocka_unit_test(test_follows_a_change),
		cmocka_unit_test(test_mean_then_ewma),
		cmocka_unit_test(test_three_engines),
		cmocka_unit_test(test_not_eligible),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
