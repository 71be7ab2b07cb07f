/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <dirent.h>

#include <bpf/libbpf.h>

#include "helpers.h"
#include "mode_names.h"
#include "nofile.h"
#include "pinned_maps.h"
#include "writevv.h"

struct fleet_priv {
	pthread_t thr;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int epfd;
	int stop_pipe[2];
	_Atomic int stop;
	_Atomic int paused;
};

/* Without root or BPF every test would fail on its first call: say why and
 * skip instead (TEST_SKIP). */
__attribute__((constructor)) static void skip_unless_runnable(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: the integration tests run as root (they load the BPF program, "
			"make accounts and raise limits); uid %u\n", (unsigned int)geteuid());
		exit(TEST_SKIP);
	}
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_MSG, NULL) != 1) {
		fprintf(stderr, "SKIP: this kernel (or container) does not load SK_MSG BPF programs\n");
		exit(TEST_SKIP);
	}
}

void raise_nofile(unsigned long need)
{
	struct rlimit rl;
	int err;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur >= need)
		return;
	err = nofile_set(need);
	if (err) {
		fprintf(stderr, "cannot raise RLIMIT_NOFILE to %lu: %s\n", need, strerror(-err));
		fail();
	}
}

static void *rx_thread(void *arg)
{
	struct tcp_fleet *f = arg;
	struct fleet_priv *p = f->priv;
	struct epoll_event ev[64];
	unsigned char buf[65536];

	while (!atomic_load(&p->stop)) {
		int n = epoll_wait(p->epfd, ev, 64, 100), i;

		for (i = 0; i < n; i++) {
			int t = (int)ev[i].data.u32;
			ssize_t r;

			if (t < 0 || t >= f->n)
				continue; /* the stop pipe */
			if (atomic_load(&p->paused))
				continue;
			r = recv(f->rx[t], buf, sizeof(buf), MSG_DONTWAIT);
			pthread_mutex_lock(&p->lock);
			if (r > 0) {
				if (f->got_len[t] + (size_t)r > f->got_cap[t]) {
					size_t cap = f->got_cap[t] ? f->got_cap[t] : 4096;

					while (cap < f->got_len[t] + (size_t)r)
						cap *= 2;
					f->got[t] = realloc(f->got[t], cap);
					f->got_cap[t] = cap;
				}
				memcpy(f->got[t] + f->got_len[t], buf, (size_t)r);
				f->got_len[t] += (size_t)r;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				f->rx_closed[t] = 1;
				epoll_ctl(p->epfd, EPOLL_CTL_DEL, f->rx[t], NULL);
			}
			pthread_cond_broadcast(&p->cond);
			pthread_mutex_unlock(&p->lock);
		}
		if (atomic_load(&p->paused))
			usleep(1000);
	}
	return NULL;
}

int fleet_open(struct tcp_fleet *f, int n, int nodelay)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	struct fleet_priv *p;
	int lfd, i, one = 1;
	char cc[] = "cubic";

	memset(f, 0, sizeof(*f));
	raise_nofile((unsigned long)n * 2 + 256);
	f->n = n;
	f->tx = calloc((size_t)n, sizeof(int));
	f->rx = calloc((size_t)n, sizeof(int));
	f->got = calloc((size_t)n, sizeof(*f->got));
	f->got_len = calloc((size_t)n, sizeof(size_t));
	f->got_cap = calloc((size_t)n, sizeof(size_t));
	f->rx_closed = calloc((size_t)n, sizeof(int));
	p = calloc(1, sizeof(*p));
	f->priv = p;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->epfd = epoll_create1(EPOLL_CLOEXEC);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 4096), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	for (i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)i };

		f->tx[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(f->tx[i] >= 0);
		setsockopt(f->tx[i], IPPROTO_TCP, TCP_CONGESTION, cc, sizeof(cc));
		if (nodelay)
			setsockopt(f->tx[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		assert_int_equal(connect(f->tx[i], (struct sockaddr *)&a, sizeof(a)), 0);
		f->rx[i] = accept(lfd, NULL, NULL);
		assert_true(f->rx[i] >= 0);
		assert_int_equal(epoll_ctl(p->epfd, EPOLL_CTL_ADD, f->rx[i], &ev), 0);
	}
	close(lfd);
	assert_int_equal(pthread_create(&p->thr, NULL, rx_thread, f), 0);
	return 0;
}

void wait_reset(int fd)
{
	struct pollfd p = { fd, 0, 0 }; /* POLLERR and POLLHUP come whatever is asked */

	assert_int_equal(poll(&p, 1, 20000), 1);
	assert_true(p.revents & POLLERR);
}

void fleet_close(struct tcp_fleet *f)
{
	struct fleet_priv *p = f->priv;
	int i;

	atomic_store(&p->stop, 1);
	pthread_join(p->thr, NULL);
	for (i = 0; i < f->n; i++) {
		if (f->tx[i] >= 0)
			close(f->tx[i]);
		if (f->rx[i] >= 0)
			close(f->rx[i]);
		free(f->got[i]);
	}
	close(p->epfd);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
	free(f->tx);
	free(f->rx);
	free(f->got);
	free(f->got_len);
	free(f->got_cap);
	free(f->rx_closed);
	memset(f, 0, sizeof(*f));
}

void fleet_pause(struct tcp_fleet *f)
{
	atomic_store(&((struct fleet_priv *)f->priv)->paused, 1);
}

void fleet_resume(struct tcp_fleet *f)
{
	atomic_store(&((struct fleet_priv *)f->priv)->paused, 0);
}

int fleet_wait(struct tcp_fleet *f, int i, size_t len, int timeout_ms)
{
	struct fleet_priv *p = f->priv;
	struct timespec dl;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000l;
	if (dl.tv_nsec >= 1000000000l) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000l;
	}
	pthread_mutex_lock(&p->lock);
	while (f->got_len[i] < len && !f->rx_closed[i] && rc == 0)
		rc = pthread_cond_timedwait(&p->cond, &p->lock, &dl);
	rc = f->got_len[i] >= len ? 0 : -1;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void fleet_reset(struct tcp_fleet *f)
{
	struct fleet_priv *p = f->priv;
	int i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < f->n; i++)
		f->got_len[i] = 0;
	pthread_mutex_unlock(&p->lock);
}

unsigned char pattern_byte(unsigned call, size_t k)
{
	uint64_t x = (uint64_t)k * 0x9e3779b97f4a7c15ull + (uint64_t)call * 0xbf58476d1ce4e5b9ull;

	return (unsigned char)(x >> 56);
}

void pattern_fill(unsigned char *buf, size_t len, unsigned call, size_t start)
{
	size_t k;

	for (k = 0; k < len; k++)
		buf[k] = pattern_byte(call, start + k);
}

int pattern_check(const unsigned char *buf, size_t len, unsigned call, size_t start)
{
	size_t k;

	for (k = 0; k < len; k++)
		if (buf[k] != pattern_byte(call, start + k)) {
			fprintf(stderr, "pattern mismatch at byte %zu of call %u\n", start + k, call);
			return -1;
		}
	return 0;
}

void must_set_mode(int mode)
{
	int m = mode;

	if (writevv_control(WRITEVV_SETMODE, &m)) {
		fprintf(stderr, "writevv_control(SETMODE, %d): %s (%s)\n", mode, strerror(errno),
			writevv_kernel_status());
		fail();
	}
}

int test_engine(void)
{
	int m = wvv_mode_parse(getenv("WVV_TEST_ENGINE"));

	return m < 0 ? WRITEVV_MODE_KERNEL : m;
}

int use_test_engine(void)
{
	int want = test_engine(), got = -1;

	must_set_mode(want);
	assert_int_equal(writevv_control(WRITEVV_GETMODE, &got), 0);
	/* The default mode reports its small-payload engine, io_uring here. */
	assert_int_equal(got, want == WRITEVV_MODE_DEFAULT ? WRITEVV_MODE_IOURING : want);
	return want;
}

const char *loader_path(void)
{
	const char *p = getenv("WRITEVV_LOADER");

	return p ? p : "writevv-loader";
}

int run_loader(const char *args)
{
	char cmd[4096];
	int st;

	snprintf(cmd, sizeof(cmd), "%s %s >/dev/null", loader_path(), args);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "writevv_frame.h"

int read_bpf_stats(struct wvv_stats *out)
{
	const char *dir = getenv("WRITEVV_PIN_DIR");
	char path[512];
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : WVV_PIN_DIR_DEFAULT, WVV_PIN_STATS);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	err = wvv_sum_stats(fd, out);
	close(fd);
	return err;
}

void fanout_check(struct tcp_fleet *f, const int *idx, int n, const size_t *lens, int nlens,
		  unsigned call)
{
	struct iovec *iov = calloc((size_t)nlens + 1, sizeof(*iov));
	size_t total = 0, *rets = calloc((size_t)n, sizeof(size_t)), *base;
	int *fds = calloc((size_t)n, sizeof(int)), *errs = calloc((size_t)n, sizeof(int));
	int *times = calloc((size_t)f->n, sizeof(int));
	unsigned char *buf;
	int i, r;

	for (i = 0; i < nlens; i++)
		total += lens[i];
	buf = malloc(total + 1);
	pattern_fill(buf, total, call, 0);
	total = 0;
	for (i = 0; i < nlens; i++) {
		iov[i].iov_base = buf + total;
		iov[i].iov_len = lens[i];
		total += lens[i];
	}
	base = calloc((size_t)f->n, sizeof(size_t));
	for (i = 0; i < f->n; i++)
		base[i] = f->got_len[i];
	for (i = 0; i < n; i++) {
		fds[i] = f->tx[idx[i]];
		times[idx[i]]++;
	}
	r = writevv(fds, n, iov, nlens, rets, errs);
	for (i = 0; i < n; i++) {
		if (rets[i] != total || errs[i] != 0) {
			fprintf(stderr, "target %d: returns %zd errors %d, want %zu\n", i,
				(ssize_t)rets[i], errs[i], total);
			fail();
		}
	}
	assert_int_equal(r, n);
	for (i = 0; i < f->n; i++) {
		size_t want = base[i] + total * (size_t)times[i], k;

		if (!times[i])
			continue;
		if (fleet_wait(f, i, want, 10000)) {
			fprintf(stderr, "target %d got %zu bytes, want %zu\n", i, f->got_len[i], want);
			fail();
		}
		assert_int_equal(f->got_len[i], want);
		for (k = 0; k < (size_t)times[i]; k++)
			assert_int_equal(pattern_check(f->got[i] + base[i] + k * total, total, call, 0), 0);
	}
	free(base);
	free(buf);
	free(iov);
	free(rets);
	free(fds);
	free(errs);
	free(times);
}

void fleet_stop_reading(struct tcp_fleet *f, int i)
{
	struct fleet_priv *p = f->priv;

	epoll_ctl(p->epfd, EPOLL_CTL_DEL, f->rx[i], NULL);
}

void fleet_start_reading(struct tcp_fleet *f, int i)
{
	struct fleet_priv *p = f->priv;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)i };

	epoll_ctl(p->epfd, EPOLL_CTL_ADD, f->rx[i], &ev);
}

/* ---- sink ---------------------------------------------------------------- */

#include <sys/ioctl.h>
#include <linux/sockios.h>

struct sink_rx {
	int rfd, wfd, dgram;
	unsigned char *buf;
	size_t len, cap;
};

struct sink {
	pthread_t thr;
	pthread_mutex_t lock;
	int epfd, n, cap;
	struct sink_rx *rx;
	_Atomic int stop;
	unsigned char tmp[1 << 18];
};

static void sink_append(struct sink_rx *r, const void *p, size_t n)
{
	if (r->len + n > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;

		while (cap < r->len + n)
			cap *= 2;
		r->buf = realloc(r->buf, cap);
		assert_non_null(r->buf);
		r->cap = cap;
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

/* Read what rx i has now (lock held). */
static void sink_read_one(struct sink *s, int i)
{
	struct sink_rx *r = &s->rx[i];
	ssize_t got;

	if (r->dgram) {
		/* (0 is an empty datagram here, not an end of file) */
		while ((got = recv(r->rfd, s->tmp, sizeof(s->tmp), MSG_DONTWAIT)) >= 0) {
			uint32_t l = (uint32_t)got;

			sink_append(r, &l, sizeof(l));
			sink_append(r, s->tmp, (size_t)got);
		}
		return;
	}
	while ((got = read(r->rfd, s->tmp, sizeof(s->tmp))) > 0)
		sink_append(r, s->tmp, (size_t)got);
	if (got == 0)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, r->rfd, NULL); /* EOF */
}

static void *sink_thread(void *arg)
{
	struct sink *s = arg;
	struct epoll_event ev[64];
	sigset_t all;

	/* Signals are for the thread under test (a test may time one). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!atomic_load(&s->stop)) {
		int n = epoll_wait(s->epfd, ev, 64, 50), i;

		pthread_mutex_lock(&s->lock);
		for (i = 0; i < n; i++)
			sink_read_one(s, (int)ev[i].data.u32);
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

struct sink *sink_new(void)
{
	struct sink *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	pthread_mutex_init(&s->lock, NULL);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	assert_true(s->epfd >= 0);
	assert_int_equal(pthread_create(&s->thr, NULL, sink_thread, s), 0);
	return s;
}

int sink_add(struct sink *s, int rfd, int wfd, int dgram)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int i;

	pthread_mutex_lock(&s->lock);
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->rx = realloc(s->rx, (size_t)s->cap * sizeof(*s->rx));
		assert_non_null(s->rx);
	}
	i = s->n++;
	memset(&s->rx[i], 0, sizeof(s->rx[i]));
	s->rx[i].rfd = rfd;
	s->rx[i].wfd = wfd;
	s->rx[i].dgram = dgram;
	fcntl(rfd, F_SETFL, fcntl(rfd, F_GETFL) | O_NONBLOCK);
	ev.data.u32 = (uint32_t)i;
	assert_int_equal(epoll_ctl(s->epfd, EPOLL_CTL_ADD, rfd, &ev), 0);
	pthread_mutex_unlock(&s->lock);
	return i;
}

/* Bytes queued at rx i's sending socket: not yet acknowledged by rx. */
static long sink_outq(struct sink_rx *r)
{
	int outq = 0;

	if (r->wfd >= 0 && ioctl(r->wfd, SIOCOUTQ, &outq))
		outq = 0;
	return outq;
}

/* Bytes rx i has and has not read. */
static long sink_inq(struct sink_rx *r)
{
	int inq = 0;

	if (ioctl(r->rfd, FIONREAD, &inq))
		inq = 0;
	return inq;
}

/*
 * Read until nothing is on its way to any receiver. The sender's queue is
 * looked at before the receiver is read: a TCP byte is acknowledged only
 * once it is in the receiver's queue, so a sender found empty means that
 * the read after it gets everything. (Looking at the receiver first missed
 * bytes that arrived, and were acknowledged, between the two looks: the
 * receiver of a peer that did SHUT_RD, which sends no window updates and so
 * gets its last bytes late, after a window probe, was seen holding 55040 of
 * 70000 bytes.)
 */
void sink_settle(struct sink *s)
{
	int tries, i;

	for (tries = 0; tries < 20000; tries++) {
		long pending = 0;

		pthread_mutex_lock(&s->lock);
		for (i = 0; i < s->n; i++) {
			pending += sink_outq(&s->rx[i]);
			sink_read_one(s, i);
			pending += sink_inq(&s->rx[i]);
		}
		pthread_mutex_unlock(&s->lock);
		if (!pending)
			return;
		usleep(1000);
	}
	fprintf(stderr, "sink: bytes still in flight after 20 s\n");
	fail();
}

const unsigned char *sink_bytes(struct sink *s, int i, size_t *len)
{
	*len = s->rx[i].len;
	return s->rx[i].buf;
}

void sink_forget(struct sink *s)
{
	int i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->n; i++)
		s->rx[i].len = 0;
	pthread_mutex_unlock(&s->lock);
}

int sink_count(struct sink *s)
{
	return s->n;
}

void sink_free(struct sink *s)
{
	int i;

	atomic_store(&s->stop, 1);
	pthread_join(s->thr, NULL);
	for (i = 0; i < s->n; i++)
		free(s->rx[i].buf);
	free(s->rx);
	close(s->epfd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int open_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}
