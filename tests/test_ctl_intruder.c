/* SPDX-License-Identifier: MIT */
/*
 * Issue 10, item 7: while a thread sets up its control connection, the
 * library's loopback listener is open to every local process. Here another
 * connection reaches it first, deterministically: this executable's
 * connect() (which the library's call resolves to) connects an intruder
 * to the same address just before the library's own connect. The library
 * must accept its own connection, turn the intruder away, and work in
 * kernel mode as usual: every frame through the program, every byte at the
 * receivers. (Before, it accepted the intruder: its control socket was
 * reset and kernel mode did not work for that thread.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "writevv.h"
#include "writevv_frame.h"

static atomic_int intrude;
static int intruder = -1;

/* Every connect() of this process, the library's included. */
int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)addr;

	if (atomic_exchange(&intrude, 0) && len >= sizeof(*in) && in->sin_family == AF_INET &&
	    in->sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
		intruder = socket(AF_INET, SOCK_STREAM, 0);
		if (intruder >= 0 && syscall(SYS_connect, intruder, addr, len))
			intruder = -1;
	}
	return (int)syscall(SYS_connect, fd, addr, len);
}

static void test_intruder_turned_away(void **state)
{
	static const size_t len = 3000;
	struct pollfd p = { .events = POLLIN };
	struct wvv_stats before, after;
	struct tcp_fleet f;
	int idx[4] = { 0, 1, 2, 3 }, call;
	char byte;

	(void)state;
	must_set_mode(WRITEVV_MODE_KERNEL);
	fleet_open(&f, 4, 1);
	assert_int_equal(read_bpf_stats(&before), 0);
	/* This thread's first kernel-mode call sets up its control connection. */
	atomic_store(&intrude, 1);
	fanout_check(&f, idx, 4, &len, 1, 1);
	assert_int_equal(atomic_load(&intrude), 0);
	assert_true(intruder >= 0);
	for (call = 2; call <= 20; call++)
		fanout_check(&f, idx, 4, &len, 1, (unsigned)call);
	assert_int_equal(read_bpf_stats(&after), 0);
	fprintf(stderr, "intruder: frames through the program %llu of %d\n",
		(unsigned long long)(after.frames - before.frames), 20 * 4);
	assert_true(after.frames - before.frames >= 20 * 4);
	/* The intruder was closed by the library, never given data. */
	p.fd = intruder;
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_true(recv(intruder, &byte, 1, MSG_DONTWAIT) <= 0);
	close(intruder);
	fleet_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intruder_turned_away),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
