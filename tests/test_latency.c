/* SPDX-License-Identifier: MIT */
/*
 * Delivered promptly: small frames to TCP_NODELAY targets must reach every
 * receiver within 20 ms of the call's return (tcp_bpf_push can cork a
 * target for ~200 ms when a redirect ends inside a shared element).
 */
#define _GNU_SOURCE
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_frames_prompt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
