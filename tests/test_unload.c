/* SPDX-License-Identifier: MIT */
/* The loader unloads the program while calls run: nothing is lost, the
 * library falls back to userland, and picks the engine up again on load.
 * Every step waits for an event (calls made, the mode changing), never for
 * a stretch of time: a loaded machine only makes the test slower. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "writevv.h"
#include "writevv_frame.h"

#define N 20
#define LEN 20000
/* Calls that must complete on each side of the unload. */
#define CALLS_EACH_SIDE 20
/* Only a guard against a hang: nothing here is timed. */
#define GUARD_MS 120000

static _Atomic int stop, calls, bad;

static void *caller(void *arg)
{
	struct tcp_fleet *f = arg;
	unsigned char *buf = malloc(LEN);
	struct iovec iov = { buf, LEN };
	size_t rets[N];
	int errs[N];

	while (!atomic_load(&stop)) {
		pattern_fill(buf, LEN, 5, (size_t)atomic_load(&calls) * LEN);
		if (writevv(f->tx, N, &iov, 1, rets, errs) != N)
			atomic_fetch_add(&bad, 1);
		atomic_fetch_add(&calls, 1);
	}
	free(buf);
	return NULL;
}

/* Wait until the caller has completed at least 'n' calls. */
static void wait_calls(int n)
{
	int waited = 0;

	while (atomic_load(&calls) < n) {
		if (waited++ >= GUARD_MS) {
			fprintf(stderr, "%d of %d calls, then none\n", atomic_load(&calls), n);
			fail();
		}
		usleep(1000);
	}
}

static void test_unload_while_running(void **state)
{
	struct tcp_fleet f;
	struct wvv_stats st0, st;
	pthread_t t;
	int i, m, c, waited;

	(void)state;
	must_set_mode(WRITEVV_MODE_KERNEL);
	assert_int_equal(writevv_control(WRITEVV_GETMODE, &m), 0);
	assert_int_equal(m, WRITEVV_MODE_KERNEL);
	fleet_open(&f, N, 1);
	assert_int_equal(read_bpf_stats(&st0), 0);
	assert_int_equal(pthread_create(&t, NULL, caller, &f), 0);
	/* Calls run on the kernel engine before the unload... */
	wait_calls(CALLS_EACH_SIDE);
	assert_int_equal(read_bpf_stats(&st), 0);
	assert_true(st.bytes > st0.bytes);
	assert_int_equal(run_loader("unload"), 0);
	/* ... and go on after it: calls that started once the program was
	 * gone, so the library has met the unload (it learns of it from a
	 * call, which is what GETMODE reports below). */
	wait_calls(atomic_load(&calls) + 1 + CALLS_EACH_SIDE);
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&bad), 0);
	c = atomic_load(&calls);
	for (i = 0; i < N; i++) {
		int k;

		assert_int_equal(fleet_wait(&f, i, (size_t)c * LEN, 20000), 0);
		assert_int_equal(f.got_len[i], (size_t)c * LEN);
		for (k = 0; k < c; k++)
			assert_int_equal(pattern_check(f.got[i] + (size_t)k * LEN, LEN, 5,
						       (size_t)k * LEN), 0);
	}
	/* Unloaded: kernel mode now runs in userland. */
	assert_int_equal(writevv_control(WRITEVV_GETMODE, &m), 0);
	assert_int_equal(m, WRITEVV_MODE_USERLAND);

	/* Loaded again: the engine comes back (the library re-probes at most
	 * once a second; how soon is not this test's business). */
	assert_int_equal(run_loader("load"), 0);
	for (waited = 0;; waited += 10) {
		assert_int_equal(writevv_control(WRITEVV_GETMODE, &m), 0);
		if (m == WRITEVV_MODE_KERNEL)
			break;
		if (waited >= GUARD_MS) {
			fprintf(stderr, "the engine never came back after the load\n");
			fail();
		}
		usleep(10000);
	}
	printf("%d calls while the program was unloaded under them\n", c);
	fleet_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unload_while_running),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
