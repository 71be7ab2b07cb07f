/* SPDX-License-Identifier: MIT */
/*
 * Buffers writev answers with EFAULT or a short count: an unmapped or
 * PROT_NONE iov_base, a buffer that runs into an unmapped or PROT_NONE
 * page part way, NULL with length 0, overlapping iovecs. Each call goes to
 * one set of fresh targets of every kind through writevv and to a twin set
 * through writev; results and the bytes each receiver got must be the same
 * (an engine that copies the payload must never die on it, nor send
 * anything twice or anything writev would not have sent).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "writevv.h"

#define PG 4096

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(UNDER_ASAN)
#define UNDER_ASAN 1
#endif
#define ROUNDS 6 /* the default mode may pick another engine each time */

enum { K_TCP, K_UNIX, K_UDGRAM, K_PIPE, K_FILE, K_NULL, K_UDP, K_BAD, K_NEG, NKINDS };
static const char *kind_name[NKINDS] = { "tcp", "unix", "unix-dgram", "pipe", "file",
					 "/dev/null", "udp", "not open", "negative" };

struct target {
	int tx, rx; /* rx: where its bytes can be read back (the file itself) */
};

static unsigned char *map; /* see setup() */
static size_t map_len;

static int udp_rx_pair(int *tx)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(rx, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(rx, (struct sockaddr *)&a, &alen), 0);
	*tx = socket(AF_INET, SOCK_DGRAM, 0);
	assert_int_equal(connect(*tx, (struct sockaddr *)&a, sizeof(a)), 0);
	return rx;
}

static void open_target(int kind, struct target *t)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	char path[] = "/tmp/wvv-faults-XXXXXX";
	int sv[2], lfd;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	switch (kind) {
	case K_TCP:
		lfd = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
		assert_int_equal(listen(lfd, 1), 0);
		assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
		t->tx = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(connect(t->tx, (struct sockaddr *)&a, sizeof(a)), 0);
		t->rx = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
		close(lfd);
		break;
	case K_UNIX:
	case K_UDGRAM:
		assert_int_equal(socketpair(AF_UNIX, kind == K_UNIX ? SOCK_STREAM : SOCK_DGRAM, 0, sv),
				 0);
		t->tx = sv[0];
		t->rx = sv[1];
		fcntl(t->rx, F_SETFL, O_NONBLOCK);
		break;
	case K_PIPE:
		assert_int_equal(pipe2(sv, 0), 0);
		t->tx = sv[1];
		t->rx = sv[0];
		fcntl(t->rx, F_SETFL, O_NONBLOCK);
		fcntl(t->tx, F_SETPIPE_SZ, 256 * 1024); /* the largest shape fits */
		break;
	case K_FILE:
		t->tx = mkstemp(path);
		unlink(path);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", t->tx);
		t->rx = open(path, O_RDONLY);
		break;
	case K_NULL:
		t->tx = open("/dev/null", O_WRONLY);
		t->rx = -1;
		break;
	case K_UDP:
		t->rx = udp_rx_pair(&t->tx);
		break;
	case K_BAD: /* writev: EBADF before it looks at the iovecs */
		t->tx = INT_MAX - 7;
		t->rx = -1;
		assert_true(fcntl(t->tx, F_GETFD) < 0);
		return;
	case K_NEG:
		t->tx = -1;
		t->rx = -1;
		return;
	}
	assert_true(t->tx >= 0);
}

/*
 * What the receiver of t got: at least 'want' bytes (what the write
 * reported) are waited for, since loopback delivery may be deferred to a
 * softirq; then whatever else is there at once (bytes that should not be).
 */
static size_t read_back(const struct target *t, unsigned char *buf, size_t cap, size_t want)
{
	size_t got = 0;
	ssize_t r;
	int waited = 0;

	if (t->rx < 0)
		return 0;
	for (;;) {
		struct pollfd p = { t->rx, POLLIN, 0 };

		while (got < cap && (r = read(t->rx, buf + got, cap - got)) > 0)
			got += (size_t)r;
		if (got >= want || waited >= 10000)
			return got;
		poll(&p, 1, 100);
		waited += 100;
	}
}

static void close_target(struct target *t)
{
	if (t->tx >= 0)
		close(t->tx);
	if (t->rx >= 0)
		close(t->rx);
}

struct shape {
	const char *name;
	struct iovec iov[3];
	int iovcnt;
};

static int nshapes;
static struct shape shapes[20];

static void add(const char *name, int iovcnt, void *b0, size_t l0, void *b1, size_t l1, void *b2,
		size_t l2)
{
	struct shape *s = &shapes[nshapes++];

	s->name = name;
	s->iovcnt = iovcnt;
	s->iov[0] = (struct iovec){ b0, l0 };
	s->iov[1] = (struct iovec){ b1, l1 };
	s->iov[2] = (struct iovec){ b2, l2 };
}

/*
 * The map: [0, 40 pages) readable, page 40 unmapped, [41, 44) readable,
 * page 44 PROT_NONE, [45, 48) readable. Anything mapped later (a ring's
 * page, the sanitizer's) may land in the hole: then the map is made again
 * elsewhere (see hole_is_unmapped).
 */
static unsigned char *hole, *none;

static void make_map(void)
{
	unsigned char *p;
	size_t k;

	map_len = 48 * PG;
	map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(map != MAP_FAILED);
	for (k = 0; k < map_len; k++)
		map[k] = (unsigned char)(k * 7 + k / 251);
	hole = map + 40 * PG;
	none = map + 44 * PG;
	assert_int_equal(munmap(hole, PG), 0);
	assert_int_equal(mprotect(none, PG, PROT_NONE), 0);
	p = map + 41 * PG;

	nshapes = 0;
	add("NULL base, length 0", 1, NULL, 0, NULL, 0, NULL, 0);
	add("NULL/0 then 5000 bytes", 2, NULL, 0, p, 5000, NULL, 0);
	add("unmapped base, 10 bytes", 1, hole, 10, NULL, 0, NULL, 0);
	add("unmapped base, 3000 bytes", 1, hole, 3000, NULL, 0, NULL, 0);
	add("PROT_NONE base, 3000 bytes", 1, none, 3000, NULL, 0, NULL, 0);
	add("8192 bytes then unmapped", 1, hole - 8192, 12288, NULL, 0, NULL, 0);
	add("100 bytes then unmapped", 1, hole - 100, 200, NULL, 0, NULL, 0);
	add("8192 bytes then PROT_NONE", 1, none - 8192, 12288, NULL, 0, NULL, 0);
	add("100 bytes then PROT_NONE", 1, none - 100, 200, NULL, 0, NULL, 0);
	add("3000 bytes, then an unmapped iovec", 2, p, 3000, hole, 10, NULL, 0);
	add("3000 bytes, NULL/0, PROT_NONE iovec", 3, p, 3000, NULL, 0, none, 1000);
	add("overlapping iovecs", 3, p, 3000, p + 1000, 3000, p, 3000);
	/* more than one kernel-engine frame (65488 bytes), fits every buffer */
	add("70 KiB then unmapped", 1, hole - 70 * 1024, 70 * 1024 + 50, NULL, 0, NULL, 0);
#ifndef UNDER_ASAN
	/* (ASan's writev checks the 2 GiB /dev/null reports as read, which
	 * runs into its own redzones: these run in the plain build only.) */
	add("a terabyte from a PROT_NONE page", 1, none, (size_t)1 << 40, NULL, 0, NULL, 0);
	add("a terabyte from a readable page, then 10 bytes", 2, none - PG, (size_t)1 << 40, p, 10,
	    NULL, 0);
	add("10 bytes, then a terabyte from a PROT_NONE page", 2, p, 10, none, (size_t)1 << 40, NULL,
	    0);
#endif
	add("70 KiB in overlapping iovecs", 2, hole - 40 * 1024, 40 * 1024, hole - 60 * 1024,
	    30 * 1024, NULL, 0);
}

/* Our pages only: whatever took the hole is not ours to unmap. */
static void drop_map(void)
{
	munmap(map, 40 * PG);
	munmap(hole + PG, map_len - 41 * PG);
}

static bool hole_is_unmapped(void)
{
	unsigned char v;

	return mincore(hole, PG, &v) < 0 && errno == ENOMEM;
}

static int setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_DFL); /* raising it fails the test */
	use_test_engine();
	make_map();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	drop_map();
	return 0;
}

/* false if the hole was mapped meanwhile (the comparison means nothing) */
static bool compare_shape(const struct shape *s)
{
	struct target mine[NKINDS], twin[NKINDS];
	int fds[NKINDS], errs[NKINDS], k, r, full = 0;
	size_t rets[NKINDS], cap = 256 * 1024;
	unsigned char *a = malloc(cap), *b = malloc(cap);
	bool valid = hole_is_unmapped();

	for (k = 0; k < NKINDS; k++) {
		open_target(k, &mine[k]);
		open_target(k, &twin[k]);
		fds[k] = mine[k].tx;
	}
	r = writevv(fds, NKINDS, s->iov, s->iovcnt, rets, errs);
	for (k = 0; k < NKINDS; k++) {
		ssize_t w = writev(twin[k].tx, s->iov, s->iovcnt);
		int e = w < 0 ? errno : 0;
		size_t la, lb;

		if (!hole_is_unmapped()) {
			valid = false;
			break;
		}

		if ((w < 0 ? (size_t)-1 : (size_t)w) != rets[k] || e != errs[k])
			fail_msg("%s, %s: writevv %zd (errno %d), writev %zd (errno %d)", s->name,
				 kind_name[k], (ssize_t)rets[k], errs[k], w, e);
		la = read_back(&mine[k], a, cap, errs[k] ? 0 : rets[k]);
		lb = read_back(&twin[k], b, cap, w > 0 ? (size_t)w : 0);
		if (la != lb || memcmp(a, b, la))
			fail_msg("%s, %s: the receiver got %zu bytes, writev's %zu%s", s->name,
				 kind_name[k], la, lb, la == lb ? " (not the same)" : "");
		full += rets[k] != (size_t)-1 && errs[k] == 0 &&
			rets[k] == s->iov[0].iov_len + s->iov[1].iov_len + s->iov[2].iov_len;
	}
	if (valid)
		assert_int_equal(r, full);
	for (k = 0; k < NKINDS; k++) {
		close_target(&mine[k]);
		close_target(&twin[k]);
	}
	free(a);
	free(b);
	return valid;
}

static void test_fault_shapes(void **state)
{
	int i, round;

	(void)state;
	for (round = 0; round < ROUNDS; round++)
		for (i = 0; i < nshapes; i++) {
			int tries = 0;

			while (!compare_shape(&shapes[i])) {
				/* something was mapped in the hole: move the map */
				assert_true(++tries < 5);
				drop_map();
				make_map();
			}
		}
}

/* Refuse process_vm_readv (EPERM) in this process, as a sandbox may. */
static int refuse_process_vm_readv(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_process_vm_readv, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/*
 * Where process_vm_readv is refused, the zero-copy engine cannot copy
 * safely: every call still gets writev's answers (the iouring engine runs
 * them), and the zerocopy mode then reports that engine. In a child, whose
 * filter the test process does not keep.
 */
static void test_copy_refused(void **state)
{
	int st;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int i;

		if (refuse_process_vm_readv())
			_exit(3);
		/* a failed check here ends the child's copy of the test run
		 * with a non-zero status */
		for (i = 0; i < nshapes; i++)
			compare_shape(&shapes[i]);
		if (test_engine() == WRITEVV_MODE_ZEROCOPY) {
			int mode = -1;

			writevv_control(WRITEVV_GETMODE, &mode);
			if (mode != WRITEVV_MODE_IOURING)
				_exit(4);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fail_msg("child: %s %d", WIFEXITED(st) ? "exit" : "signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fault_shapes),
		cmocka_unit_test(test_copy_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
