/* SPDX-License-Identifier: MIT */
/*
 * writevv-relay-loadgen: publisher and viewer load generator for
 * writevv-relay, for tests and benchmarks.  Loopback use only.
 *
 *   publish --to ADDR:PORT|- [--file F] [--rate BITS] [--seconds S] [--bytes N]
 *           [--write-size N]
 *       Send a file, or the self-checking pattern stream, at a fixed bitrate.
 *   view --to ADDR:PORT [--path P] [--conns N] [--seconds S] [--verify]
 *        [--ramp N] [--rcvbuf N]
 *       N HTTP viewers on one epoll; with --verify each checks that its bytes
 *       are a contiguous slice of the pattern stream.  Prints a JSON summary.
 *   stall --to ADDR:PORT [--rcvbuf N] [--seconds S]
 *       A viewer that never reads; exits 0 when the relay drops it.
 *   reset --to ADDR:PORT [--after N]
 *       A viewer that reads N bytes, then resets its connection.
 *   ws --to ADDR:PORT [--path /ws/TOPIC] [--subs N] ...
 *       WebSocket subscribers and a publisher on one epoll, verifying every
 *       message and timing it (wsload.c).
 *
 * The pattern stream is a sequence of 188-byte packets: 0x47, the packet
 * index (64-bit little endian), then 179 bytes of a fixed table rotated by
 * the index, so any slice of it can be located and checked cheaply.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "nofile.h"
#include "wsload.h"

#define PKT 188
#define HDR 9
#define PAY (PKT - HDR) /* 179, prime */

static unsigned char table2[2 * PAY];

static void init_table(void)
{
	uint32_t x = 0x12345678u;
	int i;

	for (i = 0; i < PAY; i++) {
		x = x * 1103515245u + 12345u;
		table2[i] = table2[i + PAY] = (unsigned char)(x >> 16);
	}
}

static inline const unsigned char *payload_of(uint64_t idx)
{
	return table2 + (idx * 7) % PAY;
}

/* Expected byte j (0..187) of packet idx. */
static inline unsigned char pattern_byte(uint64_t idx, unsigned j)
{
	if (j == 0)
		return 0x47;
	if (j < HDR)
		return (unsigned char)(idx >> (8 * (j - 1)));
	return payload_of(idx)[j - HDR];
}

static void pattern_fill(unsigned char *buf, uint64_t off, size_t len)
{
	while (len) {
		uint64_t idx = off / PKT;
		unsigned j = (unsigned)(off % PKT);
		size_t n = PKT - j;

		if (n > len)
			n = len;
		if (j == 0 && n == PKT) {
			buf[0] = 0x47;
			for (int k = 0; k < 8; k++)
				buf[1 + k] = (unsigned char)(idx >> (8 * k));
			memcpy(buf + HDR, payload_of(idx), PAY);
		} else {
			for (size_t k = 0; k < n; k++)
				buf[k] = pattern_byte(idx, j + (unsigned)k);
		}
		buf += n;
		off += n;
		len -= n;
	}
}

/* Check buf[0..len) against the pattern at stream offset off. */
static bool pattern_check(const unsigned char *buf, uint64_t off, size_t len)
{
	while (len) {
		uint64_t idx = off / PKT;
		unsigned j = (unsigned)(off % PKT);
		size_t n = PKT - j;

		if (n > len)
			n = len;
		while (n && j < HDR) {
			if (*buf != pattern_byte(idx, j))
				return false;
			buf++, off++, len--, n--, j++;
		}
		if (n) {
			if (memcmp(buf, payload_of(idx) + (j - HDR), n))
				return false;
			buf += n;
			off += n;
			len -= n;
		}
	}
	return true;
}

static double now_s(void)
{
	return (double)now_ns() / 1e9;
}

static int resolve(const char *spec, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[256], *colon;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	const char *h;

	snprintf(host, sizeof(host), "%s", spec);
	colon = strrchr(host, ':');
	if (!colon)
		return -1;
	*colon = 0;
	h = host;
	if (h[0] == '[') {
		h++;
		host[strlen(host) - 1] = 0;
	}
	if (getaddrinfo(h, colon + 1, &hints, &res))
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int connect_to(const struct sockaddr_storage *ss, socklen_t sl, int rcvbuf, bool nb)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nb ? SOCK_NONBLOCK : 0), 0);

	if (fd < 0)
		return -1;
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (connect(fd, (const struct sockaddr *)ss, sl) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- options ------------------------------------------------------------ */

static struct {
	const char *to, *file, *path;
	double rate, seconds;
	unsigned long long bytes, after;
	int conns, ramp, rcvbuf;
	size_t write_size;
	bool verify;
} O = { .path = "/", .conns = 1, .ramp = 500, .write_size = 1316, .seconds = 30 };

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "to", 1, NULL, 't' }, { "file", 1, NULL, 'f' }, { "path", 1, NULL, 'p' },
		{ "rate", 1, NULL, 'r' }, { "seconds", 1, NULL, 's' }, { "bytes", 1, NULL, 'b' },
		{ "after", 1, NULL, 'a' }, { "conns", 1, NULL, 'n' }, { "ramp", 1, NULL, 'R' },
		{ "rcvbuf", 1, NULL, 'B' }, { "write-size", 1, NULL, 'w' },
		{ "verify", 0, NULL, 'v' }, { NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 't': O.to = optarg; break;
		case 'f': O.file = optarg; break;
		case 'p': O.path = optarg; break;
		case 'r': O.rate = strtod(optarg, NULL); break;
		case 's': O.seconds = strtod(optarg, NULL); break;
		case 'b': O.bytes = strtoull(optarg, NULL, 10); break;
		case 'a': O.after = strtoull(optarg, NULL, 10); break;
		case 'n': O.conns = atoi(optarg); break;
		case 'R': O.ramp = atoi(optarg); break;
		case 'B': O.rcvbuf = atoi(optarg); break;
		case 'w': O.write_size = strtoul(optarg, NULL, 10); break;
		case 'v': O.verify = true; break;
		default: exit(2);
		}
	}
	if (!O.to) {
		fprintf(stderr, "loadgen: --to is required\n");
		exit(2);
	}
	if (O.write_size == 0 || O.write_size > (1 << 20))
		O.write_size = 1316;
}

/* ---- publish ------------------------------------------------------------ */

static int cmd_publish(void)
{
	unsigned char *buf = malloc(O.write_size), *file = NULL;
	uint64_t sent = 0, total = O.bytes;
	size_t flen = 0;
	double t0, deadline;
	int fd;

	if (O.file) {
		FILE *f = fopen(O.file, "rb");
		struct stat st;

		if (!f || fstat(fileno(f), &st) < 0) {
			perror(O.file);
			return 1;
		}
		flen = (size_t)st.st_size;
		file = malloc(flen ? flen : 1);
		if (fread(file, 1, flen, f) != flen) {
			perror(O.file);
			return 1;
		}
		fclose(f);
		total = flen;
	}
	if (strcmp(O.to, "-") == 0) {
		fd = STDOUT_FILENO;
	} else {
		struct sockaddr_storage ss;
		socklen_t sl;
		double until = now_s() + 10;

		if (resolve(O.to, &ss, &sl) < 0) {
			fprintf(stderr, "loadgen: cannot resolve %s\n", O.to);
			return 1;
		}
		for (;;) {
			fd = connect_to(&ss, sl, 0, false);
			if (fd >= 0)
				break;
			if (now_s() > until) {
				perror("loadgen: connect");
				return 1;
			}
			usleep(50000);
		}
		{
			int one = 1; /* pace every write, like a live encoder */

			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
	}
	t0 = now_s();
	deadline = O.seconds > 0 && !O.file && !O.bytes ? t0 + O.seconds : 0;
	for (;;) {
		size_t n = O.write_size;
		ssize_t w;

		if (total && sent >= total)
			break;
		if (deadline && now_s() >= deadline)
			break;
		if (total && total - sent < n)
			n = (size_t)(total - sent);
		if (O.rate > 0) {
			double due = t0 + (double)(sent + n) * 8.0 / O.rate;
			double now = now_s();

			if (due > now) {
				struct timespec ts;
				double d = due - now;

				ts.tv_sec = (time_t)d;
				ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
				nanosleep(&ts, NULL);
			}
		}
		if (file)
			memcpy(buf, file + sent, n);
		else
			pattern_fill(buf, sent, n);
		for (size_t off = 0; off < n; off += (size_t)w) {
			w = write(fd, buf + off, n - off);
			if (w < 0) {
				if (errno == EINTR) {
					w = 0;
					continue;
				}
				perror("loadgen: write");
				return 1;
			}
		}
		sent += n;
	}
	if (fd != STDOUT_FILENO) {
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	fprintf(stderr, "loadgen: published %llu bytes in %.2f s\n", (unsigned long long)sent,
		now_s() - t0);
	free(buf);
	free(file);
	return 0;
}

/* ---- view --------------------------------------------------------------- */

enum cstate { C_CONNECTING, C_HEADER, C_BODY, C_DONE };

struct conn {
	int fd;
	enum cstate st;
	bool synced, failed, got200, eof, err;
	uint64_t off, bytes;
	size_t hlen;
	unsigned char pre[2 * PKT];
	size_t prelen;
	char hdr[1024];
};

static struct {
	int connected, ok200, eof, errors, verify_fail, open;
	uint64_t bytes;
} S;

/* Locate the stream offset of c->pre[0]; check everything seen so far. */
static void try_sync(struct conn *c)
{
	size_t k;

	if (c->prelen < PKT + PKT - 1 && !c->eof)
		return;
	for (k = 0; k < PKT && k + PKT <= c->prelen; k++) {
		uint64_t idx = 0;

		if (c->pre[k] != 0x47)
			continue;
		for (int b = 0; b < 8; b++)
			idx |= (uint64_t)c->pre[k + 1 + b] << (8 * b);
		if (idx > (1ULL << 40) || (k && idx == 0))
			continue;
		if (!pattern_check(c->pre + k, idx * PKT, PKT))
			continue;
		if (!pattern_check(c->pre, idx * PKT - k, c->prelen)) {
			c->failed = true;
			return;
		}
		c->synced = true;
		c->off = idx * PKT - k + c->prelen;
		return;
	}
	if (c->prelen >= PKT + PKT - 1)
		c->failed = true;
}

static void body_bytes(struct conn *c, const unsigned char *p, size_t n)
{
	c->bytes += n;
	S.bytes += n;
	if (!O.verify || c->failed)
		return;
	while (n && !c->synced) {
		size_t take = sizeof(c->pre) - c->prelen;

		if (take > n)
			take = n;
		memcpy(c->pre + c->prelen, p, take);
		c->prelen += take;
		p += take;
		n -= take;
		try_sync(c);
		if (c->failed)
			return;
	}
	if (n) {
		if (!pattern_check(p, c->off, n))
			c->failed = true;
		c->off += n;
	}
}

static void conn_finish(int ep, struct conn *c, bool eof)
{
	if (c->st == C_DONE)
		return;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->st = C_DONE;
	S.open--;
	if (eof) {
		c->eof = true;
		S.eof++;
		if (O.verify && !c->synced && !c->failed && c->prelen)
			try_sync(c);
	} else {
		c->err = true;
		S.errors++;
	}
}

static void conn_io(int ep, struct conn *c, uint32_t ev)
{
	static unsigned char buf[256 * 1024];
	char req[512];

	if (c->st == C_CONNECTING) {
		int err = 0;
		socklen_t sl = sizeof(err);
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
		if (err || !(ev & EPOLLOUT)) {
			conn_finish(ep, c, false);
			return;
		}
		S.connected++;
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: loadgen\r\n\r\n",
			 O.path, O.to);
		if (send(c->fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
			conn_finish(ep, c, false);
			return;
		}
		c->st = C_HEADER;
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
		return;
	}
	for (int rounds = 0; rounds < 4; rounds++) {
		ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		size_t used = 0;

		if (r == 0) {
			conn_finish(ep, c, true);
			return;
		}
		if (r < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_finish(ep, c, false);
			return;
		}
		if (c->st == C_HEADER) {
			char *end;

			while (used < (size_t)r && c->hlen < sizeof(c->hdr) - 1) {
				c->hdr[c->hlen++] = (char)buf[used++];
				c->hdr[c->hlen] = 0;
				if ((end = strstr(c->hdr, "\r\n\r\n")))
					break;
			}
			if (!strstr(c->hdr, "\r\n\r\n")) {
				if (c->hlen >= sizeof(c->hdr) - 1)
					conn_finish(ep, c, false);
				continue;
			}
			c->got200 = strncmp(c->hdr, "HTTP/1.1 200 ", 13) == 0;
			if (c->got200)
				S.ok200++;
			c->st = C_BODY;
		}
		if ((size_t)r > used)
			body_bytes(c, buf + used, (size_t)r - used);
		if ((size_t)r < sizeof(buf))
			return;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmd_view(void)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct conn *cs = calloc((size_t)O.conns, sizeof(*cs));
	struct epoll_event evs[512];
	uint64_t *per = malloc(sizeof(uint64_t) * (size_t)(O.conns ? O.conns : 1));
	double t0 = now_s(), end = t0 + O.seconds, next_ramp = t0;
	int ep = epoll_create1(EPOLL_CLOEXEC), started = 0, i, n;

	if (!cs || !per || resolve(O.to, &ss, &sl) < 0) {
		fprintf(stderr, "loadgen: cannot resolve %s\n", O.to);
		return 1;
	}
	nofile_raise_to_hard(NULL);
	for (;;) {
		double now = now_s();

		if (started < O.conns && now >= next_ramp) {
			int batch = O.ramp / 10 > 0 ? O.ramp / 10 : 1;

			for (i = 0; i < batch && started < O.conns; i++, started++) {
				struct conn *c = &cs[started];
				struct epoll_event e = { .events = EPOLLOUT, .data.ptr = c };

				c->fd = connect_to(&ss, sl, O.rcvbuf, true);
				if (c->fd < 0) {
					c->st = C_DONE;
					c->err = true;
					S.errors++;
					continue;
				}
				S.open++;
				epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
			}
			next_ramp = now + 0.1;
		}
		if (started == O.conns && S.open == 0)
			break;
		if (now >= end)
			break;
		n = epoll_wait(ep, evs, 512, started < O.conns ? 20 : 200);
		for (i = 0; i < n; i++)
			conn_io(ep, evs[i].data.ptr, evs[i].events);
	}
	for (i = 0; i < O.conns; i++) {
		struct conn *c = &cs[i];

		if (c->st != C_DONE && c->fd >= 0)
			close(c->fd);
		if (c->failed)
			S.verify_fail++;
		if (O.verify && c->got200 && c->bytes >= PKT * 2 && !c->synced && !c->failed)
			S.verify_fail++;
		per[i] = c->bytes;
	}
	qsort(per, (size_t)O.conns, sizeof(*per), cmp_u64);
	printf("{\"conns\":%d,\"connected\":%d,\"ok200\":%d,\"eof\":%d,\"errors\":%d,"
	       "\"still_open\":%d,\"verify_fail\":%d,\"bytes\":%llu,\"min\":%llu,"
	       "\"median\":%llu,\"max\":%llu,\"seconds\":%.2f}\n",
	       O.conns, S.connected, S.ok200, S.eof, S.errors, S.open, S.verify_fail,
	       (unsigned long long)S.bytes, (unsigned long long)(O.conns ? per[0] : 0),
	       (unsigned long long)(O.conns ? per[O.conns / 2] : 0),
	       (unsigned long long)(O.conns ? per[O.conns - 1] : 0), now_s() - t0);
	fflush(stdout);
	return S.verify_fail || S.ok200 != O.conns ? 1 : 0;
}

/* ---- stall / reset ------------------------------------------------------ */

static int open_viewer(int rcvbuf, char *first, size_t firstsz, size_t *firstlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char req[512];
	int fd;
	ssize_t r;

	if (resolve(O.to, &ss, &sl) < 0)
		return -1;
	fd = connect_to(&ss, sl, rcvbuf, false);
	if (fd < 0)
		return -1;
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", O.path, O.to);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
		return -1;
	/* Read just the response head (it arrives before any stream byte). */
	*firstlen = 0;
	while (*firstlen < firstsz - 1) {
		r = recv(fd, first + *firstlen, 1, 0);
		if (r <= 0)
			return -1;
		*firstlen += 1;
		first[*firstlen] = 0;
		if (strstr(first, "\r\n\r\n"))
			break;
	}
	if (strncmp(first, "HTTP/1.1 200 ", 13) != 0)
		return -1;
	return fd;
}

static int cmd_stall(void)
{
	char head[1024];
	size_t hl;
	int fd = open_viewer(O.rcvbuf ? O.rcvbuf : 4096, head, sizeof(head), &hl);
	double t0 = now_s();
	struct pollfd p;

	if (fd < 0) {
		fprintf(stderr, "loadgen stall: could not join\n");
		return 1;
	}
	printf("joined\n");
	fflush(stdout);
	p.fd = fd;
	p.events = POLLRDHUP; /* RDHUP/HUP/ERR only: we never read */
	while (now_s() - t0 < O.seconds) {
		int err = 0;
		socklen_t el = sizeof(err);

		if (poll(&p, 1, 100) > 0 && (p.revents & (POLLERR | POLLHUP))) {
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
			printf("dropped after %.2f s (%s)\n", now_s() - t0,
			       err ? strerror(err) : "closed");
			return 0;
		}
	}
	printf("not dropped within %.0f s\n", O.seconds);
	return 1;
}

static int cmd_reset(void)
{
	char head[1024], buf[65536];
	size_t hl;
	unsigned long long got = 0;
	int fd = open_viewer(0, head, sizeof(head), &hl);
	double t0 = now_s();
	struct linger lg = { 1, 0 };

	if (fd < 0) {
		fprintf(stderr, "loadgen reset: could not join\n");
		return 1;
	}
	while (got < O.after && now_s() - t0 < O.seconds) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);

		if (r <= 0)
			break;
		got += (unsigned long long)r;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	printf("reset after %llu bytes\n", got);
	return got >= O.after ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2) {
		fprintf(stderr, "usage: %s publish|view|stall|reset|ws --to ADDR:PORT [options]\n",
			argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	cmd = argv[1];
	if (!strcmp(cmd, "ws")) /* its own options: wsload.c */
		return wsload_main(argc - 1, argv + 1);
	init_table();
	optind = 2;
	parse(argc, argv);
	if (!strcmp(cmd, "publish"))
		return cmd_publish();
	if (!strcmp(cmd, "view"))
		return cmd_view();
	if (!strcmp(cmd, "stall"))
		return cmd_stall();
	if (!strcmp(cmd, "reset"))
		return cmd_reset();
	fprintf(stderr, "loadgen: unknown command %s\n", cmd);
	return 2;
}
