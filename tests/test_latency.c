/* SPDX-License-Identifier: MIT */
/*
 * Delivered promptly: small frames to TCP_NODELAY targets must reach every
 * receiver within 20 ms of the call's return (tcp_bpf_push can cork a
 * target for ~200 ms when a redirect ends inside a shared element), and
 * each small write must leave as one TCP segment, as writev's does (a
 * redirected payload split over two scatterlist elements is pushed as two).
 */
#define _GNU_SOURCE
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* tcpi_data_segs_out (glibc 2.36 lacks it) */
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "writevv.h"

#define N 50

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void test_small_frames_prompt(void **state)
{
	struct tcp_fleet f;
	int round, i;
	double worst = 0;

	(void)state;
	use_test_engine();
	fleet_open(&f, N, 1);
	fleet_pause(&f); /* this test reads the receivers itself */
	for (i = 0; i < N; i++)
		fleet_stop_reading(&f, i);
	for (round = 0; round < 40; round++) {
		unsigned char buf[64];
		struct iovec iov = { buf, 1 + (size_t)(round * 13) % 64 };
		size_t rets[N];
		int errs[N];
		double t;

		pattern_fill(buf, sizeof(buf), (unsigned)round, 0);
		assert_int_equal(writevv(f.tx, N, &iov, 1, rets, errs), N);
		t = now_ms();
		for (i = 0; i < N; i++) {
			unsigned char in[64];
			size_t got = 0;

			while (got < iov.iov_len) {
				struct pollfd p = { f.rx[i], POLLIN, 0 };
				double left = 20.0 - (now_ms() - t);
				ssize_t r;

				if (left <= 0 || poll(&p, 1, (int)left + 1) <= 0)
					break;
				r = recv(f.rx[i], in + got, iov.iov_len - got, MSG_DONTWAIT);
				if (r > 0)
					got += (size_t)r;
			}
			if (now_ms() - t > worst)
				worst = now_ms() - t;
			if (got != iov.iov_len) {
				fprintf(stderr, "round %d target %d: %zu of %zu bytes within 20 ms\n",
					round, i, got, iov.iov_len);
				fail();
			}
			assert_memory_equal(in, buf, iov.iov_len);
		}
	}
	printf("slowest delivery: %.2f ms after the call returned\n", worst);
	fleet_close(&f);
}

/* Data segments sent by fd, less retransmissions (and tail-loss probes). */
static uint64_t fresh_data_segs(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	return (uint64_t)ti.tcpi_data_segs_out - ti.tcpi_total_retrans;
}

#define SEG_TARGETS 4
#define SEG_CALLS 200

static void test_one_segment_per_small_write(void **state)
{
	struct tcp_fleet f;
	uint64_t before[SEG_TARGETS];
	static unsigned char buf[1400];
	struct iovec iov = { buf, sizeof(buf) };
	int call, i;

	(void)state;
	use_test_engine();
	fleet_open(&f, SEG_TARGETS, 1);
	for (i = 0; i < SEG_TARGETS; i++)
		before[i] = fresh_data_segs(f.tx[i]);
	/* One call at a time, each received before the next: nothing queues
	 * behind the congestion window, so writev would send one segment per
	 * call (loopback's MSS is far above 1400 bytes). Over 800 frames the
	 * kernel engine's frames cross dozens of page-frag boundaries. */
	for (call = 0; call < SEG_CALLS; call++) {
		size_t rets[SEG_TARGETS];
		int errs[SEG_TARGETS];

		pattern_fill(buf, sizeof(buf), (unsigned)call + 1000, 0);
		assert_int_equal(writevv(f.tx, SEG_TARGETS, &iov, 1, rets, errs), SEG_TARGETS);
		for (i = 0; i < SEG_TARGETS; i++)
			assert_int_equal(fleet_wait(&f, i, (size_t)(call + 1) * sizeof(buf), 10000), 0);
	}
	for (i = 0; i < SEG_TARGETS; i++) {
		uint64_t segs = fresh_data_segs(f.tx[i]) - before[i];

		if (segs != SEG_CALLS)
			fprintf(stderr, "target %d: %llu data segments for %d writes of %zu bytes\n", i,
				(unsigned long long)segs, SEG_CALLS, sizeof(buf));
		assert_int_equal(segs, SEG_CALLS);
		for (call = 0; call < SEG_CALLS; call++)
			assert_int_equal(pattern_check(f.got[i] + (size_t)call * sizeof(buf), sizeof(buf),
						       (unsigned)call + 1000, 0), 0);
	}
	fleet_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_frames_prompt),
		cmocka_unit_test(test_one_segment_per_small_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
