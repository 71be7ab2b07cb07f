/* SPDX-License-Identifier: MIT */
/*
 * More threads than control slots: the threads that find every slot taken
 * write in user space (and GETMODE says so), everyone's bytes arrive.
 * Loads its own copy of the program with two slots.
 */
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

#define THREADS 6
#define SLOTS 2
#define PIN_DIR "/sys/fs/bpf/writevv-ctest-slots"

static _Atomic int kernel_threads, userland_threads, failures;
static pthread_barrier_t hold;

struct worker {
	struct tcp_fleet f;
	int id;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	static const size_t len = 3000;
	int idx[4] = { 0, 1, 2, 3 }, k, mode = -1;

	for (k = 0; k < 50; k++)
		fanout_check(&w->f, idx, 4, &len, 1, (unsigned)(w->id * 100 + k));
	writevv_control(WRITEVV_GETMODE, &mode);
	if (mode == WRITEVV_MODE_KERNEL)
		atomic_fetch_add(&kernel_threads, 1);
	else if (mode == WRITEVV_MODE_USERLAND)
		atomic_fetch_add(&userland_threads, 1);
	else
		atomic_fetch_add(&failures, 1);
	/* Keep the slot until everyone has looked. */
	pthread_barrier_wait(&hold);
	return NULL;
}

static void test_more_threads_than_slots(void **state)
{
	struct worker w[THREADS];
	pthread_t t[THREADS];
	char cmd[512];
	int i;

	(void)state;
	snprintf(cmd, sizeof(cmd), "unload --pin-dir %s", PIN_DIR);
	run_loader(cmd);
	snprintf(cmd, sizeof(cmd), "load --slots %d --pin-dir %s", SLOTS, PIN_DIR);
	assert_int_equal(run_loader(cmd), 0);
	setenv("WRITEVV_PIN_DIR", PIN_DIR, 1);
	must_set_mode(WRITEVV_MODE_KERNEL);
	pthread_barrier_init(&hold, NULL, THREADS);
	for (i = 0; i < THREADS; i++) {
		w[i].id = i;
		fleet_open(&w[i].f, 4, 1);
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		fleet_close(&w[i].f);
	}
	snprintf(cmd, sizeof(cmd), "unload --pin-dir %s", PIN_DIR);
	assert_int_equal(run_loader(cmd), 0);
	printf("%d threads on the kernel engine, %d in user space (%d slots)\n",
	       atomic_load(&kernel_threads), atomic_load(&userland_threads), SLOTS);
	assert_int_equal(atomic_load(&failures), 0);
	assert_int_equal(atomic_load(&kernel_threads), SLOTS);
	assert_int_equal(atomic_load(&userland_threads), THREADS - SLOTS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_more_threads_than_slots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
