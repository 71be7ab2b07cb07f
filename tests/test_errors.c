/* SPDX-License-Identifier: MIT */
/* Failing targets in kernel mode: dead peers, full non-blocking targets. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "writevv.h"

static unsigned call_no = 100;

static int setup_kernel(void **state)
{
	(void)state;
	/* SIGPIPE keeps its default action: raising it fails the test. */
	signal(SIGPIPE, SIG_DFL);
	use_test_engine();
	return 0;
}

static void write_all(struct tcp_fleet *f, int n, size_t len, size_t *rets, int *errs, int *ret)
{
	unsigned char *buf = malloc(len);
	struct iovec iov = { buf, len };

	pattern_fill(buf, len, call_no++, 0);
	*ret = writevv(f->tx, n, &iov, 1, rets, errs);
	free(buf);
}

/* A peer that closes mid-stream: EPIPE/ECONNRESET for it, no SIGPIPE,
 * everyone else gets every byte. */
static void test_peer_closes(void **state)
{
	struct tcp_fleet f;
	size_t rets[8];
	int errs[8], ret, i, round;
	size_t expect = 0;

	(void)state;
	fleet_open(&f, 8, 1);
	for (round = 0; round < 6; round++) {
		if (round == 2) {
			/* Peer 3 goes away with unread data: the kernel answers RST. */
			struct linger lg = { 1, 0 };

			setsockopt(f.rx[3], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(f.rx[3]);
			f.rx[3] = -1;
			wait_reset(f.tx[3]);
		}
		write_all(&f, 8, 5000, rets, errs, &ret);
		expect += 5000;
		for (i = 0; i < 8; i++) {
			if (i == 3 && round >= 2) {
				/* The first write after the reset may still be taken by
				 * the local stack; after that it must fail. */
				if (round >= 3) {
					assert_int_equal(rets[i], (size_t)-1);
					assert_true(errs[i] == EPIPE || errs[i] == ECONNRESET);
				}
				continue;
			}
			assert_int_equal(errs[i], 0);
			assert_int_equal(rets[i], 5000);
		}
		assert_true(ret >= 7);
	}
	for (i = 0; i < 8; i++) {
		if (i == 3)
			continue;
		assert_int_equal(fleet_wait(&f, i, expect, 10000), 0);
		assert_int_equal(f.got_len[i], expect);
	}
	fleet_close(&f);
}

/* A full non-blocking target: EAGAIN or a partial count, like writev; the
 * others are not held up. */
static void test_full_nonblocking_target(void **state)
{
	struct tcp_fleet f;
	size_t rets[4], sent_to_full = 0;
	int errs[4], ret, i, k, saw_partial_or_eagain = 0;
	int small = 4096;
	/* Each call's bytes follow the previous call's on target 0. */
	unsigned char *exp = NULL;

	(void)state;
	fleet_open(&f, 4, 1);
	fleet_stop_reading(&f, 0); /* target 0 fills up */
	fcntl(f.tx[0], F_SETFL, fcntl(f.tx[0], F_GETFL) | O_NONBLOCK);
	setsockopt(f.tx[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(f.rx[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	for (k = 0; k < 400 && !saw_partial_or_eagain; k++) {
		unsigned char buf[16384];
		struct iovec iov = { buf, sizeof(buf) };
		int fds[4] = { f.tx[0], f.tx[1], f.tx[2], f.tx[3] };

		pattern_fill(buf, sizeof(buf), 7, 0);
		ret = writevv(fds, 4, &iov, 1, rets, errs);
		for (i = 1; i < 4; i++) {
			assert_int_equal(errs[i], 0);
			assert_int_equal(rets[i], sizeof(buf));
		}
		if (errs[0] == EAGAIN) {
			assert_int_equal(rets[0], (size_t)-1);
			saw_partial_or_eagain = 1;
		} else {
			assert_int_equal(errs[0], 0);
			assert_true(rets[0] <= sizeof(buf));
			if (rets[0] < sizeof(buf))
				saw_partial_or_eagain = 1;
			exp = realloc(exp, sent_to_full + rets[0]);
			memcpy(exp + sent_to_full, buf, rets[0]);
			sent_to_full += rets[0];
		}
		assert_int_equal(ret, rets[0] == sizeof(buf) ? 4 : 3);
	}
	assert_true(saw_partial_or_eagain);
	/* Once drained, target 0 holds exactly the bytes reported, in order. */
	fleet_start_reading(&f, 0);
	assert_int_equal(fleet_wait(&f, 0, sent_to_full, 10000), 0);
	usleep(50000);
	assert_int_equal(f.got_len[0], sent_to_full);
	assert_memory_equal(f.got[0], exp, sent_to_full);
	free(exp);
	for (i = 1; i < 4; i++)
		assert_int_equal(fleet_wait(&f, i, (size_t)k * 16384, 10000), 0);
	fleet_close(&f);
}

struct resume_arg {
	struct tcp_fleet *f;
	int i, ms;
};

/* Run fn(a) on a thread of its own for target i of f, after ms. */
static void start_for_target(pthread_t *thr, struct resume_arg *a, struct tcp_fleet *f, int i,
			     int ms, void *(*fn)(void *))
{
	a->f = f;
	a->i = i;
	a->ms = ms;
	assert_int_equal(pthread_create(thr, NULL, fn, a), 0);
}

static void *resume_later(void *arg)
{
	struct resume_arg *a = arg;

	usleep((useconds_t)a->ms * 1000);
	fleet_start_reading(a->f, a->i);
	return NULL;
}

/* A full *blocking* target: like writev, the call waits until it took all;
 * it gets every byte, in order, and the other targets theirs. */
static void test_full_blocking_target(void **state)
{
	struct tcp_fleet f;
	struct resume_arg ra;
	pthread_t thr;
	size_t rets[3], len = 16 << 20; /* more than the socket buffers hold */
	int errs[3], i;
	unsigned char *buf = malloc(len);
	struct iovec iov = { buf, len };

	(void)state;
	fleet_open(&f, 3, 1);
	/* (Tiny receive buffers would stall TCP itself in zero-window
	 * probing, so the buffers keep their defaults.) */
	fleet_stop_reading(&f, 1);
	start_for_target(&thr, &ra, &f, 1, 300, resume_later);
	pattern_fill(buf, len, 77, 0);
	assert_int_equal(writevv(f.tx, 3, &iov, 1, rets, errs), 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(errs[i], 0);
		assert_int_equal(rets[i], len);
	}
	pthread_join(thr, NULL);
	for (i = 0; i < 3; i++) {
		assert_int_equal(fleet_wait(&f, i, len, 20000), 0);
		assert_int_equal(pattern_check(f.got[i], len, 77, 0), 0);
	}
	free(buf);
	fleet_close(&f);
}

/* Shut target i down for writing a->ms after its first bytes arrived. The
 * wait starts there, not at thread start: on a slow machine (QEMU without
 * KVM) filling the buffer and the sendfile engine's copy of it can take
 * longer than a fixed delay, and the shutdown then came before the call
 * wrote anything (writev's answer is then EPIPE, not the partial count). */
static void *shut_after_first_bytes(void *arg)
{
	struct resume_arg *a = arg;
	int queued = 0;

	while (ioctl(a->f->rx[a->i], FIONREAD, &queued) == 0 && queued == 0)
		usleep(1000);
	usleep((useconds_t)a->ms * 1000);
	shutdown(a->f->tx[a->i], SHUT_WR);
	return NULL;
}

/* A blocked write whose socket is shut down half way (it is more than the
 * socket buffers hold, so once bytes arrived it cannot have finished):
 * writev returns the partial count, and no SIGPIPE may escape (sendfile raises one even when
 * it returns a partial count). */
static void test_shutdown_mid_write(void **state)
{
	struct tcp_fleet f;
	struct resume_arg ra;
	pthread_t thr;
	size_t rets[2], len = 16 << 20;
	int errs[2];
	unsigned char *buf = malloc(len);
	struct iovec iov = { buf, len };

	(void)state;
	fleet_open(&f, 2, 1);
	fleet_stop_reading(&f, 0);
	start_for_target(&thr, &ra, &f, 0, 200, shut_after_first_bytes);
	pattern_fill(buf, len, 78, 0);
	assert_int_equal(writevv(f.tx, 2, &iov, 1, rets, errs), 1);
	pthread_join(thr, NULL);
	/* Target 0 took part of it (what fitted before the shutdown). */
	assert_int_equal(errs[0], 0);
	assert_true(rets[0] > 0 && rets[0] < len);
	assert_int_equal(errs[1], 0);
	assert_int_equal(rets[1], len);
	fleet_start_reading(&f, 0);
	assert_int_equal(fleet_wait(&f, 0, rets[0], 20000), 0);
	assert_int_equal(pattern_check(f.got[0], rets[0], 78, 0), 0);
	assert_int_equal(fleet_wait(&f, 1, len, 20000), 0);
	assert_int_equal(pattern_check(f.got[1], len, 78, 0), 0);
	free(buf);
	fleet_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_closes),
		cmocka_unit_test(test_full_nonblocking_target),
		cmocka_unit_test(test_full_blocking_target),
		cmocka_unit_test(test_shutdown_mid_write),
	};

	return cmocka_run_group_tests(tests, setup_kernel, NULL);
}
