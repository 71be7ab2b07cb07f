/* SPDX-License-Identifier: MIT */
/*
 * More threads than control slots: the threads that find every slot taken
 * write in user space (and GETMODE says so), everyone's bytes arrive.
 * A call with an unreadable iovec costs no other thread its slot.
 * Loads its own copy of the program with a few slots.
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
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>

#include "helpers.h"
#include "writevv_frame.h"
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

/* The socket cookies of the control sockets holding slots (up to max), or -1. */
static int slot_cookies(uint64_t *out, int max)
{
	char path[512];
	uint32_t slot;
	uint64_t cookie;
	int fd, n = 0;

	snprintf(path, sizeof(path), "%s/%s", PIN_DIR, WVV_PIN_CTL);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -1;
	for (slot = 0; slot < 16 && n < max; slot++)
		if (bpf_map_lookup_elem(fd, &slot, &cookie) == 0)
			out[n++] = cookie;
	close(fd);
	return n;
}

static pthread_barrier_t step;

static void *other_thread(void *arg)
{
	struct tcp_fleet *f = arg;
	static const size_t len = 3000;
	int idx[2] = { 0, 1 };

	fanout_check(f, idx, 2, &len, 1, 1); /* claims a slot */
	pthread_barrier_wait(&step);         /* the main thread's bad call */
	pthread_barrier_wait(&step);
	fanout_check(f, idx, 2, &len, 1, 2);
	pthread_barrier_wait(&step);
	pthread_barrier_wait(&step);         /* its slot was looked at */
	return NULL;
}

/* The other thread's control socket before and after the bad call: 0 if
 * it kept it, 1 if not, 2 if the slots could not be read as expected. */
static int bad_call_in_a_fresh_library(void)
{
	struct tcp_fleet mine, other;
	unsigned char buf[100];
	struct iovec iov[2] = { { buf, sizeof(buf) }, { NULL, 50 } };
	uint64_t before[8], after[8];
	size_t rets[2];
	int errs[2], n, m, i, found = 0;
	pthread_t t;

	memset(buf, 'x', sizeof(buf));
	must_set_mode(WRITEVV_MODE_KERNEL);
	fleet_open(&mine, 2, 1);
	fleet_open(&other, 2, 1);
	pthread_barrier_init(&step, NULL, 2);
	if (pthread_create(&t, NULL, other_thread, &other))
		return 2;
	pthread_barrier_wait(&step);
	n = slot_cookies(before, 8);
	/* writev's answer whatever it is (test_hostile checks it); the
	 * slots are what this test looks at */
	writevv(mine.tx, 2, iov, 2, rets, errs);
	pthread_barrier_wait(&step);
	pthread_barrier_wait(&step);
	m = slot_cookies(after, 8);
	pthread_barrier_wait(&step);
	pthread_join(t, NULL);
	printf("slots held: %d before the bad call (the other thread's), %d after\n", n, m);
	if (n != 1 || m < 1)
		return 2;
	for (i = 0; i < m; i++)
		found += after[i] == before[0];
	return found == 1 ? 0 : 1;
}

/*
 * An iovec the kernel cannot read (NULL base) in one thread's kernel-mode
 * call is that call's business: another thread keeps its control socket
 * and slot (the engine once took it for a reload, and every thread claimed
 * its slot again). In a child: a library that has not seen other pins.
 */
static void test_unreadable_iovec_keeps_other_slots(void **state)
{
	char cmd[512];
	pid_t pid;
	int st;

	(void)state;
	snprintf(cmd, sizeof(cmd), "unload --pin-dir %s", PIN_DIR);
	run_loader(cmd);
	snprintf(cmd, sizeof(cmd), "load --slots 4 --pin-dir %s", PIN_DIR);
	assert_int_equal(run_loader(cmd), 0);
	setenv("WRITEVV_PIN_DIR", PIN_DIR, 1);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		st = bad_call_in_a_fresh_library();
		fflush(stdout);
		_exit(st);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	snprintf(cmd, sizeof(cmd), "unload --pin-dir %s", PIN_DIR);
	assert_int_equal(run_loader(cmd), 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unreadable_iovec_keeps_other_slots),
		cmocka_unit_test(test_more_threads_than_slots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
