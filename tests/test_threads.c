/* SPDX-License-Identifier: MIT */
/* Many threads and two processes calling writevv at once: no interleaving. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "writevv.h"
#include "writevv_frame.h"

#define THREADS 8
#define PER_THREAD 16
#define CALLS 200

struct worker {
	struct tcp_fleet *f;
	int first;
	int failures;
};

/* Each thread owns PER_THREAD targets and streams a pattern to them. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int fds[PER_THREAD], errs[PER_THREAD], i, c;
	size_t rets[PER_THREAD];
	unsigned char buf[3000];

	for (i = 0; i < PER_THREAD; i++)
		fds[i] = w->f->tx[w->first + i];
	for (c = 0; c < CALLS; c++) {
		size_t len = 100 + (size_t)(c * 37) % 2900;
		struct iovec iov = { buf, len };

		pattern_fill(buf, len, (unsigned)w->first, (size_t)c * 3000);
		if (writevv(fds, PER_THREAD, &iov, 1, rets, errs) != PER_THREAD)
			w->failures++;
	}
	return NULL;
}

static void check_streams(struct tcp_fleet *f, int first, int n)
{
	int i, c;

	for (i = first; i < first + n; i++) {
		size_t want = 0, off = 0;
		int owner = first + ((i - first) / PER_THREAD) * PER_THREAD;

		for (c = 0; c < CALLS; c++)
			want += 100 + (size_t)(c * 37) % 2900;
		assert_int_equal(fleet_wait(f, i, want, 20000), 0);
		assert_int_equal(f->got_len[i], want);
		for (c = 0; c < CALLS; c++) {
			size_t len = 100 + (size_t)(c * 37) % 2900;

			assert_int_equal(pattern_check(f->got[i] + off, len, (unsigned)owner,
						       (size_t)c * 3000), 0);
			off += len;
		}
	}
}

static void test_many_threads(void **state)
{
	struct tcp_fleet f;
	struct worker w[THREADS];
	pthread_t t[THREADS];
	struct wvv_stats before, after;
	int i;

	(void)state;
	use_test_engine();
	fleet_open(&f, THREADS * PER_THREAD, 1);
	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	if (test_engine() == WRITEVV_MODE_KERNEL)
		assert_int_equal(read_bpf_stats(&before), 0);
	for (i = 0; i < THREADS; i++) {
		w[i].f = &f;
		w[i].first = i * PER_THREAD;
		w[i].failures = 0;
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	if (test_engine() == WRITEVV_MODE_KERNEL) {
		assert_int_equal(read_bpf_stats(&after), 0);
		assert_true(after.frames - before.frames >= (uint64_t)THREADS * PER_THREAD * CALLS);
	}
	check_streams(&f, 0, THREADS * PER_THREAD);
	fleet_close(&f);
}

/* Two processes, each with its own targets, at the same time. */
static void test_two_processes(void **state)
{
	pid_t pid[2];
	int i, st;

	(void)state;
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0) {
			struct tcp_fleet f;
			struct worker w = { &f, 0, 0 };

			use_test_engine();
			fleet_open(&f, PER_THREAD, 1);
			worker_main(&w);
			check_streams(&f, 0, PER_THREAD);
			fleet_close(&f);
			_exit(w.failures ? 1 : 0);
		}
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
}

/* fork() after this thread has used writevv: parent and child must each
 * get their own control socket (kernel) and ring (io_uring). */
static void test_fork_after_use(void **state)
{
	struct tcp_fleet f;
	struct worker w = { &f, 0, 0 };
	static const size_t warm = 100;
	int idx = 0, st;
	pid_t pid;

	(void)state;
	use_test_engine();
	fleet_open(&f, PER_THREAD, 1);
	fanout_check(&f, &idx, 1, &warm, 1, 9); /* this thread now has its state */
	fleet_reset(&f);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct tcp_fleet g;
		struct worker wc = { &g, 0, 0 };

		fleet_open(&g, PER_THREAD, 1);
		worker_main(&wc);
		check_streams(&g, 0, PER_THREAD);
		fleet_close(&g);
		_exit(wc.failures ? 1 : 0);
	}
	worker_main(&w);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(w.failures, 0);
	check_streams(&f, 0, PER_THREAD);
	fleet_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_threads),
		cmocka_unit_test(test_two_processes),
		cmocka_unit_test(test_fork_after_use),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
