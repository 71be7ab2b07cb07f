/* SPDX-License-Identifier: MIT */
/*
 * Memory is bounded by what a call passes, never by descriptor numbers:
 * calls whose fds[] hold numbers far above any open file (INT_MAX, 1<<30,
 * 1<<26, just above RLIMIT_NOFILE) or negative ones, mixed with real
 * descriptors, from one thread and from many, and a million random calls,
 * must each give writev's answer (EBADF for the bad numbers, everything for
 * the real ones) while the process's peak RSS (VmHWM, reset through
 * /proc/self/clear_refs after a warm-up that sets up the engines' fixed
 * per-thread state) grows by less than the bound writevv(3) states.
 *
 * The bounds (writevv(3), MEMORY): a call holds O(fdcnt + iovcnt + frames)
 * bytes, under 100 bytes per descriptor here; a thread's fixed state is its
 * ring and engine state (under 512 KiB), the kernel engine's ring and
 * scratch (under 512 KiB) and, where the zero-copy engine may run, its
 * buffer (WRITEVV_ZC_ARENA, 2 MiB).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "writevv.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(UNDER_ASAN)
#define UNDER_ASAN 1
#endif

#define FILL 0x5a
#define KIB 1024L
/* Slack for the allocator and the test's own stacks and buffers. */
#define SLACK_KIB 1024L
/* A thread's fixed state beyond the zero-copy buffer (see above); ASan
 * adds its own per thread (allocator caches, shadow of the stack). */
#ifdef UNDER_ASAN
#define THREAD_FIXED_KIB 2048L
#else
#define THREAD_FIXED_KIB 1024L
#endif
#define NTHREADS 4

/* Real targets; receivers drained by a thread that checks every byte. */
enum { R_NULL, R_TCP, R_UNIX, R_PIPE, R_UDP, NREAL };
static int real[NREAL];
static int drain_fd[NREAL] = { -1, -1, -1, -1, -1 };
static _Atomic unsigned long long sent[NREAL], received[NREAL];
static _Atomic int bad_byte, stop_drain;
static pthread_t drainer;
static int udp_rx;

/* Numbers no file has here, in increasing order (negatives last). */
static int bad[16];
static int nbad;
static _Atomic bool blew; /* a bound was exceeded: later tests must not risk more */

/* cmocka's checks may only fail in the test's own thread: the workers
 * of test_many_threads report here and the test fails after joining. */
static _Thread_local bool in_worker;
static _Atomic int worker_failures;

#define FAIL(...)                                                     \
	do {                                                          \
		if (!in_worker)                                       \
			fail_msg(__VA_ARGS__);                        \
		fprintf(stderr, __VA_ARGS__);                         \
		fputc('\n', stderr);                                  \
		atomic_fetch_add(&worker_failures, 1);                \
	} while (0)

static long status_kib(const char *field)
{
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	assert_true(v >= 0);
	return v;
}

/* Reset the peak (VmHWM) to the current RSS; returns that RSS. */
static long reset_peak(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "5", 1), 1);
	close(fd);
	return status_kib("VmRSS");
}

static void *drain(void *arg)
{
	unsigned char buf[65536];

	(void)arg;
	while (!atomic_load(&stop_drain)) {
		struct pollfd p[NREAL];
		int i, n = 0, idx[NREAL];

		for (i = 0; i < NREAL; i++)
			if (drain_fd[i] >= 0) {
				p[n].fd = drain_fd[i];
				p[n].events = POLLIN;
				idx[n++] = i;
			}
		if (poll(p, (nfds_t)n, 50) <= 0)
			continue;
		for (i = 0; i < n; i++) {
			ssize_t r, k;

			if (!(p[i].revents & POLLIN))
				continue;
			r = read(p[i].fd, buf, sizeof(buf));
			for (k = 0; k < r; k++)
				if (buf[k] != FILL)
					atomic_store(&bad_byte, 1);
			if (r > 0)
				atomic_fetch_add(&received[idx[i]], (unsigned long long)r);
		}
	}
	return NULL;
}

static bool is_open(int fd)
{
	return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}

static int setup(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	struct rlimit rl;
	int sv[2], lfd, i;
	long long nofile;
	const long long cand[] = { 0, 1, (1 << 22) - 1, 1 << 22, 1 << 24, 1 << 26, 1 << 30,
				   INT_MAX - 1, INT_MAX };

	(void)state;
	use_test_engine();
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	real[R_NULL] = open("/dev/null", O_WRONLY | O_CLOEXEC);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	real[R_TCP] = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(real[R_TCP], (struct sockaddr *)&a, sizeof(a)), 0);
	drain_fd[R_TCP] = accept(lfd, NULL, NULL);
	close(lfd);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	real[R_UNIX] = sv[0];
	drain_fd[R_UNIX] = sv[1];
	assert_int_equal(pipe(sv), 0);
	real[R_PIPE] = sv[1];
	drain_fd[R_PIPE] = sv[0];
	/* UDP to a local socket nobody reads: it drops, the sender succeeds */
	udp_rx = socket(AF_INET, SOCK_DGRAM, 0);
	a.sin_port = 0;
	assert_int_equal(bind(udp_rx, (struct sockaddr *)&a, sizeof(a)), 0);
	alen = sizeof(a);
	assert_int_equal(getsockname(udp_rx, (struct sockaddr *)&a, &alen), 0);
	real[R_UDP] = socket(AF_INET, SOCK_DGRAM, 0);
	assert_int_equal(connect(real[R_UDP], (struct sockaddr *)&a, sizeof(a)), 0);
	for (i = 0; i < NREAL; i++)
		assert_true(real[i] >= 0);
	assert_int_equal(pthread_create(&drainer, NULL, drain, NULL), 0);

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	nofile = rl.rlim_cur > INT_MAX - 2 ? INT_MAX - 2 : (long long)rl.rlim_cur;
	for (i = 0; i < (int)(sizeof(cand) / sizeof(cand[0])); i++) {
		long long fd = cand[i] == 0 ? nofile : cand[i] == 1 ? nofile + 1 : cand[i];

		if (nbad && fd <= bad[nbad - 1])
			continue; /* keep them increasing: the smallest risk first */
		assert_false(is_open((int)fd));
		bad[nbad++] = (int)fd;
	}
	bad[nbad++] = -1;
	bad[nbad++] = -2;
	bad[nbad++] = -1000000;
	bad[nbad++] = INT_MIN;
	return 0;
}

static int teardown(void **state)
{
	int i;

	(void)state;
	atomic_store(&stop_drain, 1);
	pthread_join(drainer, NULL);
	for (i = 0; i < NREAL; i++) {
		close(real[i]);
		if (drain_fd[i] >= 0)
			close(drain_fd[i]);
	}
	close(udp_rx);
	return 0;
}

static int real_index(int fd)
{
	int i;

	for (i = 0; i < NREAL; i++)
		if (real[i] == fd)
			return i;
	return -1;
}

/* One writevv call, checked against writev's answer for every target. */
static void check_call(const int *fds, int n, const struct iovec *iov, int iovcnt, size_t total)
{
	size_t rets[16];
	int errs[16], i, full = 0, r;

	assert_true(n <= 16);
	r = writevv(fds, n, iov, iovcnt, rets, errs);
	for (i = 0; i < n; i++) {
		int k = real_index(fds[i]);

		if (k >= 0) {
			if (errs[i] != 0 || rets[i] != total)
				FAIL("fd %d (kind %d): %zd, errno %d; writev: %zu", fds[i], k,
					 (ssize_t)rets[i], errs[i], total);
			atomic_fetch_add(&sent[k], total);
			full++;
		} else if (rets[i] != (size_t)-1 || errs[i] != EBADF) {
			FAIL("fd %d: %zd, errno %d; writev: EBADF", fds[i], (ssize_t)rets[i], errs[i]);
		}
	}
	if (r != full)
		FAIL("writevv returned %d, %d targets took everything", r, full);
}

/* Everything the calls reported written has arrived, and only that. */
static void check_received(void)
{
	int i, waited;

	for (i = 0; i < NREAL; i++) {
		if (drain_fd[i] < 0)
			continue;
		for (waited = 0; waited < 10000 && atomic_load(&received[i]) < atomic_load(&sent[i]);
		     waited += 10)
			usleep(10000);
		assert_int_equal(atomic_load(&received[i]), atomic_load(&sent[i]));
	}
	assert_int_equal(atomic_load(&bad_byte), 0);
}

static unsigned char payload[8192];

/* The shapes of call the tests make; the warm-up makes each of them with
 * real descriptors only, so that every engine's fixed state is set up. */
static void calls_with(int b, int len_a, int len_b)
{
	struct iovec one = { payload, (size_t)len_a };
	struct iovec two[2] = { { payload, (size_t)len_a }, { payload, (size_t)len_b } };
	int f1[1] = { b };
	int f3[3] = { real[R_TCP], b, real[R_NULL] };
	int f8[8] = { b, real[R_UNIX], b, real[R_PIPE], real[R_TCP], b, real[R_UDP], b };

	check_call(f1, 1, &one, 1, one.iov_len);
	check_call(f3, 3, &one, 1, one.iov_len);
	check_call(f8, 8, two, 2, (size_t)(len_a + len_b));
	check_call(f8, 8, &one, 1, one.iov_len);
}

static void warm_up(void)
{
	int i;

	for (i = 0; i < 20; i++) {
		calls_with(real[R_NULL], 100, 50);
		calls_with(real[R_UDP], 3000, 1000);
	}
}

/* The bound on growth for 'threads' new threads' fixed state plus calls. */
static long bound_kib(int threads)
{
	const char *arena = getenv("WRITEVV_ZC_ARENA");
	long zc = arena && *arena ? (long)(strtoull(arena, NULL, 0) / KIB) : 2048;
	int e = test_engine();

	if (e != WRITEVV_MODE_ZEROCOPY && e != WRITEVV_MODE_DEFAULT)
		zc = 0;
	/* the calling thread's own buffer counts too: the default mode
	 * unpins it while its receivers are local, and pins it again to check */
	return SLACK_KIB + zc + threads * (THREAD_FIXED_KIB + zc);
}

/* Calls with each bad number in turn, each time checking the peak. */
static void bad_numbers(long base, long bound, const char *who)
{
	int i, k;

	for (i = 0; i < nbad && !blew; i++) {
		long grew;

		for (k = 0; k < 10; k++) {
			calls_with(bad[i], 100, 50);
			calls_with(bad[i], 3000, 1000);
		}
		grew = status_kib("VmHWM") - base;
		if (grew >= bound) {
			blew = true;
			FAIL("%s: fd %d: peak RSS grew %ld KiB (bound %ld KiB)", who, bad[i], grew,
				 bound);
		}
	}
}

static void test_bad_numbers(void **state)
{
	long base;

	(void)state;
	warm_up();
	base = reset_peak();
	bad_numbers(base, bound_kib(0), "one thread");
	printf("one thread: %d numbers from %d to %d: peak RSS +%ld KiB (bound %ld KiB)\n", nbad,
	       bad[nbad - 1], bad[nbad - 5], status_kib("VmHWM") - base, bound_kib(0));
	check_received();
}

static void *thread_main(void *arg)
{
	long base = *(long *)arg;

	in_worker = true;
	warm_up();
	bad_numbers(base, bound_kib(NTHREADS), "threads");
	return NULL;
}

static void test_many_threads(void **state)
{
	pthread_t t[NTHREADS];
	long base;
	int i;

	(void)state;
	if (blew)
		fail_msg("an earlier case exceeded its bound");
	base = reset_peak();
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, &base), 0);
	for (i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	printf("%d threads: peak RSS +%ld KiB (bound %ld KiB)\n", NTHREADS,
	       status_kib("VmHWM") - base, bound_kib(NTHREADS));
	assert_int_equal(atomic_load(&worker_failures), 0);
	assert_false(blew);
	assert_true(status_kib("VmHWM") - base < bound_kib(NTHREADS));
	check_received();
}

static void test_random_calls(void **state)
{
	const char *s = getenv("WVV_MEMORY_CALLS");
	long ncalls = s && *s ? atol(s) : 1000000, c;
	unsigned seed = 12345;
	long base, grew;

	(void)state;
	if (blew)
		fail_msg("an earlier case exceeded its bound");
	base = reset_peak();
	for (c = 0; c < ncalls; c++) {
		int fds[4], n = 1 + (int)(rand_r(&seed) % 4), i;
		size_t len = 1 + rand_r(&seed) % 64, len2 = rand_r(&seed) % 3;
		struct iovec iov[2] = { { payload, len }, { payload, len2 } };

		for (i = 0; i < n; i++) {
			unsigned pick = rand_r(&seed) % (unsigned)(NREAL + nbad);

			fds[i] = pick < NREAL ? real[pick] : bad[pick - NREAL];
		}
		check_call(fds, n, iov, len2 ? 2 : 1, len + len2);
		if (c % 65536 == 0 && status_kib("VmHWM") - base >= bound_kib(0))
			break;
	}
	grew = status_kib("VmHWM") - base;
	printf("%ld random calls: peak RSS +%ld KiB (bound %ld KiB)\n", c, grew, bound_kib(0));
	assert_true(grew < bound_kib(0));
	check_received();
}

/*
 * Lengths far beyond the memory behind them: iov_len 2^40 from a
 * PROT_NONE page, or from one readable page before it. writev answers at
 * once (EFAULT, what a pipe takes of the readable page, or /dev/null's
 * MAX_RW_COUNT); so must writevv, without a plan sized by the length.
 */
static void test_huge_lengths(void **state)
{
	unsigned char *m;
	long base, grew;
	int round, k, j;

	(void)state;
	if (blew)
		fail_msg("an earlier case exceeded its bound");
#ifdef UNDER_ASAN
	/* ASan's writev checks the 2 GiB /dev/null reports as read, which may
	 * run into its own redzones: this case runs in the plain build only. */
	skip();
#endif
	m = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	memset(m, FILL, 4096);
	assert_int_equal(mprotect(m + 4096, 4096, PROT_NONE), 0);
	base = reset_peak();
	for (round = 0; round < 4; round++) {
		struct iovec iov[2] = { { m + 4096 * (1 - round % 2), (size_t)1 << 40 },
					{ payload, round < 2 ? 0 : 10 } };
		int fds[NREAL + 2], n = 0, errs[NREAL + 2];
		size_t rets[NREAL + 2];

		for (k = 0; k < NREAL; k++)
			fds[n++] = real[k];
		fds[n++] = bad[0];
		fds[n++] = INT_MAX;
		writevv(fds, n, iov, 2, rets, errs);
		for (j = 0; j < n; j++) {
			ssize_t w = writev(fds[j], iov, 2);
			int e = w < 0 ? errno : 0;

			if (rets[j] != (w < 0 ? (size_t)-1 : (size_t)w) || errs[j] != e)
				fail_msg("iov_len 2^40, fd %d: writevv %zd (errno %d), writev %zd (errno %d)",
					 fds[j], (ssize_t)rets[j], errs[j], w, e);
			k = real_index(fds[j]);
			if (k >= 0 && w > 0)
				atomic_fetch_add(&sent[k], 2 * (unsigned long long)w);
		}
	}
	grew = status_kib("VmHWM") - base;
	printf("iov_len 2^40 over a PROT_NONE page: peak RSS +%ld KiB (bound %ld KiB)\n", grew,
	       bound_kib(0));
	assert_true(grew < bound_kib(0));
	check_received();
	munmap(m, 2 * 4096);
}

#ifdef UNDER_ASAN
/* ASan keeps freed blocks in a quarantine (256 MiB) and the stack of every
 * allocation site it sees (megabytes as new paths run): both would be
 * counted as the library's. This test measures memory, so it has neither. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=0:thread_local_quarantine_size_kb=0:malloc_context_size=0";
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_numbers),
		cmocka_unit_test(test_many_threads),
		cmocka_unit_test(test_random_calls),
		cmocka_unit_test(test_huge_lengths),
	};

	memset(payload, FILL, sizeof(payload));
	return cmocka_run_group_tests(tests, setup, teardown);
}
