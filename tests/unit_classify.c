/* SPDX-License-Identifier: MIT */
/* Unit tests: which descriptors the BPF path serves, and what is cached. */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "registry.h"

static struct wvv_sock_facts tcp(int state)
{
	struct wvv_sock_facts f = { 1, SOCK_STREAM, IPPROTO_TCP, AF_INET, 0, state, 0 };

	return f;
}

static void test_classify(void **state)
{
	struct wvv_sock_facts f = tcp(1), nosock = { 0 };

	(void)state;
	assert_int_equal(wvv_classify(&f), WVV_TK_BPF);
	f = tcp(8); /* CLOSE_WAIT: still writable */
	assert_int_equal(wvv_classify(&f), WVV_TK_BPF);
	f.domain = AF_INET6;
	assert_int_equal(wvv_classify(&f), WVV_TK_BPF);
	f = tcp(2); /* SYN_SENT */
	assert_int_equal(wvv_classify(&f), WVV_TK_USER);
	f = tcp(7); /* CLOSE */
	assert_int_equal(wvv_classify(&f), WVV_TK_USER);
	f = tcp(1);
	f.has_ulp = 1; /* kTLS must never be bypassed */
	assert_int_equal(wvv_classify(&f), WVV_TK_USER);
	f = tcp(10);
	f.listening = 1;
	assert_int_equal(wvv_classify(&f), WVV_TK_USER);
	f = tcp(1);
	f.domain = AF_UNIX;
	assert_int_equal(wvv_classify(&f), WVV_TK_USER);
	f = tcp(1);
	f.type = SOCK_DGRAM;
	f.protocol = IPPROTO_UDP;
	assert_int_equal(wvv_classify(&f), WVV_TK_USER);
	assert_int_equal(wvv_classify(&nosock), WVV_TK_USER);
}

static void test_what_is_cached(void **state)
{
	struct wvv_sock_facts f = tcp(1), nosock = { 0 };

	(void)state;
	assert_true(wvv_classification_lasts(&f));
	f = tcp(2); /* connecting: may become servable */
	assert_false(wvv_classification_lasts(&f));
	assert_false(wvv_classification_lasts(&nosock)); /* bad fd: may open later */
	f = tcp(1);
	f.domain = AF_UNIX;
	assert_true(wvv_classification_lasts(&f));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_what_is_cached),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
