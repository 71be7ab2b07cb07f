/* SPDX-License-Identifier: MIT */
/*
 * The zero-copy engine: payloads copied once into a registered buffer and
 * sent with SEND_ZC. A payload's place in the buffer may be reused only
 * after every socket has let go of its pages; reused too early, bytes
 * still queued for a slow receiver would change. Sockets without
 * zero-copy support get writev. Linked with the library's objects to read
 * the engine's per-thread counters.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/sockios.h> /* SIOCOUTQNSD */
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <liburing.h>

#include "engine_choice.h"
#include "helpers.h"
#include "call.h"
#include "internal.h"
#include "uring_ring.h"
#include "writevv.h"

#define ARENA 65536            /* WRITEVV_ZC_ARENA for this test: 16 KiB payloads at most */
#define PAYLOAD (ARENA / 4)
/* Only a guard against a hang: what is waited for below is the kernel's
 * doing (a receiver's ACK can be delayed, more so on a loaded machine),
 * never a stretch of time. */
#define GUARD_MS 20000

/*
 * Wait until this thread's ring holds the notifications of all its
 * zero-copy sends that calls have not taken yet, untaken: they come once
 * the receivers' ACKs have freed the sockets' references, and the next
 * call takes them. (Between calls the ring holds nothing else; at most as
 * many as it has room for: more would wait in the kernel's overflow list.)
 */
static void await_notifications(void)
{
	struct wvv_zc_counters c;
	struct wvv_ring *r;
	int err, waited = 0;
	unsigned n;

	wvv_zc_counters(&c);
	n = (unsigned)(c.sends - c.notifs);
	r = wvv_ring_get(&err);
	assert_non_null(r);
	assert_true(n <= r->ring.cq.ring_entries);
	for (;;) {
		io_uring_get_events(&r->ring); /* runs the deferred completions */
		if (io_uring_cq_ready(&r->ring) >= n)
			return;
		if (waited++ >= GUARD_MS) {
			fprintf(stderr, "%u of %u notifications, then none\n",
				io_uring_cq_ready(&r->ring), n);
			fail();
		}
		usleep(1000);
	}
}

static void write_call(const int *fds, int n, unsigned call, size_t len, size_t *rets, int *errs)
{
	unsigned char *buf = malloc(len);
	struct iovec iov[3];

	pattern_fill(buf, len, call, 0);
	/* three pieces, one empty: the engine gathers them into its buffer */
	iov[0] = (struct iovec){ buf, len / 3 };
	iov[1] = (struct iovec){ NULL, 0 };
	iov[2] = (struct iovec){ buf + len / 3, len - len / 3 };
	assert_true(writevv(fds, n, iov, 3, rets, errs) >= 0);
	free(buf);
}

/*
 * Receivers stop reading, non-blocking targets fill up: the buffer fills
 * with payloads whose bytes wait unsent, and later calls must not take
 * their place. Every byte a call reported written must then arrive intact.
 */
static void test_payload_kept_until_notified(void **state)
{
	enum { N = 4, CALLS = 60 };
	struct tcp_fleet f;
	struct wvv_zc_counters before, after;
	unsigned char *want[N];
	size_t want_len[N] = { 0 }, rets[N];
	int errs[N], i, call, sndbuf = 1 << 20;

	(void)state;
	must_set_mode(WRITEVV_MODE_ZEROCOPY);
	fleet_open(&f, N, 1);
	for (i = 0; i < N; i++) {
		want[i] = malloc((size_t)CALLS * PAYLOAD);
		fcntl(f.tx[i], F_SETFL, fcntl(f.tx[i], F_GETFL) | O_NONBLOCK);
		setsockopt(f.tx[i], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		fleet_stop_reading(&f, i);
	}
	wvv_zc_counters(&before);
	for (call = 0; call < CALLS; call++) {
		write_call(f.tx, N, (unsigned)call, PAYLOAD, rets, errs);
		for (i = 0; i < N; i++) {
			if (errs[i]) {
				assert_int_equal(errs[i], EAGAIN);
				continue;
			}
			assert_true(rets[i] <= PAYLOAD);
			pattern_fill(want[i] + want_len[i], rets[i], (unsigned)call, 0);
			want_len[i] += rets[i];
		}
	}
	wvv_zc_counters(&after);
	/* the buffer really was full of unsent payloads at some point */
	assert_true(after.calls - before.calls >= ARENA / PAYLOAD);
	assert_true(after.no_room > before.no_room);
	for (i = 0; i < N; i++) {
		assert_true(want_len[i] > 2 * (size_t)ARENA);
		fleet_start_reading(&f, i);
	}
	for (i = 0; i < N; i++) {
		assert_int_equal(fleet_wait(&f, i, want_len[i], 20000), 0);
		assert_int_equal(f.got_len[i], want_len[i]);
		assert_memory_equal(f.got[i], want[i], want_len[i]);
		free(want[i]);
	}
	fleet_close(&f);
}

/* Draining receivers: every target of a zero-copy call is sent zero-copy,
 * and every send's notification comes back, so the buffer is reused (its
 * places run out only while acknowledgements are pending: then a call is
 * copied per target instead). */
static void test_every_send_notified(void **state)
{
	enum { N = 8, CALLS = 200 };
	struct tcp_fleet f;
	struct wvv_zc_counters before, after;
	size_t rets[N], len = 8192;
	uint64_t sent;
	int errs[N], i, call;

	(void)state;
	must_set_mode(WRITEVV_MODE_ZEROCOPY);
	fleet_open(&f, N, 1);
	wvv_zc_counters(&before);
	for (call = 0; call < CALLS; call++) {
		write_call(f.tx, N, (unsigned)call, len, rets, errs);
		for (i = 0; i < N; i++) {
			assert_int_equal(errs[i], 0);
			assert_int_equal(rets[i], len);
		}
	}
	for (i = 0; i < N; i++) {
		assert_int_equal(fleet_wait(&f, i, len * CALLS, 20000), 0);
		for (call = 0; call < CALLS; call++)
			assert_int_equal(pattern_check(f.got[i] + (size_t)call * len, len,
						       (unsigned)call, 0), 0);
	}
	wvv_zc_counters(&after);
	assert_int_equal(after.sends - before.sends, (after.calls - before.calls) * N);
	assert_int_equal(after.calls - before.calls + after.no_room - before.no_room, CALLS);
	/* the buffer holds 8 such payloads: more calls means places were reused */
	assert_true(after.calls - before.calls > ARENA / len);
	/* every send's notification comes (after the receivers' delayed
	 * acknowledgements too), and the next call takes all that came */
	sent = after.sends - before.sends;
	await_notifications();
	write_call(f.tx, 1, CALLS, len, rets, errs);
	wvv_zc_counters(&after);
	assert_true(after.notifs - before.notifs >= sent);
	fleet_close(&f);
}

/*
 * A TCP socket that was ever in a sockmap has lost zero-copy support for
 * good, and AF_UNIX never had it: SEND_ZC refuses (EOPNOTSUPP) and the
 * engine writes them with writev in the same call.
 */
static void test_sockets_without_zerocopy(void **state)
{
	struct tcp_fleet f;
	struct wvv_zc_counters c0, c1, c2;
	int map, key = 0, us[2], fds[3], errs[3], call;
	size_t rets[3], len = 10000;
	unsigned char got[10000];

	(void)state;
	must_set_mode(WRITEVV_MODE_ZEROCOPY);
	fleet_open(&f, 2, 1);
	map = bpf_map_create(BPF_MAP_TYPE_SOCKMAP, "wvv_test_zc", sizeof(int), sizeof(int), 1, NULL);
	assert_true(map >= 0);
	assert_int_equal(bpf_map_update_elem(map, &key, &f.tx[1], BPF_ANY), 0);
	assert_int_equal(bpf_map_delete_elem(map, &key), 0);
	close(map);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, us), 0);
	fds[0] = f.tx[0];
	fds[1] = f.tx[1];
	fds[2] = us[0];
	wvv_zc_counters(&c0);
	for (call = 0; call < 2; call++) {
		write_call(fds, 3, (unsigned)call, len, rets, errs);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(errs[i], 0);
			assert_int_equal(rets[i], len);
		}
		assert_int_equal(fleet_wait(&f, 0, len * (call + 1), 10000), 0);
		assert_int_equal(fleet_wait(&f, 1, len * (call + 1), 10000), 0);
		assert_int_equal(pattern_check(f.got[0] + len * call, len, (unsigned)call, 0), 0);
		assert_int_equal(pattern_check(f.got[1] + len * call, len, (unsigned)call, 0), 0);
		assert_int_equal(recv(us[1], got, len, MSG_WAITALL), (ssize_t)len);
		assert_int_equal(pattern_check(got, len, (unsigned)call, 0), 0);
		wvv_zc_counters(call ? &c2 : &c1);
	}
	/* the first call: two refusals; the second sends those two copies */
	assert_int_equal(c1.refused - c0.refused, 2);
	assert_int_equal(c2.refused - c1.refused, 0);
	assert_int_equal(c2.calls - c1.calls, 1);
	close(us[0]);
	close(us[1]);
	fleet_close(&f);
}

/* A payload bigger than a quarter of the buffer is copied per target
 * (io_uring), in the same call. */
static void test_payload_too_big(void **state)
{
	struct tcp_fleet f;
	struct wvv_zc_counters before, after;
	size_t rets[2], len = PAYLOAD + 1;
	int errs[2];

	(void)state;
	must_set_mode(WRITEVV_MODE_ZEROCOPY);
	fleet_open(&f, 2, 1);
	wvv_zc_counters(&before);
	write_call(f.tx, 2, 3, len, rets, errs);
	wvv_zc_counters(&after);
	assert_int_equal(after.calls, before.calls);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(errs[i], 0);
		assert_int_equal(rets[i], len);
		assert_int_equal(fleet_wait(&f, i, len, 10000), 0);
		assert_int_equal(pattern_check(f.got[i], len, 3, 0), 0);
	}
	fleet_close(&f);
}

/* Without CAP_IPC_LOCK the buffer's pinned pages count against
 * RLIMIT_MEMLOCK: too low a limit makes zero-copy mode fail with ENOMEM, and
 * the default mode does without it, delivering everything. */
static int unprivileged_child(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct cap[_LINUX_CAPABILITY_U32S_3];
	struct rlimit rl = { 65536, 65536 };
	struct wvv_zc_counters zc;
	struct tcp_fleet f;
	size_t rets[4], len = 8192;
	int errs[4], mode = WRITEVV_MODE_ZEROCOPY, i, k;

	if (syscall(SYS_capget, &hdr, cap))
		return 10;
	cap[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	cap[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
	if (syscall(SYS_capset, &hdr, cap) || setrlimit(RLIMIT_MEMLOCK, &rl))
		return 11;
	setenv("WRITEVV_ZC_ARENA", "2097152", 1);
	if (writevv_control(WRITEVV_SETMODE, &mode) == 0 || errno != ENOMEM)
		return 12;
	must_set_mode(WRITEVV_MODE_DEFAULT);
	fleet_open(&f, 4, 1);
	for (k = 0; k < 20; k++) {
		write_call(f.tx, 4, (unsigned)k, len, rets, errs);
		for (i = 0; i < 4; i++)
			if (errs[i] || rets[i] != len)
				return 13;
	}
	for (i = 0; i < 4; i++)
		if (fleet_wait(&f, i, 20 * len, 10000) ||
		    pattern_check(f.got[i] + 19 * len, len, 19, 0))
			return 14;
	wvv_zc_counters(&zc);
	if (zc.calls || zc.registrations)
		return 15;
	fleet_close(&f);
	return 0;
}

static void test_memlock_limit(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(unprivileged_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Run the engine directly, as the default mode does (skip_copied). */
static void zc_call(struct tcp_fleet *f, unsigned call, size_t len, bool skip_copied)
{
	unsigned char *buf = malloc(len);
	struct iovec iov = { buf, len };
	size_t rets[8];
	int errs[8], i;
	struct wvv_call c = { .fds = f->tx, .fdcnt = f->n, .iov = &iov, .iovcnt = 1,
			      .total = len, .returns = rets, .errors = errs };

	assert_true(f->n <= 8);
	pattern_fill(buf, len, call, 0);
	assert_int_equal(wvv_zc_run(&c, skip_copied), 0);
	for (i = 0; i < f->n; i++) {
		assert_int_equal(errs[i], 0);
		assert_int_equal(rets[i], len);
	}
	free(buf);
}

/*
 * To a receiver on this host the kernel copies zero-copy data anyway, and
 * says so in the notification. The default mode then sends that target
 * plain copies; the forced zero-copy mode keeps sending zero-copy.
 */
static void test_copied_targets_get_copies(void **state)
{
	enum { N = 4 };
	struct tcp_fleet f;
	struct wvv_zc_counters c0, c1, c2, c3;
	size_t len = 4000;
	int i;

	(void)state;
	fleet_open(&f, N, 1);
	wvv_zc_counters(&c0);
	zc_call(&f, 0, len, false);
	await_notifications(); /* the receivers acknowledged */
	zc_call(&f, 1, len, false); /* takes the notifications */
	wvv_zc_counters(&c1);
	assert_int_equal(c1.sends - c0.sends, 2 * N);
	assert_true(c1.copied - c0.copied >= N); /* loopback: copied */
	zc_call(&f, 2, len, true);
	wvv_zc_counters(&c2);
	assert_int_equal(c2.sends, c1.sends); /* plain copies this time */
	zc_call(&f, 3, len, false);
	wvv_zc_counters(&c3);
	assert_int_equal(c3.sends - c2.sends, N); /* forced: zero-copy again */
	for (i = 0; i < N; i++) {
		assert_int_equal(fleet_wait(&f, i, 4 * len, 10000), 0);
		for (unsigned k = 0; k < 4; k++)
			assert_int_equal(pattern_check(f.got[i] + k * len, len, k, 0), 0);
	}
	fleet_close(&f);
}

struct default_run {
	struct tcp_fleet *f;
	struct wvv_zc_counters warm, steady, end;
	bool copied_after_warm;
	unsigned ncalls; /* calls made, all of 8192 bytes */
};

static void default_calls(struct tcp_fleet *f, unsigned first, int n, size_t len)
{
	size_t rets[8];
	int errs[8];

	for (int k = 0; k < n; k++)
		write_call(f->tx, f->n, first + (unsigned)k, len, rets, errs);
}

static void *default_thread(void *arg)
{
	struct default_run *r = arg;
	struct wvv_zc_counters c0, prev, now;
	unsigned call = 300;
	int since = -1; /* calls since the recheck's notifications came */

	wvv_zc_counters(&c0); /* a new thread: its own ring, buffer and choices */
	default_calls(r->f, 0, 300, 8192);
	wvv_zc_counters(&r->warm);
	r->copied_after_warm = wvv_zc_mostly_copied();
	/* 256 calls: one rechecks zero-copy. Once its payload is released
	 * (its notifications came with the ACKs), 8 calls later the buffer is
	 * unpinned (idle calls look for notifications once in 8): followed
	 * past the 256 where the recheck came late, never as far as the next
	 * one, 256 calls after it. */
	prev = r->warm;
	while (call < 300 + 256 || (since >= 0 && since < 8)) {
		default_calls(r->f, call++, 1, 8192);
		if (since >= 0)
			since++;
		wvv_zc_counters(&now);
		if (call == 300 + 256)
			r->steady = now;
		if (now.calls != prev.calls) { /* the recheck */
			await_notifications();
			since = 0;
		}
		prev = now;
	}
	r->end = now;
	r->ncalls = call;
	r->steady.calls -= r->warm.calls;
	r->steady.sends -= r->warm.sends;
	r->warm.calls -= c0.calls;
	return NULL;
}

/*
 * The default mode tries zero-copy, learns that the kernel copies it for
 * these (local) receivers, then leaves it out of its choice but for one
 * call in 256 that tries every target again.
 */
static void test_default_leaves_out_copied_zerocopy(void **state)
{
	enum { N = 4 };
	struct tcp_fleet f;
	struct default_run r = { .f = &f };
	pthread_t t;
	int i;

	(void)state;
	must_set_mode(WRITEVV_MODE_DEFAULT);
	fleet_open(&f, N, 1);
	assert_int_equal(pthread_create(&t, NULL, default_thread, &r), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(r.warm.calls >= WVV_CHOICE_WARM + 1); /* warmed up */
	assert_true(r.warm.calls <= 40);
	assert_true(r.copied_after_warm);
	assert_int_equal(r.steady.calls, 1);
	assert_int_equal(r.steady.sends, N);
	/* pinned for the warm-up and for the rechecks only: unpinned in between
	 * (so registered again for the recheck), and now */
	assert_int_equal(r.end.held, 0);
	assert_true(r.end.registrations >= 2);
	for (i = 0; i < N; i++)
		assert_int_equal(fleet_wait(&f, i, (size_t)r.ncalls * 8192, 20000), 0);
	for (i = 0; i < N; i++)
		for (unsigned k = 0; k < r.ncalls; k += 37)
			assert_int_equal(pattern_check(f.got[i] + k * 8192, 8192, k, 0), 0);
	fleet_close(&f);
}

struct resume_later {
	struct tcp_fleet *f;
	pthread_t signal_to;
	pid_t tid;           /* signal_to's */
	bool with_signal;
	_Atomic bool returned; /* its call returned */
};

/* The system call thread tid sleeps in (its number, and its first three
 * arguments in a), or -1 while it runs or sleeps in none. */
static long blocked_in(pid_t tid, unsigned long a[3])
{
	char path[64], line[256];
	long nr = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	fp = fopen(path, "r");
	if (!fp)
		return -1;
	if (!fgets(line, sizeof(line), fp) ||
	    sscanf(line, "%ld %lx %lx %lx", &nr, &a[0], &a[1], &a[2]) != 4)
		nr = -1; /* "running" */
	fclose(fp);
	return nr;
}

/* Is thread tid waiting for completions of its ring, submitting nothing
 * (io_uring_enter(fd, 0, min_complete >= 1, ...))? In this call, only the
 * finishing sends are waited for so: the first batch's sends never block. */
static bool waits_in_ring(pid_t tid)
{
	unsigned long a[3];

	return blocked_in(tid, a) == SYS_io_uring_enter && a[1] == 0 && a[2] >= 1;
}

/* Step on when cond holds; after GUARD_MS (a hang) anyway, and the caller's
 * checks fail. */
static void step_when(bool (*cond)(struct resume_later *), struct resume_later *r,
		      const char *what)
{
	for (int waited = 0; !cond(r); waited++) {
		if (waited >= GUARD_MS) {
			fprintf(stderr, "never %s\n", what);
			return;
		}
		usleep(1000);
	}
}

static bool caller_waits_for_finishing_sends(struct resume_later *r)
{
	return atomic_load(&r->returned) || waits_in_ring(r->tid);
}

/* Cancelled, the call finishes as writev would: blocked in a system call
 * that is not the ring's, or returned. */
static bool caller_past_the_ring(struct resume_later *r)
{
	unsigned long a[3];
	long nr = blocked_in(r->tid, a);

	return atomic_load(&r->returned) || (nr >= 0 && nr != SYS_io_uring_enter);
}

/* Signal the caller once it waits for its finishing sends (if asked), and
 * let the receivers read only then: whatever the machine's load, the
 * signal comes while the sends wait, and they cannot complete before. */
static void *resume_later(void *arg)
{
	struct resume_later *r = arg;

	step_when(caller_waits_for_finishing_sends, r, "waiting for the finishing sends");
	if (r->with_signal) {
		pthread_kill(r->signal_to, SIGUSR1);
		step_when(caller_past_the_ring, r, "past the ring after the signal");
	}
	for (int i = 0; i < r->f->n; i++)
		fleet_start_reading(r->f, i);
	return NULL;
}

static int in_flight(int fd)
{
	int outq = -1, unsent = -1;

	/* in this order: a send between the two can only make it more */
	assert_int_equal(ioctl(fd, SIOCOUTQ, &outq), 0);
	assert_int_equal(ioctl(fd, SIOCOUTQNSD, &unsent), 0);
	return outq - unsent;
}

/*
 * Fill fd until it takes nothing more, also once every byte it sent has
 * been acknowledged (what was in flight has moved to the receiver, which
 * reads nothing, and the window is closed): room in a send queue comes
 * from acknowledgements only, and then none is coming. Returns the bytes
 * of fill written in all (pre on entry).
 */
static size_t fill_until_full(int fd, const unsigned char *fill, size_t fill_len, size_t pre)
{
	int fl = fcntl(fd, F_GETFL), waited;
	size_t took;

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	do {
		ssize_t w;

		took = 0;
		while ((w = send(fd, fill, fill_len - pre % fill_len, 0)) > 0) {
			pre += (size_t)w;
			took += (size_t)w;
		}
		assert_int_equal(errno, EAGAIN);
		for (waited = 0; in_flight(fd) != 0; waited++) {
			if (waited >= GUARD_MS) {
				fprintf(stderr, "fd %d: %d bytes in flight, never acknowledged\n", fd,
					in_flight(fd));
				fail();
			}
			usleep(1000);
		}
	} while (took);
	fcntl(fd, F_SETFL, fl);
	return pre;
}

static void on_usr1(int sig)
{
	(void)sig;
}

/*
 * Blocking targets that take only part of a payload get the rest
 * zero-copy through the ring (MSG_WAITALL), all waiting at once; a signal
 * while they wait cancels them, and each target then ends as a blocking
 * writev interrupted by that signal would: with what it sent, and the rest
 * written by writev. Either way the bytes reported written arrive intact.
 */
static void short_blocking_targets(bool with_signal)
{
	enum { N = 4 };
	struct tcp_fleet f;
	struct wvv_zc_counters before, after;
	struct resume_later r = { .f = &f, .signal_to = pthread_self(),
				  .tid = (pid_t)syscall(SYS_gettid), .with_signal = with_signal };
	struct sigaction sa = { .sa_handler = on_usr1 }, old;
	size_t rets[N], len = PAYLOAD, pre[N] = { 0 };
	unsigned char fill[4096];
	int errs[N], i;
	pthread_t t;

	must_set_mode(WRITEVV_MODE_ZEROCOPY);
	fleet_open(&f, N, 1);
	/* earlier tests' payloads released: the call finds room for this one */
	await_notifications();
	pattern_fill(fill, sizeof(fill), 100, 0);
	for (i = 0; i < N; i++)
		fleet_stop_reading(&f, i);
	for (i = 0; i < N; i++)
		pre[i] = fill_until_full(f.tx[i], fill, sizeof(fill), 0);
	sigaction(SIGUSR1, &sa, &old); /* no SA_RESTART: a blocked writev returns */
	wvv_zc_counters(&before);
	assert_int_equal(pthread_create(&t, NULL, resume_later, &r), 0);
	write_call(f.tx, N, 9, len, rets, errs);
	atomic_store(&r.returned, true);
	assert_int_equal(pthread_join(t, NULL), 0);
	sigaction(SIGUSR1, &old, NULL);
	wvv_zc_counters(&after);
	assert_int_equal(after.calls - before.calls, 1);
	assert_true(after.finishes - before.finishes >= 1);
	assert_int_equal(after.cancels - before.cancels, with_signal ? 1 : 0);
	for (i = 0; i < N; i++) {
		size_t got = errs[i] ? 0 : rets[i];

		if (!with_signal) {
			assert_int_equal(errs[i], 0);
			assert_int_equal(rets[i], len);
		} else if (errs[i]) {
			assert_int_equal(errs[i], EINTR);
		}
		assert_int_equal(fleet_wait(&f, i, pre[i] + got, 10000), 0);
		assert_int_equal(pattern_check(f.got[i] + pre[i], got, 9, 0), 0);
		usleep(50000);
		assert_int_equal(f.got_len[i], pre[i] + got); /* and nothing more */
	}
	fleet_close(&f);
}

static void test_short_blocking_targets_finish_zero_copy(void **state)
{
	(void)state;
	short_blocking_targets(false);
}

static void test_signal_cancels_finishing_sends(void **state)
{
	(void)state;
	short_blocking_targets(true);
}

int main(void)
{
	/* First: fd numbers that refused zero-copy (test_sockets_without_zerocopy)
	 * get copies for a while, whatever socket has the number next. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copied_targets_get_copies),
		cmocka_unit_test(test_payload_kept_until_notified),
		cmocka_unit_test(test_short_blocking_targets_finish_zero_copy),
		cmocka_unit_test(test_signal_cancels_finishing_sends),
		cmocka_unit_test(test_every_send_notified),
		cmocka_unit_test(test_sockets_without_zerocopy),
		cmocka_unit_test(test_payload_too_big),
		cmocka_unit_test(test_memlock_limit),

		cmocka_unit_test(test_default_leaves_out_copied_zerocopy),
	};

	/* before the first call makes this thread's buffer */
	setenv("WRITEVV_ZC_ARENA", "65536", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
