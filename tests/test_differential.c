/* SPDX-License-Identifier: MIT */
/*
 * Differential test: random descriptor sets, iovec shapes and failures go
 * through writevv (in the engine under test, WVV_TEST_ENGINE: kernel unless
 * set; ctest runs it in every engine) and, on an identical twin set, through
 * the plain writev loop. Returns, errors and received bytes must be identical.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "writev_reference.h"
#include "writevv.h"

enum kind { K_TCP, K_TCP_RESET, K_PIPE, K_DEAD_PIPE, K_FILE, K_BAD, K_UNIX, K_KINDS };

#define POOL 24 /* twins of each kind */

struct twin_set {
	struct tcp_fleet tcp;      /* POOL ok + POOL reset targets */
	struct sink *sink;         /* reads the pipes and UNIX sockets as they fill */
	int pipe_sink[POOL], unix_sink[POOL];
	int pipe_w[POOL], pipe_r[POOL], dead[POOL], file[POOL], unix_w[POOL], unix_r[POOL];
};

static void open_set(struct twin_set *s)
{
	int i;

	fleet_open(&s->tcp, 2 * POOL, 1);
	s->sink = sink_new();
	for (i = 0; i < POOL; i++) {
		int p[2], u[2], d[2];
		char path[] = "/tmp/writevv-diff-XXXXXX";
		struct linger lg = { 1, 0 };

		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		s->pipe_w[i] = p[1];
		s->pipe_r[i] = p[0];
		s->pipe_sink[i] = sink_add(s->sink, p[0], -1, 0);
		assert_int_equal(pipe(d), 0);
		close(d[0]);
		s->dead[i] = d[1];
		s->file[i] = mkstemp(path);
		unlink(path);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, u), 0);
		s->unix_w[i] = u[0];
		s->unix_r[i] = u[1];
		s->unix_sink[i] = sink_add(s->sink, u[1], u[0], 0);
		/* TCP targets POOL..2*POOL-1: the peer resets. */
		fleet_stop_reading(&s->tcp, POOL + i);
		setsockopt(s->tcp.rx[POOL + i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(s->tcp.rx[POOL + i]);
		s->tcp.rx[POOL + i] = -1;
	}
	for (i = 0; i < POOL; i++)
		wait_reset(s->tcp.tx[POOL + i]);
}

static void close_set(struct twin_set *s)
{
	int i;

	sink_free(s->sink);
	for (i = 0; i < POOL; i++) {
		close(s->pipe_w[i]);
		close(s->pipe_r[i]);
		close(s->dead[i]);
		close(s->file[i]);
		close(s->unix_w[i]);
		close(s->unix_r[i]);
	}
	fleet_close(&s->tcp);
}

static int fd_of(struct twin_set *s, enum kind k, int i)
{
	switch (k) {
	case K_TCP: return s->tcp.tx[i];
	case K_TCP_RESET: return s->tcp.tx[POOL + i];
	case K_PIPE: return s->pipe_w[i];
	case K_DEAD_PIPE: return s->dead[i];
	case K_FILE: return s->file[i];
	case K_UNIX: return s->unix_w[i];
	default: return 1000000 + i; /* never open */
	}
}

/* The bytes receiver ia of set A and ib of set B got so far are the same. */
static void compare_sink_bytes(struct twin_set *A, int ia, struct twin_set *B, int ib)
{
	size_t la, lb;
	const unsigned char *ba = sink_bytes(A->sink, ia, &la), *bb = sink_bytes(B->sink, ib, &lb);

	assert_int_equal(la, lb);
	if (la)
		assert_memory_equal(ba, bb, la);
}

static void test_differential(void **state)
{
	struct twin_set A, B;
	unsigned seed = 12345;
	int iter, i;

	(void)state;
	signal(SIGPIPE, SIG_IGN); /* for the reference loop only */
	use_test_engine();
	open_set(&A);
	open_set(&B);
	for (iter = 0; iter < 150; iter++) {
		int n = 1 + (int)(rand_r(&seed) % 40), niov = 1 + (int)(rand_r(&seed) % 12), r1, r2;
		int fa[64], fb[64], ea[64], eb[64];
		size_t ra[64], rb[64], total = 0;
		struct iovec iov[IOV_MAX];
		unsigned char *buf;

		if (rand_r(&seed) % 10 == 0)
			niov = 1 + (int)(rand_r(&seed) % IOV_MAX);
		for (i = 0; i < niov; i++) {
			unsigned x = rand_r(&seed) % 100;

			iov[i].iov_len = x < 15 ? 0 : x < 70 ? rand_r(&seed) % 2000
					     : x < 95 ? rand_r(&seed) % 70000 : rand_r(&seed) % 300000;
			if (niov > 64)
				iov[i].iov_len %= 300;
			total += iov[i].iov_len;
		}
		buf = malloc(total + 1);
		pattern_fill(buf, total, (unsigned)iter, 0);
		for (i = 0, total = 0; i < niov; i++) {
			iov[i].iov_base = buf + total;
			total += iov[i].iov_len;
		}
		for (i = 0; i < n; i++) {
			enum kind k = (enum kind)(rand_r(&seed) % K_KINDS);
			int t = (int)(rand_r(&seed) % POOL);

			if (i > 0 && rand_r(&seed) % 8 == 0) { /* the same fd again */
				int j = (int)(rand_r(&seed) % (unsigned)i);

				fa[i] = fa[j];
				fb[i] = fb[j];
				continue;
			}
			fa[i] = fd_of(&A, k, t);
			fb[i] = fd_of(&B, k, t);
		}
		r1 = writevv(fa, n, iov, niov, ra, ea);
		r2 = writev_reference(fb, n, iov, niov, rb, eb, NULL); /* SIGPIPE ignored */
		for (i = 0; i < n; i++) {
			if (ra[i] != rb[i] || ea[i] != eb[i]) {
				fprintf(stderr, "iter %d target %d (fd %d): writevv %zd/%d, writev %zd/%d\n",
					iter, i, fa[i], (ssize_t)ra[i], ea[i], (ssize_t)rb[i], eb[i]);
				fail();
			}
		}
		assert_int_equal(r1, r2);
		sink_settle(A.sink);
		sink_settle(B.sink);
		for (i = 0; i < POOL; i++) {
			compare_sink_bytes(&A, A.pipe_sink[i], &B, B.pipe_sink[i]);
			compare_sink_bytes(&A, A.unix_sink[i], &B, B.unix_sink[i]);
		}
		free(buf);
	}
	for (i = 0; i < POOL; i++) {
		size_t la, lb;
		unsigned char *ba, *bb;

		la = (size_t)lseek(A.file[i], 0, SEEK_END);
		lb = (size_t)lseek(B.file[i], 0, SEEK_END);
		assert_int_equal(la, lb);
		ba = malloc(la + 1);
		bb = malloc(lb + 1);
		assert_int_equal(pread(A.file[i], ba, la, 0), (ssize_t)la);
		assert_int_equal(pread(B.file[i], bb, lb, 0), (ssize_t)lb);
		assert_memory_equal(ba, bb, la);
		free(ba);
		free(bb);
		/* TCP receivers: same byte streams. */
		usleep(1000);
	}
	for (i = 0; i < POOL; i++) {
		assert_int_equal(fleet_wait(&A.tcp, i, B.tcp.got_len[i], 20000), 0);
		assert_int_equal(fleet_wait(&B.tcp, i, A.tcp.got_len[i], 20000), 0);
		assert_int_equal(A.tcp.got_len[i], B.tcp.got_len[i]);
		if (A.tcp.got_len[i])
			assert_memory_equal(A.tcp.got[i], B.tcp.got[i], A.tcp.got_len[i]);
	}
	close_set(&A);
	close_set(&B);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_differential),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
