/* SPDX-License-Identifier: MIT */
/* The loader unloads the program while calls run: nothing is lost, the
 * library falls back to userland, and picks the engine up again on load. */
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

#define N 20
#define LEN 20000

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

static void test_unload_while_running(void **state)
{
	struct tcp_fleet f;
	pthread_t t;
	int i, m, c;

	(void)state;
	must_set_mode(WRITEVV_MODE_KERNEL);
	assert_int_equal(writevv_control(WRITEVV_GETMODE, &m), 0);
	assert_int_equal(m, WRITEVV_MODE_KERNEL);
	fleet_open(&f, N, 1);
	assert_int_equal(pthread_create(&t, NULL, caller, &f), 0);
	usleep(300000);
	assert_int_equal(run_loader("unload"), 0);
	usleep(300000);
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

	/* Loaded again: the engine comes back (re-probed within a second). */
	assert_int_equal(run_loader("load"), 0);
	for (i = 0; i < 30; i++) {
		writevv_control(WRITEVV_GETMODE, &m);
		if (m == WRITEVV_MODE_KERNEL)
			break;
		usleep(100000);
	}
	assert_int_equal(m, WRITEVV_MODE_KERNEL);
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
