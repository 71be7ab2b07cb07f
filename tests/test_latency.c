/* SPDX-License-Identifier: MIT */
/*
 * Delivered promptly: a small frame to a TCP_NODELAY target must have left
 * the target's socket when the call returns, as writev's does: nothing may
 * sit corked in its send queue waiting for a later write or a timer
 * (tcp_bpf_push passes MSG_MORE when a redirect ends inside a scatterlist
 * element, and the target then holds the bytes until its probe timer, ~200
 * ms later). This is checked on the sender's state, not on a clock: with
 * nothing in flight, an uncorked small write is transmitted within the
 * call, so the socket's not-yet-sent count (SIOCOUTQNSD) is 0 right after
 * the call; a corked one leaves its bytes there. And each small write must
 * leave as one TCP segment, as writev's does (a redirected payload split
 * over two scatterlist elements is pushed as two).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <linux/sockios.h> /* SIOCOUTQNSD */
#include <linux/tcp.h> /* tcpi_data_segs_out (glibc 2.36 lacks it) */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "writevv.h"

#define N 50
/* Only a guard against a hang: nothing here is timed. */
#define GUARD_MS 20000

static int outq(int fd, unsigned long req)
{
	int n = -1;

	assert_int_equal(ioctl(fd, req, &n), 0);
	return n;
}

/* Wait until every byte written to fd has been acknowledged, so that the
 * next write finds an empty congestion window and an empty retransmit
 * queue (no cwnd limit, no autocork): it then leaves within the call
 * unless something corks it. */
static void wait_all_acked(int fd)
{
	int waited = 0;

	while (outq(fd, SIOCOUTQ) != 0) {
		if (waited++ >= GUARD_MS) {
			fprintf(stderr, "fd %d: %d bytes never acknowledged\n", fd, outq(fd, SIOCOUTQ));
			fail();
		}
		usleep(1000);
	}
}

static void recv_exactly(int fd, unsigned char *in, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t r;

		if (poll(&p, 1, GUARD_MS) <= 0) {
			fprintf(stderr, "fd %d: %zu of %zu bytes, then nothing\n", fd, got, len);
			fail();
		}
		r = recv(fd, in + got, len - got, MSG_DONTWAIT);
		if (r > 0)
			got += (size_t)r;
		else if (r == 0 || (errno != EAGAIN && errno != EINTR))
			fail();
	}
}

static void test_small_frames_not_corked(void **state)
{
	struct tcp_fleet f;
	int round, i;

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
		int errs[N], unsent[N];

		for (i = 0; i < N; i++)
			wait_all_acked(f.tx[i]);
		pattern_fill(buf, sizeof(buf), (unsigned)round, 0);
		assert_int_equal(writevv(f.tx, N, &iov, 1, rets, errs), N);
		/* Read first, judge after: the check must not be delayed by
		 * the reports of earlier targets. */
		for (i = 0; i < N; i++)
			unsent[i] = outq(f.tx[i], SIOCOUTQNSD);
		for (i = 0; i < N; i++) {
			if (unsent[i] != 0) {
				fprintf(stderr,
					"round %d target %d: %d of %zu bytes still unsent after the call "
					"(corked)\n",
					round, i, unsent[i], iov.iov_len);
				fail();
			}
			assert_int_equal(rets[i], iov.iov_len);
		}
		for (i = 0; i < N; i++) {
			unsigned char in[64];

			recv_exactly(f.rx[i], in, iov.iov_len);
			assert_memory_equal(in, buf, iov.iov_len);
		}
	}
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
		cmocka_unit_test(test_small_frames_not_corked),
		cmocka_unit_test(test_one_segment_per_small_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
