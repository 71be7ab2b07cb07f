/* SPDX-License-Identifier: MIT */
/* The control connection accepts only the library's own connect (issue 10,
 * item 7): other local processes that connect to its listener first are
 * turned away. Real loopback sockets. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

static int listener(struct sockaddr_in *a)
{
	socklen_t len = sizeof(*a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)a, sizeof(*a)), 0);
	assert_int_equal(listen(l, 64), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)a, &len), 0);
	return l;
}

static int connect_to(const struct sockaddr_in *a, const char *from)
{
	struct sockaddr_in b = { .sin_family = AF_INET };
	int c = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(c >= 0);
	if (from) {
		b.sin_addr.s_addr = htonl(0x7f000002);
		assert_int_equal(bind(c, (struct sockaddr *)&b, sizeof(b)), 0);
	}
	assert_int_equal(connect(c, (const struct sockaddr *)a, sizeof(*a)), 0);
	return c;
}

static void test_intruders_turned_away(void **state)
{
	struct sockaddr_in a, own, peer;
	socklen_t len = sizeof(own);
	int l = listener(&a), in[3], c, p, i;
	char byte;

	(void)state;
	/* Connected before us: one from 127.0.0.1, two from 127.0.0.2. */
	for (i = 0; i < 3; i++)
		in[i] = connect_to(&a, i ? "127.0.0.2" : NULL);
	c = connect_to(&a, NULL);
	assert_int_equal(getsockname(c, (struct sockaddr *)&own, &len), 0);
	p = wvv_accept_peer(l, &own);
	assert_true(p >= 0);
	len = sizeof(peer);
	assert_int_equal(getpeername(p, (struct sockaddr *)&peer, &len), 0);
	assert_int_equal(peer.sin_port, own.sin_port);
	assert_int_equal(peer.sin_addr.s_addr, own.sin_addr.s_addr);
	/* What we send reaches our own socket, not an intruder's. */
	assert_int_equal(write(p, "x", 1), 1);
	assert_int_equal(read(c, &byte, 1), 1);
	for (i = 0; i < 3; i++) {
		/* Closed by the library: EOF (or a reset), never data. */
		assert_true(read(in[i], &byte, 1) <= 0);
		close(in[i]);
	}
	close(p);
	close(c);
	close(l);
}

static void test_own_connect_missing(void **state)
{
	struct sockaddr_in a, own;
	int l = listener(&a), in = connect_to(&a, NULL);

	(void)state;
	/* A peer address nobody connects from: the intruder is not taken. */
	own = a;
	own.sin_port = 0;
	assert_int_equal(wvv_accept_peer(l, &own), -ETIMEDOUT);
	close(in);
	close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intruders_turned_away),
		cmocka_unit_test(test_own_connect_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
