/* SPDX-License-Identifier: MIT */
/* The fuzz target's twin descriptor pools (see fuzz_pool.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fuzz_pool.h"

struct pool pools[2];
pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

static int drain_epfd = -1;
static int tcp_listener = -1;
static struct sockaddr_in tcp_addr;

#define SMALL_SNDBUF 4096 /* the kernel doubles it; its minimum is 4608 */

static void die(const char *what)
{
	fprintf(stderr, "fuzz_writevv: %s: %s\n", what, strerror(errno));
	abort();
}

const char *slot_name(enum slot_kind k)
{
	static const char *const names[NSLOTS] = {
		"tcp-blocking", "tcp-blocking-small-sndbuf", "tcp-nonblocking-small-sndbuf",
		"tcp-nonblocking", "unix-stream-blocking", "unix-stream-nonblocking",
		"unix-dgram", "pipe-blocking", "pipe-nonblocking", "file", "file-append",
		"/dev/null", "eventfd", "udp", "udp-unconnected", "tcp-listening", "rdonly-file",
		"directory", "epoll", "tcp-blocking-2",
	};

	return k < NSLOTS ? names[k] : "?";
}

int slot_drained(enum slot_kind k)
{
	return k == S_TCP_BLK || k == S_TCP_BLK_SMALL || k == S_TCP_BLK2 || k == S_UNIX_BLK ||
	       k == S_PIPE_BLK;
}

int slot_flow_relaxed(enum slot_kind k)
{
	return k == S_TCP_NB_SMALL || k == S_TCP_NB || k == S_UNIX_NB || k == S_PIPE_NB;
}

int slot_has_receiver(enum slot_kind k)
{
	return k <= S_FILE_APPEND || k == S_UDP || k == S_TCP_BLK2;
}

static void set_nonblock(int fd)
{
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
		die("fcntl O_NONBLOCK");
}

static void tcp_pair(int *tx, int *rx, int small)
{
	int one = 1, sz = SMALL_SNDBUF;

	*tx = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*tx < 0)
		die("socket");
	setsockopt(*tx, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (small)
		setsockopt(*tx, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (connect(*tx, (struct sockaddr *)&tcp_addr, sizeof(tcp_addr)))
		die("connect");
	*rx = accept4(tcp_listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (*rx < 0)
		die("accept");
}

static int open_tmpfile(int append)
{
	int fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC | (append ? O_APPEND : 0), 0600);

	if (fd < 0)
		die("O_TMPFILE in /tmp");
	return fd;
}

void pool_open_slot(int p, int k)
{
	struct slot *s = &pools[p].s[k];
	int tx = -1, rx = -1, v[2], one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	switch (s->kind) {
	case S_TCP_BLK:
	case S_TCP_BLK2:
		tcp_pair(&tx, &rx, 0);
		break;
	case S_TCP_BLK_SMALL:
		tcp_pair(&tx, &rx, 1);
		break;
	case S_TCP_NB_SMALL:
		tcp_pair(&tx, &rx, 1);
		set_nonblock(tx);
		break;
	case S_TCP_NB:
		tcp_pair(&tx, &rx, 0);
		set_nonblock(tx);
		break;
	case S_UNIX_BLK:
	case S_UNIX_NB:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, v))
			die("socketpair");
		tx = v[0];
		rx = v[1];
		set_nonblock(rx);
		if (s->kind == S_UNIX_NB)
			set_nonblock(tx);
		break;
	case S_UNIX_DGRAM:
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, v))
			die("socketpair dgram");
		tx = v[0];
		rx = v[1];
		break;
	case S_PIPE_BLK:
	case S_PIPE_NB:
		if (pipe2(v, O_CLOEXEC))
			die("pipe");
		tx = v[1];
		rx = v[0];
		set_nonblock(rx);
		if (s->kind == S_PIPE_NB)
			set_nonblock(tx);
		break;
	case S_FILE:
	case S_FILE_APPEND:
		tx = open_tmpfile(s->kind == S_FILE_APPEND);
		break;
	case S_DEVNULL:
		tx = open("/dev/null", O_WRONLY | O_CLOEXEC);
		break;
	case S_EVENTFD:
		tx = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		break;
	case S_UDP:
		rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (rx < 0 || bind(rx, (struct sockaddr *)&a, sizeof(a)) ||
		    getsockname(rx, (struct sockaddr *)&a, &alen))
			die("udp receiver");
		setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &(int){ 1 << 20 }, sizeof(int));
		tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (tx < 0 || connect(tx, (struct sockaddr *)&a, sizeof(a)))
			die("udp sender");
		break;
	case S_UDP_UNCONN:
		tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		break;
	case S_TCP_LISTEN:
		tx = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		setsockopt(tx, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (tx < 0 || bind(tx, (struct sockaddr *)&a, sizeof(a)) || listen(tx, 4))
			die("listening socket");
		break;
	case S_RDONLY:
		tx = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
		break;
	case S_DIR:
		tx = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		break;
	case S_EPOLL:
		tx = epoll_create1(EPOLL_CLOEXEC);
		break;
	default:
		abort();
	}
	if (tx < 0)
		die(slot_name(s->kind));
	if (dup3(tx, pools[p].base + k, O_CLOEXEC) < 0)
		die("dup3 to the slot's number");
	close(tx);
	s->tx_closed = 0;
	s->broken = 0;
	s->rx_eof = 0;
	s->file_checked = 0;
	pthread_mutex_lock(&pool_lock);
	s->rx = rx;
	if (rx >= 0 && slot_drained(s->kind)) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP,
					  .data.u64 = (uint64_t)p << 32 | (uint64_t)k };

		if (epoll_ctl(drain_epfd, EPOLL_CTL_ADD, rx, &ev))
			die("epoll_ctl");
	}
	pthread_mutex_unlock(&pool_lock);
}

void pool_close_slot(int p, int k)
{
	struct slot *s = &pools[p].s[k];

	pthread_mutex_lock(&pool_lock);
	if (s->rx >= 0) {
		if (slot_drained(s->kind))
			epoll_ctl(drain_epfd, EPOLL_CTL_DEL, s->rx, NULL);
		close(s->rx);
		s->rx = -1;
	}
	pthread_mutex_unlock(&pool_lock);
	close(pools[p].base + k);
	s->tx_closed = 1;
}

static void got_append(struct slot *s, const unsigned char *buf, size_t len)
{
	if (!len)
		return;
	if (s->got_len + len > s->got_cap) {
		size_t cap = s->got_cap ? s->got_cap : 65536;

		while (cap < s->got_len + len)
			cap *= 2;
		s->got = realloc(s->got, cap);
		if (!s->got)
			die("realloc");
		s->got_cap = cap;
	}
	memcpy(s->got + s->got_len, buf, len);
	s->got_len += len;
}

void want_append(struct slot *s, const void *buf, size_t len)
{
	if (!len)
		return;
	if (s->want_len + len > s->want_cap) {
		size_t cap = s->want_cap ? s->want_cap : 65536;

		while (cap < s->want_len + len)
			cap *= 2;
		s->want = realloc(s->want, cap);
		if (!s->want)
			die("realloc");
		s->want_cap = cap;
	}
	memcpy(s->want + s->want_len, buf, len);
	s->want_len += len;
}

/* Read everything fd has now into s->got; 1 at end of file or on an error
 * other than EAGAIN. Call with pool_lock held for drained slots. */
static int read_available(struct slot *s, int fd)
{
	static unsigned char buf[1 << 20]; /* a whole datagram (UNIX: up to SO_SNDBUF) */

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r > 0) {
			got_append(s, buf, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		return r == 0 || errno != EAGAIN;
	}
}

static void *drain_thread(void *arg)
{
	struct epoll_event ev[32];
	static unsigned char buf[1 << 16];

	(void)arg;
	for (;;) {
		int n = epoll_wait(drain_epfd, ev, 32, 200), i;

		for (i = 0; i < n; i++) {
			int p = (int)(ev[i].data.u64 >> 32), k = (int)(ev[i].data.u64 & 0xffffffffu);
			struct slot *s = &pools[p].s[k];

			pthread_mutex_lock(&pool_lock);
			if (s->rx >= 0) {
				for (;;) {
					ssize_t r = read(s->rx, buf, sizeof(buf));

					if (r > 0) {
						got_append(s, buf, (size_t)r);
						continue;
					}
					if (r < 0 && (errno == EAGAIN || errno == EINTR))
						break;
					/* end of file or reset: stop watching */
					s->rx_eof = 1;
					epoll_ctl(drain_epfd, EPOLL_CTL_DEL, s->rx, NULL);
					break;
				}
			}
			pthread_mutex_unlock(&pool_lock);
		}
	}
	return NULL;
}

static long long now_ms(void)
{
	return (long long)(now_ns() / 1000000);
}

#define COLLECT_TIMEOUT_MS 5000

long long pool_collect_deadline(void)
{
	return now_ms() + COLLECT_TIMEOUT_MS;
}

/* Read what the receiver has now (under the drain thread's lock if drained). */
static void read_now(struct slot *s)
{
	int locked = slot_drained(s->kind);

	if (locked)
		pthread_mutex_lock(&pool_lock);
	if (s->rx >= 0 && !s->rx_eof)
		read_available(s, s->rx);
	if (locked)
		pthread_mutex_unlock(&pool_lock);
}

static int slot_is_tcp(enum slot_kind k)
{
	return k == S_TCP_BLK || k == S_TCP_BLK_SMALL || k == S_TCP_NB_SMALL || k == S_TCP_NB ||
	       k == S_TCP_BLK2;
}

/*
 * A TCP receiver that has all it was promised may still be owed bytes that
 * nobody reported (a sender that wrote more than its result says): they sit
 * in the sender's queue until the receiver's window opens. Wait until the
 * sender has nothing unacknowledged, then read again, so that such bytes
 * are caught in the call that wrote them, not in a later one.
 */
static void collect_tcp_in_flight(struct slot *s, int fd, long long deadline)
{
	int unacked = 0;

	while (!ioctl(fd, SIOCOUTQ, &unacked) && unacked > 0 && now_ms() <= deadline) {
		read_now(s);
		usleep(200);
	}
	read_now(s);
}

void pool_collect(int p, int k, unsigned successes, long long deadline)
{
	struct slot *s = &pools[p].s[k];
	int fd = pools[p].base + k;

	switch (s->kind) {
	case S_FILE:
	case S_FILE_APPEND: {
		off_t end;

		if (s->tx_closed)
			return;
		end = lseek(fd, 0, SEEK_END);
		if (end < 0)
			die("lseek");
		while ((off_t)s->file_checked < end) {
			unsigned char buf[65536];
			size_t want = (size_t)end - s->file_checked;
			ssize_t r = pread(fd, buf, want < sizeof(buf) ? want : sizeof(buf),
					  (off_t)s->file_checked);

			if (r <= 0)
				die("pread");
			got_append(s, buf, (size_t)r);
			s->file_checked += (size_t)r;
		}
		/* S_FILE writes at the offset; keep it at the end as writev left it */
		return;
	}
	case S_EVENTFD:
		s->counter = 0;
		if (!s->tx_closed && read(fd, &s->counter, sizeof(s->counter)) < 0 && errno != EAGAIN)
			die("eventfd read");
		return;
	case S_UDP: {
		/* each success is one datagram; loopback delivers it before send returns
		 * unless the receive buffer was full (then it is dropped) */
		unsigned char buf[65536];
		long long udp_deadline = now_ms() + 100;

		s->datagrams = 0;
		if (s->rx < 0)
			return;
		for (;;) {
			ssize_t r = recv(s->rx, buf, sizeof(buf), MSG_DONTWAIT);

			if (r < 0) {
				if (errno == EINTR)
					continue;
				if (s->datagrams < successes && now_ms() < udp_deadline) {
					struct pollfd pf = { s->rx, POLLIN, 0 };

					poll(&pf, 1, 10);
					continue;
				}
				break;
			}
			got_append(s, buf, (size_t)r);
			s->datagrams++;
		}
		return;
	}
	default:
		break;
	}
	if (slot_drained(s->kind)) {
		for (;;) {
			int enough;

			pthread_mutex_lock(&pool_lock);
			enough = s->got_len >= s->want_len || s->rx_eof || s->rx < 0;
			pthread_mutex_unlock(&pool_lock);
			if (enough || now_ms() > deadline)
				break;
			usleep(100);
		}
		read_now(s); /* what may have arrived meanwhile */
		if (slot_is_tcp(s->kind) && !s->tx_closed)
			collect_tcp_in_flight(s, fd, deadline);
		return;
	}
	if (s->rx < 0)
		return;
	/* read here: the receiver was not drained while the call ran */
	for (;;) {
		int end = read_available(s, s->rx);
		struct pollfd pf = { s->rx, POLLIN, 0 };

		if (end || s->got_len >= s->want_len || now_ms() > deadline)
			break;
		poll(&pf, 1, 10);
	}
	if (slot_is_tcp(s->kind) && !s->tx_closed && s->got_len >= s->want_len)
		collect_tcp_in_flight(s, fd, deadline);
}

static void empty_receiver(struct slot *s, int fd)
{
	if (s->kind == S_UDP) {
		unsigned char buf[65536];

		while (s->rx >= 0 && recv(s->rx, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
			;
		return;
	}
	if (s->kind == S_FILE || s->kind == S_FILE_APPEND) {
		if (ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET))
			die("truncate");
		return;
	}
	if (s->kind == S_EVENTFD) {
		unsigned long long v;

		if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			die("eventfd read");
		return;
	}
	read_now(s);
}

void pool_restore(void)
{
	int p, k;

	for (p = 0; p < 2; p++)
		for (k = 0; k < NSLOTS; k++) {
			struct slot *s = &pools[p].s[k];

			if (s->broken || s->tx_closed) {
				pool_close_slot(p, k);
				pool_open_slot(p, k);
			} else {
				empty_receiver(s, pools[p].base + k);
			}
			pthread_mutex_lock(&pool_lock);
			s->got_len = 0;
			s->want_len = 0;
			s->file_checked = 0;
			pthread_mutex_unlock(&pool_lock);
		}
}

void pool_init(void)
{
	socklen_t alen = sizeof(tcp_addr);
	pthread_t thr;
	int p, k;

	drain_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (drain_epfd < 0)
		die("epoll_create1");
	tcp_addr.sin_family = AF_INET;
	tcp_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	tcp_listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (tcp_listener < 0 || bind(tcp_listener, (struct sockaddr *)&tcp_addr, sizeof(tcp_addr)) ||
	    listen(tcp_listener, 64) ||
	    getsockname(tcp_listener, (struct sockaddr *)&tcp_addr, &alen))
		die("TCP listener");
	for (p = 0; p < 2; p++) {
		pools[p].base = 600 + 100 * p;
		for (k = 0; k < NSLOTS; k++) {
			pools[p].s[k].kind = (enum slot_kind)k;
			pools[p].s[k].rx = -1;
			pool_open_slot(p, k);
		}
	}
	if (pthread_create(&thr, NULL, drain_thread, NULL))
		die("pthread_create");
	pthread_detach(thr);
}
