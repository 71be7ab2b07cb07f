/* SPDX-License-Identifier: MIT */
/*
 * Coverage-guided differential fuzz target (libFuzzer): each input is
 * decoded into up to four calls, each with a mode, a fault applied before
 * it, a descriptor set and iovec shapes. Every call runs through writevv on
 * one pool of real descriptors and through the plain writev loop on an
 * identical twin pool; the return value, returns[], errors[] and the bytes
 * at every receiver must agree, else abort().
 *
 * Input layout (bytes past the end read as 0):
 *   byte 0        number of calls - 1 (mod 4)
 *   per call:     mode, fault, fault slot, fdcnt selector, one byte per fd,
 *                 iovcnt selector, 5 bytes per iovec (shape, len16, off16)
 * The per-call mode byte is ignored when $WVV_FUZZ_ENGINE pins one engine.
 * See tests/fuzz/README.md.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuzz_pool.h"
#include "mode_names.h"
#include "writev_reference.h"
#include "nofile.h"
#include "writevv.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define MAX_CALLS 4
#define MAX_FDS 64
#define PAT_SIZE (1u << 20) /* the payload area, followed by a PROT_NONE page */
#define PAGE 4096u
#define NOFILE_LIMIT 1024   /* RLIMIT_NOFILE of the target (hostile numbers go just above) */
#define CLOSED_FD 680       /* between the two pools: never open */

static unsigned char *pattern; /* PAT_SIZE readable bytes */
static unsigned char *guard;   /* the PROT_NONE page right after them */
/* 2 GiB of PROT_NONE address space: where a writev of MAX_RW_COUNT bytes
 * that succeeded without reading them (/dev/null) is checked by ASan's
 * writev interceptor, which then finds clean shadow, not a neighbour's. */
static unsigned char *huge_area;
#define HUGE_AREA ((size_t)1 << 31)

/* ---- modes ------------------------------------------------------------- */

/* In this order: an input picks a mode by its index among those available. */
static const int all_modes[] = {
	WRITEVV_MODE_DEFAULT,  WRITEVV_MODE_IOURING, WRITEVV_MODE_SENDFILE,
	WRITEVV_MODE_ZEROCOPY, WRITEVV_MODE_KERNEL,  WRITEVV_MODE_USERLAND,
};
#define NMODES ((int)(sizeof(all_modes) / sizeof(all_modes[0])))
static int modes[NMODES], nmodes;

/* ---- input decoding ---------------------------------------------------- */

struct reader {
	const uint8_t *p;
	size_t n;
};

static uint8_t next8(struct reader *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static uint16_t next16(struct reader *r)
{
	uint16_t lo = next8(r);

	return (uint16_t)(lo | (uint16_t)next8(r) << 8);
}

enum fault { F_NONE, F_RESET, F_FILL, F_SHUTDOWN, F_SHUT_RD_PEER, F_CLOSE, F_FAULTS };
static const char *const fault_names[F_FAULTS] = { "none", "peer-reset", "fill-receiver",
						   "shutdown-wr", "peer-shutdown-rd", "close" };

/* A hostile descriptor number: the same number in both pools. */
/* $WVV_FUZZ_SKIP (exploration only, never in CI): "hugefd" leaves numbers
 * from 2^20 out, "badiov" unreadable iovecs, so that a run can look past a
 * defect already known. */
static int skip_hugefd, skip_badiov;

static int hostile_fd(unsigned i)
{
	static const int numbers[] = {
		-1, -2, INT_MIN, INT_MAX, INT_MAX - 1, NOFILE_LIMIT, NOFILE_LIMIT + 1,
		CLOSED_FD, 1 << 20, 1 << 26, 999,
	};
	int n = numbers[i % (sizeof(numbers) / sizeof(numbers[0]))];

	return skip_hugefd && n >= 1 << 20 ? -1 : n;
}

struct call {
	int mode;
	enum fault fault;
	int fault_slot;
	int fdcnt, fds_null;
	int sel[MAX_FDS]; /* >= 0: pool slot; < 0: -1 - hostile number index */
	int iovcnt, iov_null;
	struct iovec iov[IOV_MAX + 1];
	size_t readable; /* bytes of the payload before the first unreadable one */
	int import_fault; /* an iovec the kernel refuses before writing (access_ok) */
	size_t total;     /* sum of lengths, if it does not overflow */
	int total_overflows;
};

static struct call calls[MAX_CALLS];

/* One iovec from 5 bytes; sets *bad_at to the readable bytes of it
 * (SIZE_MAX: all of it), *import_bad if the kernel refuses it at import. */
static void decode_iov(struct reader *r, struct iovec *v, size_t *bad_at, int *import_bad)
{
	uint8_t shape = next8(r);
	uint16_t len = next16(r), off = next16(r);
	size_t l;

	*bad_at = SIZE_MAX;
	*import_bad = 0;
	switch (shape % 12) {
	default: /* 0-5: inside the payload area, overlapping others at will */
		switch ((shape / 12) % 4) {
		case 0: l = len % 64; break;
		case 1: l = len % 4096; break;
		case 2: l = len; break;
		default: l = (size_t)len * 4; break;
		}
		v->iov_len = l;
		v->iov_base = pattern + ((size_t)off * 16) % (PAT_SIZE - l + 1);
		break;
	case 6: /* NULL, length 0 */
		v->iov_base = NULL;
		v->iov_len = 0;
		break;
	case 7: /* NULL with a length */
		v->iov_base = NULL;
		v->iov_len = 1 + len % 100;
		*bad_at = 0;
		break;
	case 8: { /* runs into the PROT_NONE page after the area */
		size_t before = off % PAGE;

		v->iov_base = guard - before;
		v->iov_len = before + 1 + len % 8192;
		*bad_at = before;
		break;
	}
	case 9: /* starts in the PROT_NONE page */
		v->iov_base = guard + off % PAGE;
		v->iov_len = 1 + len % 2048;
		*bad_at = 0;
		break;
	case 10: /* never mapped: below mmap_min_addr */
		v->iov_base = (void *)(uintptr_t)(0x1000 + off % 0x8000);
		v->iov_len = 1 + len;
		*bad_at = 0;
		break;
	case 11:
		if (shape >= 200) { /* a kernel address: writev refuses it before anything */
			v->iov_base = (void *)(uintptr_t)(0xffff888000000000ull + (uintptr_t)off * PAGE);
			v->iov_len = 1 + len % 4096;
			*bad_at = 0;
			*import_bad = 1;
		} else if (shape >= 150) {
			/* total near SSIZE_MAX, over a reservation nothing can
			 * read: writev answers EFAULT, or, on /dev/null (which
			 * reads nothing), MAX_RW_COUNT where the kernel does not
			 * check the length at import (6.18 does not) */
			v->iov_base = huge_area;
			v->iov_len = (size_t)SSIZE_MAX - (len % 2);
			*bad_at = 0;
		} else { /* valid base, length 0 */
			v->iov_base = pattern + off;
			v->iov_len = 0;
		}
		break;
	}
	if (skip_badiov && (*bad_at != SIZE_MAX || *import_bad)) {
		v->iov_base = pattern;
		v->iov_len = 0;
		*bad_at = SIZE_MAX;
		*import_bad = 0;
	}
}

static int decode(const uint8_t *data, size_t size)
{
	struct reader r = { data, size };
	int ncalls = 1 + next8(&r) % MAX_CALLS, c, i;

	for (c = 0; c < ncalls; c++) {
		struct call *k = &calls[c];
		uint8_t m = next8(&r), f = next8(&r), fs = next8(&r), fc = next8(&r), ic;
		size_t sum = 0;

		k->mode = modes[m % nmodes];
		k->fault = (enum fault)(f % 10 < 5 ? F_NONE : f % 10 - 4);
		k->fault_slot = fs % NSLOTS;
		k->fds_null = 0;
		if (fc < 240)
			k->fdcnt = 1 + fc % 24;
		else if (fc < 248)
			k->fdcnt = 24 + fc % 41; /* up to MAX_FDS */
		else if (fc < 250)
			k->fdcnt = 0;
		else if (fc < 252)
			k->fdcnt = fc == 250 ? -1 : INT_MIN;
		else {
			k->fdcnt = 1 + fc % 4;
			k->fds_null = fc >= 254;
		}
		for (i = 0; i < k->fdcnt && i < MAX_FDS; i++) {
			uint8_t b = next8(&r);

			k->sel[i] = b < 224 ? b % NSLOTS : -1 - (int)(b - 224);
		}
		ic = next8(&r);
		k->iov_null = 0;
		k->readable = SIZE_MAX;
		k->import_fault = 0;
		k->total_overflows = 0;
		switch (ic % 24) {
		case 16: /* IOV_MAX one-byte iovecs */
			k->iovcnt = IOV_MAX;
			for (i = 0; i < IOV_MAX; i++) {
				k->iov[i].iov_base = pattern + (i * 7) % 4096;
				k->iov[i].iov_len = 1;
			}
			sum = IOV_MAX;
			break;
		case 17: /* one too many */
			k->iovcnt = IOV_MAX + 1;
			for (i = 0; i < IOV_MAX + 1; i++) {
				k->iov[i].iov_base = pattern + i;
				k->iov[i].iov_len = 1;
			}
			break;
		case 18:
			k->iovcnt = ic >= 128 ? -1 : INT_MIN;
			break;
		case 19: /* NULL iov with a count */
			k->iovcnt = 1 + ic % 3;
			k->iov_null = 1;
			break;
		default:
			k->iovcnt = ic % 24 < 16 ? ic % 24 : ic % 24 - 4; /* 0-15, 16-19 */
			for (i = 0; i < k->iovcnt; i++) {
				size_t bad_at;
				int import_bad;

				decode_iov(&r, &k->iov[i], &bad_at, &import_bad);
				if (import_bad)
					k->import_fault = 1;
				if (k->readable == SIZE_MAX && bad_at != SIZE_MAX)
					k->readable = sum + bad_at;
				if (k->iov[i].iov_len > (size_t)SSIZE_MAX - sum)
					k->total_overflows = 1;
				else
					sum += k->iov[i].iov_len;
			}
			break;
		}
		k->total = sum;
		if (k->import_fault)
			k->readable = 0;
	}
	return ncalls;
}

/* ---- the reference: writev_reference() (tests/writev_reference.c) ------ */

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
}

/* ---- faults between calls ---------------------------------------------- */

static void wait_error(int fd)
{
	struct pollfd pf = { fd, 0, 0 };

	poll(&pf, 1, 200); /* POLLERR/POLLHUP once the reset arrived */
}

static void fill_receiver(int p, int k)
{
	struct slot *s = &pools[p].s[k];
	int fd = pools[p].base + k, rounds = 0;
	size_t chunk = s->kind == S_UNIX_DGRAM ? 1000 : 65536;

	for (;;) {
		ssize_t r = send(fd, pattern + 12345, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r < 0 && errno == ENOTSOCK)
			r = write(fd, pattern + 12345, chunk);
		if (r <= 0 || ++rounds > 4096)
			break;
		want_append(s, pattern + 12345, (size_t)r);
	}
}

static void apply_fault(enum fault f, int k)
{
	int p;

	for (p = 0; p < 2; p++) {
		struct slot *s = &pools[p].s[k];
		int fd = pools[p].base + k;
		struct linger lg = { 1, 0 };

		if (s->tx_closed)
			continue;
		switch (f) {
		case F_NONE:
			break;
		case F_RESET: { /* the receiver goes away (TCP: with a RST) */
			int rx;

			if (s->rx < 0 || s->kind == S_UDP)
				break; /* UDP: ICMP is rate-limited, not deterministic */
			if (s->kind <= S_TCP_NB || s->kind == S_TCP_BLK2)
				setsockopt(s->rx, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			pthread_mutex_lock(&pool_lock);
			rx = s->rx;
			s->rx = -1;
			close(rx); /* (which takes it out of the drain thread's epoll) */
			/* A receiver closed with a RST discards what it had not read
			 * (e.g. an earlier fill-receiver's bytes): nothing more can
			 * arrive, so only what was read is still expected. */
			s->want_len = s->got_len;
			pthread_mutex_unlock(&pool_lock);
			s->broken = 1;
			wait_error(fd);
			break;
		}
		case F_FILL:
			if (slot_flow_relaxed(s->kind) || s->kind == S_UNIX_DGRAM)
				fill_receiver(p, k);
			break;
		case F_SHUTDOWN:
			if (shutdown(fd, SHUT_WR) == 0)
				s->broken = 1;
			break;
		case F_SHUT_RD_PEER: /* UNIX sockets: the sender gets EPIPE */
			if (s->rx >= 0 && (s->kind == S_UNIX_BLK || s->kind == S_UNIX_NB ||
					   s->kind == S_UNIX_DGRAM) && shutdown(s->rx, SHUT_RD) == 0)
				s->broken = 1;
			break;
		case F_CLOSE:
			pool_close_slot(p, k);
			s->broken = 1;
			break;
		default:
			break;
		}
	}
}

/* ---- comparison -------------------------------------------------------- */

static const uint8_t *cur_input;
static size_t cur_size;
static int cur_call;

static void dump_input(void)
{
	size_t i;

	fprintf(stderr, "input (%zu bytes):", cur_size);
	for (i = 0; i < cur_size && i < 256; i++)
		fprintf(stderr, " %02x", cur_input[i]);
	fprintf(stderr, "%s\n", cur_size > 256 ? " ..." : "");
}

static void __attribute__((noreturn, format(printf, 1, 2))) mismatch(const char *fmt, ...)
{
	va_list ap;
	const struct call *k = &calls[cur_call];

	fprintf(stderr, "\n==== writevv differs from the writev loop ====\n");
	fprintf(stderr, "call %d: mode %s, fault %s on slot %d (%s), fdcnt %d, iovcnt %d, total %zu, "
			"readable %zu%s\n",
		cur_call, wvv_mode_name(k->mode), fault_names[k->fault], k->fault_slot,
		slot_name((enum slot_kind)k->fault_slot), k->fdcnt, k->iovcnt, k->total,
		k->readable, k->import_fault ? " (refused at import)" : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	dump_input();
	abort();
}

static const char *target_name(const struct call *k, int i, char *buf, size_t n)
{
	if (k->sel[i] >= 0)
		snprintf(buf, n, "slot %d %s (fd %d / twin %d)", k->sel[i],
			 slot_name((enum slot_kind)k->sel[i]), pools[0].base + k->sel[i],
			 pools[1].base + k->sel[i]);
	else
		snprintf(buf, n, "hostile fd %d", hostile_fd((unsigned)(-1 - k->sel[i])));
	return buf;
}

static void fmt_result(char *buf, size_t n, size_t ret, int err)
{
	if (ret == (size_t)-1)
		snprintf(buf, n, "-1/%s", strerrorname_np(err) ? strerrorname_np(err) : "?");
	else
		snprintf(buf, n, "%zu/err %d", ret, err);
}

/* Is writevv's (ra, ea) an answer writev could have given, given the loop's (rb, eb)? */
static int acceptable(const struct call *k, int i, size_t ra, int ea, size_t rb, int eb)
{
	int relaxed = k->sel[i] >= 0 && slot_flow_relaxed((enum slot_kind)k->sel[i]);
	int fault = k->readable != SIZE_MAX;
	int a_err = ra == (size_t)-1, b_err = rb == (size_t)-1;
	int flow_b, fault_b;

	if (a_err != (ea != 0))
		return 0; /* returns[] and errors[] must agree */
	if (ra == rb && ea == eb)
		return 1;
	if (!a_err && ra > k->total)
		return 0;
	/* Nonblocking streams: "took n bytes" and EAGAIN depend on timing. */
	flow_b = relaxed && (!b_err || eb == EAGAIN);
	/* A payload with an unreadable byte: writev writes some prefix of the
	 * readable part (how much depends on how the kernel chunks its copy)
	 * or fails with EFAULT. */
	fault_b = fault && ((b_err && eb == EFAULT) || (!b_err && rb <= k->readable));
	if (!flow_b && !fault_b)
		return 0; /* the loop's answer was not a matter of timing: the same one */
	if (a_err)
		return ea == EAGAIN ? relaxed : ea == EFAULT ? fault : 0;
	if (ra == 0)
		return k->total == 0;
	if (fault && ra > k->readable)
		return 0;
	/* a pipe write of at most PIPE_BUF bytes is atomic */
	if (k->sel[i] == S_PIPE_NB && k->total <= PIPE_BUF && ra != k->total)
		return 0;
	return 1;
}

#define PAYLOAD_MAX (20u * 262140u + 2 * PAGE) /* the most 19 iovecs can carry */
static unsigned char payload[PAYLOAD_MAX];

static size_t gather_payload(const struct call *k)
{
	size_t n = 0, limit = k->readable < k->total ? k->readable : k->total;
	int i;

	for (i = 0; i < k->iovcnt && n < limit; i++) {
		size_t l = k->iov[i].iov_len;

		if (!l)
			continue;
		if (l > limit - n)
			l = limit - n;
		if (n + l > PAYLOAD_MAX)
			abort(); /* the decoder keeps readable payloads in the area */
		memcpy(payload + n, k->iov[i].iov_base, l);
		n += l;
	}
	return n;
}

static void check_call(const struct call *k, int ra_ret, int a_errno, const size_t *ra,
		       const int *ea, int rb_ret, int b_errno, const size_t *rb, const int *eb)
{
	unsigned successes[2][NSLOTS];
	long long deadline;
	size_t have;
	int i, p, s;
	char t[160], x[64], y[64];

	int full = 0;

	if ((ra_ret < 0) != (rb_ret < 0) || (ra_ret < 0 && a_errno != b_errno))
		mismatch("return value: writevv %d (errno %s), writev loop %d (errno %s)", ra_ret,
			 ra_ret < 0 ? strerrorname_np(a_errno) : "-", rb_ret,
			 rb_ret < 0 ? strerrorname_np(b_errno) : "-");
	memset(successes, 0, sizeof(successes));
	if (ra_ret < 0 || k->fdcnt <= 0) {
		if (ra_ret != rb_ret)
			mismatch("return value: writevv %d, writev loop %d", ra_ret, rb_ret);
		/* Nothing written; but what a fault put on the receivers
		 * (fill-receiver) is still checked, and forgotten, here. */
		goto receivers;
	}
	/* (where timing decides how much a target takes, the count may differ
	 * from the loop's; it must be that of writevv's own returns[]) */
	for (i = 0; i < k->fdcnt; i++)
		full += ea[i] == 0 && ra[i] == k->total;
	if (ra_ret != full)
		mismatch("return value: writevv %d, but %d of its returns[] are complete "
			 "(writev loop: %d)", ra_ret, full, rb_ret);
	for (i = 0; i < k->fdcnt; i++)
		if (!acceptable(k, i, ra[i], ea[i], rb[i], eb[i])) {
			fmt_result(x, sizeof(x), ra[i], ea[i]);
			fmt_result(y, sizeof(y), rb[i], eb[i]);
			mismatch("fds[%d] = %s: writevv %s, writev loop %s", i,
				 target_name(k, i, t, sizeof(t)), x, y);
		}
	/* the bytes: each receiver must have got exactly the prefixes reported */
	have = gather_payload(k);
	for (p = 0; p < 2; p++) {
		const size_t *r = p ? rb : ra;

		for (i = 0; i < k->fdcnt; i++) {
			struct slot *sl;

			if (k->sel[i] < 0 || r[i] == (size_t)-1)
				continue;
			sl = &pools[p].s[k->sel[i]];
			if (!slot_has_receiver(sl->kind))
				continue; /* (/dev/null reads nothing: any length is taken) */
			if (r[i] > have) {
				fmt_result(x, sizeof(x), r[i], 0);
				mismatch("fds[%d] = %s: %s reports %s, more than the %zu readable bytes",
					 i, target_name(k, i, t, sizeof(t)),
					 p ? "writev loop" : "writevv", x, have);
			}
			want_append(sl, payload, r[i]);
			successes[p][k->sel[i]]++;
		}
	}
receivers:
	deadline = pool_collect_deadline();
	for (s = 0; s < NSLOTS; s++) {
		struct slot *a = &pools[0].s[s], *b = &pools[1].s[s];

		pool_collect(0, s, successes[0][s], deadline);
		pool_collect(1, s, successes[1][s], deadline);
		for (p = 0; p < 2; p++) {
			struct slot *sl = p ? b : a;
			size_t j;

			if (!slot_has_receiver(sl->kind))
				continue;
			if (sl->kind == S_UDP) {
				/* datagrams may be dropped (receive buffer full), never altered */
				if (sl->datagrams > successes[p][s])
					mismatch("%s: udp receiver got %u datagrams for %u sends",
						 p ? "writev loop" : "writevv", sl->datagrams,
						 successes[p][s]);
				continue;
			}
			if (sl->got_len == sl->want_len &&
			    (!sl->got_len || !memcmp(sl->got, sl->want, sl->got_len)))
				continue;
			for (j = 0; j < sl->got_len && j < sl->want_len; j++)
				if (sl->got[j] != sl->want[j])
					break;
			mismatch("%s pool, slot %d (%s, fd %d): the receiver got %zu bytes, the "
				 "results promise %zu; first difference at byte %zu",
				 p ? "writev loop" : "writevv", s, slot_name(sl->kind),
				 pools[p].base + s, sl->got_len, sl->want_len, j);
		}
		if (a->kind == S_UDP) {
			size_t n = a->got_len < b->got_len ? a->got_len : b->got_len;

			if (a->datagrams != b->datagrams || a->got_len != b->got_len ||
			    (n && memcmp(a->got, b->got, n)))
				mismatch("udp receivers differ: writevv %u datagrams / %zu bytes, "
					 "writev loop %u / %zu",
					 a->datagrams, a->got_len, b->datagrams, b->got_len);
		}
		if (a->kind == S_EVENTFD && a->counter != b->counter)
			mismatch("eventfd counter: writevv %llu, writev loop %llu", a->counter,
				 b->counter);
		/* compared: start the next call from nothing */
		pthread_mutex_lock(&pool_lock);
		a->got_len = a->want_len = 0;
		b->got_len = b->want_len = 0;
		pthread_mutex_unlock(&pool_lock);
	}
}

/* ---- libFuzzer entry points -------------------------------------------- */

static int set_mode(int mode)
{
	int m = mode;

	return writevv_control(WRITEVV_SETMODE, &m);
}

/* Open descriptors of the process: the library's own must stay bounded
 * (rings, memfds, control sockets, pins: a few per thread), whatever the
 * calls pass. */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

#define FD_SLACK 24 /* more than this above the warmed-up count is a leak */
static int fd_baseline;

/* One call in each mode, so that what each engine opens lazily is open. */
static void warm_up(void)
{
	int fds[2] = { pools[0].base + S_TCP_BLK, pools[0].base + S_DEVNULL }, i, j;
	size_t rets[2];
	int errs[2];

	for (i = 0; i < nmodes; i++) {
		if (set_mode(modes[i]))
			abort();
		for (j = 0; j < 3; j++) {
			/* small and large payloads: the default mode tries each engine */
			struct iovec v = { pattern, j == 0 ? 100 : j == 1 ? 20000 : 200000 };

			writevv(fds, 2, &v, 1, rets, errs);
		}
	}
	pool_restore();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *pin = getenv("WVV_FUZZ_ENGINE");
	struct sigaction sa;
	int i;

	(void)argc;
	(void)argv;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigpipe;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGPIPE, &sa, NULL);
	nofile_set(NOFILE_LIMIT);
	pattern = mmap(NULL, PAT_SIZE + PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (pattern == MAP_FAILED)
		abort();
	for (i = 0; i < (int)PAT_SIZE; i++)
		pattern[i] = (unsigned char)((unsigned)i * 2654435761u >> 13);
	guard = pattern + PAT_SIZE;
	mprotect(guard, PAGE, PROT_NONE);
	huge_area = mmap(NULL, HUGE_AREA, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			 -1, 0);
	if (huge_area == MAP_FAILED)
		abort();
	pool_init();
	/* libFuzzer's -timeout alarm would interrupt a blocking writev of the
	 * loop half way (a partial count, as writev does on a signal): it goes
	 * to the other threads (the drain thread unblocks it). */
	{
		sigset_t alrm;

		sigemptyset(&alrm);
		sigaddset(&alrm, SIGALRM);
		pthread_sigmask(SIG_BLOCK, &alrm, NULL);
	}
	if (getenv("WVV_FUZZ_SKIP")) {
		skip_hugefd = !!strstr(getenv("WVV_FUZZ_SKIP"), "hugefd");
		skip_badiov = !!strstr(getenv("WVV_FUZZ_SKIP"), "badiov");
		fprintf(stderr, "fuzz_writevv: WVV_FUZZ_SKIP=%s: exploring past known defects\n",
			getenv("WVV_FUZZ_SKIP"));
	}

	for (i = 0; i < NMODES; i++) {
		if (pin && *pin && strcmp(pin, "all") && strcmp(pin, wvv_mode_name(all_modes[i])))
			continue;
		if (set_mode(all_modes[i])) {
			fprintf(stderr, "fuzz_writevv: mode %s unavailable: %s%s%s\n", wvv_mode_name(all_modes[i]),
				strerror(errno), all_modes[i] == WRITEVV_MODE_KERNEL ? " - " : "",
				all_modes[i] == WRITEVV_MODE_KERNEL ? writevv_kernel_status() : "");
			if (pin && *pin && strcmp(pin, "all"))
				exit(2); /* a pinned engine must run: no silent skip */
			continue;
		}
		modes[nmodes++] = all_modes[i];
	}
	if (!nmodes) {
		fprintf(stderr, "fuzz_writevv: WVV_FUZZ_ENGINE=%s: no such engine\n", pin);
		exit(2);
	}
	warm_up();
	fd_baseline = open_fds();
	fprintf(stderr, "fuzz_writevv: modes:");
	for (i = 0; i < nmodes; i++)
		fprintf(stderr, " %s", wvv_mode_name(modes[i]));
	fprintf(stderr, "\n");
	return 0;
}

static void run_input(const uint8_t *data, size_t size)
{
	static int fa[MAX_FDS], fb[MAX_FDS], ea[MAX_FDS], eb[MAX_FDS];
	static size_t ra[MAX_FDS], rb[MAX_FDS];
	int ncalls = decode(data, size), c, i;

	cur_input = data;
	cur_size = size;
	for (c = 0; c < ncalls; c++) {
		struct call *k = &calls[c];
		int r1, r2, e1, e2, n = k->fdcnt > 0 ? k->fdcnt : 0;
		sig_atomic_t pipes0;

		cur_call = c;
		apply_fault(k->fault, k->fault_slot);
		for (i = 0; i < n; i++) {
			fa[i] = k->sel[i] >= 0 ? pools[0].base + k->sel[i]
					       : hostile_fd((unsigned)(-1 - k->sel[i]));
			fb[i] = k->sel[i] >= 0 ? pools[1].base + k->sel[i] : fa[i];
			ra[i] = rb[i] = (size_t)0xa5a5a5a5u; /* untouched entries show */
			ea[i] = eb[i] = 0x5a5a;
		}
		if (set_mode(k->mode)) {
			fprintf(stderr, "SETMODE %s failed: %s\n", wvv_mode_name(k->mode), strerror(errno));
			abort();
		}
		pipes0 = sigpipes;
		errno = 0;
		r1 = writevv(k->fds_null ? NULL : fa, k->fdcnt, k->iov_null ? NULL : k->iov, k->iovcnt,
			     ra, ea);
		e1 = errno;
		if (sigpipes != pipes0)
			mismatch("writevv raised SIGPIPE");
		errno = 0;
		r2 = writev_reference(k->fds_null ? NULL : fb, k->fdcnt, k->iov_null ? NULL : k->iov,
				      k->iovcnt, rb, eb, NULL);
		e2 = errno;
		check_call(k, r1, e1, ra, ea, r2, e2, rb, eb);
	}
	pool_restore();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int before = open_fds(), after, again;

	run_input(data, size);
	after = open_fds();
	if (after > before) {
		/* An engine may open something the first time (its ring, its
		 * memfd...). Growing again at each repetition is a leak. */
		for (again = 0; again < 4; again++) {
			int b = open_fds();

			run_input(data, size);
			if (open_fds() <= b)
				break;
		}
		if (again == 4)
			mismatch("descriptor leak: this input opens descriptors it never closes "
				 "(%d open before it, %d after it and 4 repetitions; %d after the "
				 "warm-up)", before, open_fds(), fd_baseline);
	}
	if (open_fds() > fd_baseline + FD_SLACK)
		mismatch("descriptor leak: %d descriptors open, %d after the warm-up (the "
			 "library's own must not grow with the calls)", open_fds(), fd_baseline);
	return 0;
}
