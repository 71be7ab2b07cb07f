/* SPDX-License-Identifier: MIT */
/* Unit tests: the default mode's policy: its learnt choice between io_uring,
 * sendfile and zero-copy, its thresholds, and when it leaves zero-copy out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "engine_choice.h"
#include "writevv.h"

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

/* The share of targets zero-copy did not help: most after a run of
 * copies, and it decays back when zero-copy helps again. */
static void test_copied_share(void **state)
{
	unsigned share = 0;
	int i;

	(void)state;
	assert_false(wvv_copied_share_mostly(share));
	for (i = 0; i < 32; i++)
		wvv_copied_share_add(&share, true);
	assert_true(wvv_copied_share_mostly(share));
	assert_true(share <= 1024);
	for (i = 0; i < 32; i++)
		wvv_copied_share_add(&share, false);
	assert_false(wvv_copied_share_mostly(share));
}

/* Engines as the policy sees them, with counts of what it asked. */
static struct {
	bool sendfile, copied;
	size_t zc_max;
	int max_calls, idle_calls;
} fake;

static bool fake_sendfile(void) { return fake.sendfile; }
static bool fake_copied(void) { return fake.copied; }
static size_t fake_zc_max(void) { fake.max_calls++; return fake.zc_max; }
static void fake_idle(void) { fake.idle_calls++; }

static const struct wvv_engine_facts facts = { fake_sendfile, fake_copied, fake_zc_max, fake_idle };

/* The thread's default-mode state the plans below use. */
static struct wvv_default_state st;

/* A new thread (nothing learnt) and engines that answer so. */
static void fake_reset(bool sendfile, bool copied, size_t zc_max)
{
	memset(&st, 0, sizeof(st));
	memset(&fake, 0, sizeof(fake));
	fake.sendfile = sendfile;
	fake.copied = copied;
	fake.zc_max = zc_max;
}

static void test_plan_thresholds(void **state)
{
	struct wvv_plan p;

	(void)state;
	fake_reset(true, false, 1 << 20);
	/* a fixed sendfile size: nothing learnt, nothing asked of zero-copy */
	p = wvv_default_plan_with(&st, &facts, 4096, WRITEVV_MODE_IOURING, 4096);
	assert_int_equal(p.engine, WRITEVV_MODE_SENDFILE);
	assert_null(p.learn);
	p = wvv_default_plan_with(&st, &facts, 4095, WRITEVV_MODE_IOURING, 4096);
	assert_int_equal(p.engine, WRITEVV_MODE_IOURING);
	assert_null(p.learn);
	/* ... unless sendfile is unusable */
	fake.sendfile = false;
	p = wvv_default_plan_with(&st, &facts, 1 << 20, WRITEVV_MODE_IOURING, 4096);
	assert_int_not_equal(p.engine, WRITEVV_MODE_SENDFILE);
	/* no io_uring: the loop, sendfile from 16 KiB */
	fake.sendfile = true;
	p = wvv_default_plan_with(&st, &facts, 16383, WRITEVV_MODE_USERLAND, 0);
	assert_int_equal(p.engine, WRITEVV_MODE_USERLAND);
	p = wvv_default_plan_with(&st, &facts, 16384, WRITEVV_MODE_USERLAND, 0);
	assert_int_equal(p.engine, WRITEVV_MODE_SENDFILE);
	assert_null(p.learn);
	/* below 1 KiB: io_uring, nothing learnt, zero-copy not asked */
	fake.max_calls = 0;
	p = wvv_default_plan_with(&st, &facts, 1023, WRITEVV_MODE_IOURING, 0);
	assert_int_equal(p.engine, WRITEVV_MODE_IOURING);
	assert_null(p.learn);
	assert_int_equal(fake.max_calls, 0);
	/* from 1 KiB: learnt in the call's class */
	p = wvv_default_plan_with(&st, &facts, 65536, WRITEVV_MODE_IOURING, 0);
	assert_ptr_equal(p.learn, &st.choices[wvv_choice_class(65536)]);
	assert_true(p.zc_skip_copied);
}

/* The warm-up tries all three engines; zero-copy only when the payload fits its buffer. */
static void test_plan_eligible(void **state)
{
	struct wvv_plan p;
	int i, n[8] = { 0 };

	(void)state;
	fake_reset(true, false, 1 << 20);
	for (i = 0; i < 3 * (WVV_CHOICE_WARM + 1); i++) {
		p = wvv_default_plan_with(&st, &facts, 8192, WRITEVV_MODE_IOURING, 0);
		n[p.engine]++;
		wvv_choice_record(p.learn, i % 3, 1000);
	}
	assert_int_equal(n[WRITEVV_MODE_IOURING], WVV_CHOICE_WARM + 1);
	assert_int_equal(n[WRITEVV_MODE_SENDFILE], WVV_CHOICE_WARM + 1);
	assert_int_equal(n[WRITEVV_MODE_ZEROCOPY], WVV_CHOICE_WARM + 1);
	fake_reset(true, false, 4096); /* too big for the buffer */
	for (i = 0; i < 4 * WVV_CHOICE_EXPLORE_EVERY; i++) {
		p = wvv_default_plan_with(&st, &facts, 8192, WRITEVV_MODE_IOURING, 0);
		assert_int_not_equal(p.engine, WRITEVV_MODE_ZEROCOPY);
		wvv_choice_record(p.learn, p.engine == WRITEVV_MODE_SENDFILE ? S : U, 1000);
	}
	assert_int_equal(fake.idle_calls, 0);
}

/* While zero-copy is mostly copied anyway: left out, its buffer unpinned at
 * each call, and one call in WVV_ZC_RECHECK_EVERY sends zero-copy to every
 * target (no plain sends where it was copied) to see whether it still is. */
static void test_plan_recheck(void **state)
{
	struct wvv_plan p;
	int i, round;

	(void)state;
	fake_reset(true, true, 1 << 20);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < WVV_ZC_RECHECK_EVERY - 1; i++) {
			p = wvv_default_plan_with(&st, &facts, 8192, WRITEVV_MODE_IOURING, 0);
			assert_int_not_equal(p.engine, WRITEVV_MODE_ZEROCOPY);
			wvv_choice_record(p.learn, p.engine == WRITEVV_MODE_SENDFILE ? S : U, 1000);
		}
		assert_int_equal(fake.idle_calls, (round + 1) * (WVV_ZC_RECHECK_EVERY - 1));
		assert_int_equal(fake.max_calls, round); /* the buffer is not set up meanwhile */
		p = wvv_default_plan_with(&st, &facts, 8192, WRITEVV_MODE_IOURING, 0);
		assert_int_equal(p.engine, WRITEVV_MODE_ZEROCOPY);
		assert_false(p.zc_skip_copied);
		assert_int_equal(fake.max_calls, round + 1);
	}
}

/* What a call cost is recorded for the engine that ran it, and only for
 * the three the policy chooses between. */
static void test_plan_done(void **state)
{
	struct wvv_plan p;

	(void)state;
	fake_reset(true, false, 1 << 20);
	p = wvv_default_plan_with(&st, &facts, 8192, WRITEVV_MODE_IOURING, 0);
	wvv_plan_start(&p);
	assert_true(p.cpu0 > 0);
	wvv_plan_done(&p, WRITEVV_MODE_USERLAND, 10); /* an engine that could not start */
	assert_int_equal(p.learn->samples[U] + p.learn->samples[S] + p.learn->samples[Z], 0);
	wvv_plan_done(&p, WRITEVV_MODE_SENDFILE, 10);
	assert_int_equal(p.learn->samples[S], 1);
	p = wvv_plan_fixed(WRITEVV_MODE_KERNEL);
	wvv_plan_start(&p);
	assert_null(p.learn);
	wvv_plan_done(&p, WRITEVV_MODE_KERNEL, 10); /* nothing to record, no crash */
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
		cmocka_unit_test(test_copied_share),
		cmocka_unit_test(test_plan_thresholds),
		cmocka_unit_test(test_plan_eligible),
		cmocka_unit_test(test_plan_recheck),
		cmocka_unit_test(test_plan_done),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
