/* SPDX-License-Identifier: MIT */
/* Descriptors the BPF path cannot serve, mixed into kernel-mode calls. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "writevv.h"
#include "writevv_frame.h"

static int setup_kernel(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_DFL);
	use_test_engine();
	return 0;
}

static void test_mixed_descriptors(void **state)
{
	enum { N = 11 };
	struct tcp_fleet f;
	char path[] = "/tmp/writevv-mixed-XXXXXX";
	int file = mkstemp(path), pipefd[2], deadpipe[2], unixsv[2], udp, udp_conn, listener;
	int fds[N], errs[N];
	size_t rets[N];
	unsigned char buf[70000], back[70000];
	struct iovec iov[2] = { { buf, 1000 }, { buf + 1000, sizeof(buf) - 1000 } };
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct wvv_stats before, after;
	int r, i;

	(void)state;
	assert_true(file >= 0);
	unlink(path);
	assert_int_equal(pipe(pipefd), 0);
	fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
	assert_int_equal(pipe(deadpipe), 0);
	close(deadpipe[0]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, unixsv), 0);
	setsockopt(unixsv[0], SOL_SOCKET, SO_SNDBUF, &(int){ 1 << 20 }, sizeof(int));
	udp = socket(AF_INET, SOCK_DGRAM, 0);
	udp_conn = socket(AF_INET, SOCK_DGRAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(9); /* discard: nobody listens, the send still succeeds */
	connect(udp_conn, (struct sockaddr *)&a, sizeof(a));
	listener = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_port = 0;
	bind(listener, (struct sockaddr *)&a, sizeof(a));
	listen(listener, 1);
	fleet_open(&f, 2, 1);
	pattern_fill(buf, sizeof(buf), 42, 0);

	fds[0] = f.tx[0];
	fds[1] = file;
	fds[2] = pipefd[1];
	fds[3] = unixsv[0];
	fds[4] = 987654;        /* bad fd */
	fds[5] = -1;            /* bad fd */
	fds[6] = deadpipe[1];   /* EPIPE, no SIGPIPE */
	fds[7] = udp;           /* unconnected UDP: EDESTADDRREQ */
	fds[8] = listener;      /* listening TCP */
	fds[9] = f.tx[1];
	fds[10] = udp_conn;     /* datagram too big for UDP: EMSGSIZE */

	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	if (test_engine() == WRITEVV_MODE_KERNEL)
		assert_int_equal(read_bpf_stats(&before), 0);
	r = writevv(fds, N, iov, 2, rets, errs);
	if (test_engine() == WRITEVV_MODE_KERNEL)
		assert_int_equal(read_bpf_stats(&after), 0);
	/* In kernel mode the two TCP targets went through the BPF program. */
	if (test_engine() == WRITEVV_MODE_KERNEL)
		assert_int_equal(after.bytes - before.bytes, 2 * sizeof(buf));

	assert_int_equal(errs[0], 0);
	assert_int_equal(rets[0], sizeof(buf));
	assert_int_equal(errs[1], 0);
	assert_int_equal(rets[1], sizeof(buf));
	assert_int_equal(errs[2], 0);
	assert_int_equal(rets[2], sizeof(buf));
	assert_int_equal(errs[3], 0);
	assert_int_equal(rets[3], sizeof(buf));
	assert_int_equal(errs[4], EBADF);
	assert_int_equal(rets[4], (size_t)-1);
	assert_int_equal(errs[5], EBADF);
	assert_int_equal(errs[6], EPIPE);
	/* Whatever writev itself says for these sockets (sendmsg is writev
	 * plus MSG_NOSIGNAL; these calls have no side effect). */
	for (i = 7; i <= 10; i++) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

		if (i == 9)
			continue;
		errno = 0;
		assert_int_equal(sendmsg(fds[i], &mh, MSG_NOSIGNAL), -1);
		assert_int_equal(errs[i], errno);
		assert_int_equal(rets[i], (size_t)-1);
	}
	assert_int_equal(errs[9], 0);
	assert_int_equal(rets[9], sizeof(buf));
	assert_int_equal(r, 5);

	/* The bytes are where they belong. */
	assert_int_equal(pread(file, back, sizeof(back), 0), (ssize_t)sizeof(buf));
	assert_memory_equal(back, buf, sizeof(buf));
	assert_int_equal(read(pipefd[0], back, sizeof(back)), (ssize_t)sizeof(buf));
	assert_memory_equal(back, buf, sizeof(buf));
	assert_int_equal(recv(unixsv[1], back, sizeof(back), MSG_WAITALL), (ssize_t)sizeof(buf));
	assert_memory_equal(back, buf, sizeof(buf));
	for (i = 0; i < 2; i++) {
		assert_int_equal(fleet_wait(&f, i, sizeof(buf), 10000), 0);
		assert_memory_equal(f.got[i], buf, sizeof(buf));
	}

	fleet_close(&f);
	close(file);
	close(pipefd[0]);
	close(pipefd[1]);
	close(deadpipe[1]);
	close(unixsv[0]);
	close(unixsv[1]);
	close(udp);
	close(udp_conn);
	close(listener);
}

/* Call-level errors: -1 with errno, nothing written. */
static void test_call_errors(void **state)
{
	struct tcp_fleet f;
	unsigned char b[10] = "0123456789";
	struct iovec iov = { b, 10 }, big[2] = { { b, (size_t)SSIZE_MAX }, { b, 10 } };
	size_t rets[1];
	int errs[1];

	(void)state;
	fleet_open(&f, 1, 1);
	errno = 0;
	assert_int_equal(writevv(f.tx, -1, &iov, 1, rets, errs), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(writevv(f.tx, 1, &iov, -1, rets, errs), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(writevv(f.tx, 1, &iov, IOV_MAX + 1, rets, errs), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(writevv(f.tx, 1, big, 2, rets, errs), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(writevv(NULL, 1, &iov, 1, rets, errs), -1);
	assert_int_equal(errno, EFAULT);
	assert_int_equal(writevv(f.tx, 1, NULL, 1, rets, errs), -1);
	assert_int_equal(errno, EFAULT);
	assert_int_equal(writevv(f.tx, 0, &iov, 1, rets, errs), 0);
	assert_int_equal(writevv(NULL, 0, &iov, 1, NULL, NULL), 0);
	/* Zero bytes: like writev, 0 and nothing sent. */
	assert_int_equal(writevv(f.tx, 1, &iov, 0, rets, errs), 1);
	assert_int_equal(rets[0], 0);
	/* returns/errors may be NULL. */
	assert_int_equal(writevv(f.tx, 1, &iov, 1, NULL, NULL), 1);
	assert_int_equal(fleet_wait(&f, 0, 10, 10000), 0);
	usleep(20000);
	assert_int_equal(f.got_len[0], 10);
	assert_memory_equal(f.got[0], b, 10);
	fleet_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mixed_descriptors),
		cmocka_unit_test(test_call_errors),
	};

	return cmocka_run_group_tests(tests, setup_kernel, NULL);
}
