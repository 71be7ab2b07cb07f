/* SPDX-License-Identifier: MIT */
/*
 * writevv-relay-loadgen ws: a WebSocket broadcast load client.  Loopback or
 * same-host use (the send timestamps are CLOCK_MONOTONIC of this host).
 *
 *   ws --to HOST:PORT [--path /ws/TOPIC] [--subs N] [--sizes 64,1024,16384]
 *      [--rates 100,100,20] [--seconds S] [--warmup S] [--count N] [--max]
 *      [--step-seconds S] [--step-factor F] [--p99-bound-ms MS] [--grace-ms MS]
 *      [--server-pid PID] [--parallel N] [--inject-corrupt N]
 *
 * N subscribers and one publisher, all WebSocket clients of PATH on one
 * epoll (RFC 6455 handshake with the Sec-WebSocket-Accept check; the
 * publisher's frames are masked).  The publisher sends binary messages of
 * the server's topic as WebSocket frames (the relay needs --client-publish);
 * it is a subscriber too (every server sends to it; it is not counted).
 *
 * Each message: seq (u64 LE), send time (CLOCK_MONOTONIC ns, u64), its size
 * (u32), its phase (u32), then pattern bytes that depend on seq.  Every
 * subscriber checks every frame: opcode, size, pattern, and that seqs come in
 * order from 0 with no gap and no duplicate.  Publish-to-receive latency goes
 * into a log-linear histogram (64 sub-buckets per power of two, ~1.6%).
 *
 * For each size: a warm-up phase, then a fixed-rate phase (--seconds at the
 * size's --rates entry, or exactly --count messages), then with --max a
 * search for the highest rate the server sustains: steps of --step-seconds
 * (at least 8 messages), from the fixed rate, the rate times --step-factor
 * each step; after the first step that fails, two bisection steps (geometric
 * mean) between the last good and the first bad rate (or, if the first step
 * fails, one step at the rate / --step-factor).
 * Before each phase, whatever earlier phases still have on the way must
 * arrive (up to 20 s), so a server's backlog is not charged to the next step;
 * if they do not, stderr says where they are (unread in a subscriber's
 * socket, mid-frame in this client, or never sent by the server).  The same
 * wait follows the last phase; "drained" in the JSON says whether it ended
 * with every subscriber holding every message.
 * A step is sustained when, within --grace-ms (2000) after its last message was
 * published, every subscriber got every message of the step, nothing failed
 * verification, its p99 latency is at most --p99-bound-ms (500), and the publisher
 * wrote at least 95% of the step's messages (the server reads it fast
 * enough).  Each phase reports the server's CPU (utime+stime of
 * /proc/PID/stat with --server-pid) from the step's start until its last
 * delivery, and deliveries per CPU-second of the server.
 *
 * --inject-corrupt N (the client's own test) flips a bit in the last byte of
 * one message in N: each subscriber must count it as a verification failure
 * and, since it does not count as received, the next one as a gap of one.
 *
 * Prints one JSON object.  Exit status 0 iff every subscriber connected and
 * every non-warm-up fixed-rate phase delivered everything, verified.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "wsload.h"

#define MSG_HDR 24
#define PAT_PERIOD 251 /* prime: the pattern of seq starts at seq % 251 */
#define MAX_SIZE (1u << 20)
#define HIST_SUB 64
#define HIST_N (HIST_SUB * 60)
#define MAX_PHASES 128
#define MAX_SIZES 8
#define RBUF (256 * 1024)
#define MIN_MESSAGES 8
#define PUB_HIGH (1u << 20) /* stop composing while this much is unsent */

enum cstate { C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSED };

struct conn {
	int fd;
	enum cstate st;
	bool is_pub;
	bool bad; /* the current frame failed a check */
	char accept[32];
	char *hs;  /* handshake response so far */
	unsigned hslen;
	unsigned char hdr[14], hlen, hneed, opcode;
	unsigned char mh[MSG_HDR];
	uint64_t plen, pgot;
	uint64_t seq;    /* of the current frame, once its header is in */
	uint64_t next_seq;
	uint32_t phase;
};

struct phase {
	const char *kind; /* warmup, fixed, step */
	unsigned size;
	double rate;
	uint64_t seq0, published, target;
	uint64_t delivered, gaps, dups, verify_fail;
	double t_start, t_pub_end, t_done;
	double cpu_s, client_cpu_s;
	uint64_t delivered_in_time; /* by the verdict: within the grace after publishing */
	bool ok, sustained;
	uint32_t hist[HIST_N];
	uint64_t hist_max;
};

static struct {
	const char *to, *path;
	int subs, parallel, server_pid;
	unsigned sizes[MAX_SIZES];
	double rates[MAX_SIZES];
	int nsizes, nrates;
	double seconds, warmup, step_seconds, step_factor, p99_bound_ms, grace_ms, drain_s;
	long count;
	long inject; /* the client's own test: corrupt one message in N */
	bool max;
} O = {
	.path = "/ws/bench", .subs = 100, .parallel = 256, .seconds = 5, .warmup = 1,
	.step_seconds = 1.5, .step_factor = 2, .p99_bound_ms = 500, .grace_ms = 2000,
	.drain_s = 20,
	.count = -1,
};

static struct conn *subs, pubc;
static int ep;
static unsigned char pat[MAX_SIZE + PAT_PERIOD];
static unsigned char rbuf[RBUF];
static struct phase *P;
static int nphases;
static uint64_t pub_seq;
static unsigned char *pub_out;
static size_t pub_len, pub_off, pub_cap;
static int open_subs, closed_subs, failed_hs;
static uint64_t ctl_frames;
static long clk_tck;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double now_s(void)
{
	return (double)now_ns() / 1e9;
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- histogram ------------------------------------------------------- */

static unsigned hist_index(uint64_t v)
{
	unsigned m, shift;

	if (v < HIST_SUB)
		return (unsigned)v;
	m = 63u - (unsigned)__builtin_clzll(v);
	shift = m - 6;
	return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

static double hist_value(unsigned idx)
{
	unsigned shift;

	if (idx < HIST_SUB)
		return idx;
	shift = idx / HIST_SUB - 1;
	return (double)(((uint64_t)(idx % HIST_SUB) + HIST_SUB) << shift) + (double)(1ull << shift) / 2;
}

static double hist_pct(const struct phase *p, double q)
{
	uint64_t total = 0, rank, seen = 0;

	for (unsigned i = 0; i < HIST_N; i++)
		total += p->hist[i];
	if (!total)
		return 0;
	rank = (uint64_t)(q * (double)total + 0.999999);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_N; i++) {
		seen += p->hist[i];
		if (seen >= rank)
			return hist_value(i);
	}
	return (double)p->hist_max;
}

/* ---- the server's CPU ------------------------------------------------ */

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double server_cpu_s(void)
{
	char path[64], buf[1024], *s;
	unsigned long ut, st;
	ssize_t n;
	int fd;

	if (O.server_pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", O.server_pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	s = strrchr(buf, ')'); /* the name may hold spaces */
	if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)clk_tck;
}

/* ---- connections ----------------------------------------------------- */

static int resolve(const char *spec, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[256], *colon;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;

	snprintf(host, sizeof(host), "%s", spec);
	colon = strrchr(host, ':');
	if (!colon)
		return -1;
	*colon = 0;
	if (getaddrinfo(host, colon + 1, &hints, &res))
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void b64(const unsigned char *in, int n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, n);
}

static void conn_close(struct conn *c, bool counted_open)
{
	if (c->st == C_CLOSED)
		return;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->st = C_CLOSED;
	free(c->hs);
	c->hs = NULL;
	if (!c->is_pub) {
		if (counted_open) {
			open_subs--;
			closed_subs++;
		} else {
			failed_hs++;
		}
	}
}

static int conn_start(struct conn *c, const struct sockaddr_storage *ss, socklen_t sl)
{
	struct epoll_event e = { .events = EPOLLOUT, .data.ptr = c };
	int one = 1;

	c->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)ss, sl) < 0 && errno != EINPROGRESS) {
		int e2 = errno;

		close(c->fd);
		return -e2;
	}
	c->st = C_CONNECTING;
	c->hlen = 0;
	c->hneed = 2;
	return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) < 0 ? -errno : 0;
}

static void send_handshake(struct conn *c)
{
	unsigned char key[16], sha[SHA_DIGEST_LENGTH];
	char k64[32], cat[128], req[512];
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
	int err = 0, n;
	socklen_t el = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
		conn_close(c, false);
		return;
	}
	for (int i = 0; i < 16; i++)
		key[i] = (unsigned char)random();
	b64(key, 16, k64);
	snprintf(cat, sizeof(cat), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", k64);
	SHA1((const unsigned char *)cat, strlen(cat), sha);
	b64(sha, SHA_DIGEST_LENGTH, c->accept);
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", O.path, O.to, k64);
	if (write(c->fd, req, (size_t)n) != n) { /* a fresh socket takes 200 bytes */
		conn_close(c, false);
		return;
	}
	c->hs = malloc(4096);
	c->hslen = 0;
	if (!c->hs) {
		conn_close(c, false);
		return;
	}
	c->st = C_HANDSHAKE;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void frames(struct conn *c, const unsigned char *b, size_t n, uint64_t t);

/* The response so far: 101, the right Sec-WebSocket-Accept, then frames. */
static void handshake_in(struct conn *c, const unsigned char *b, size_t n, uint64_t t)
{
	size_t take = n < 4095 - c->hslen ? n : 4095 - c->hslen;
	char *end, *h;
	size_t used;
	bool ok = false;

	memcpy(c->hs + c->hslen, b, take);
	c->hslen += (unsigned)take;
	c->hs[c->hslen] = 0;
	end = strstr(c->hs, "\r\n\r\n");
	if (!end) {
		if (c->hslen >= 4095)
			conn_close(c, false);
		return;
	}
	*end = 0;
	if (!strncmp(c->hs, "HTTP/1.1 101", 12)) {
		for (h = strstr(c->hs, "\r\n"); h; h = strstr(h + 2, "\r\n")) {
			if (!strncasecmp(h + 2, "Sec-WebSocket-Accept:", 21)) {
				char *v = h + 23;

				while (*v == ' ' || *v == '\t')
					v++;
				ok = !strncmp(v, c->accept, 28) &&
				     (v[28] == 0 || v[28] == '\r' || v[28] == ' ');
				break;
			}
		}
	}
	if (!ok) {
		fprintf(stderr, "wsload: handshake refused: %.80s\n", c->hs);
		conn_close(c, false);
		return;
	}
	used = (size_t)(end + 4 - c->hs) - (c->hslen - take); /* of this read */
	free(c->hs);
	c->hs = NULL;
	c->st = C_OPEN;
	if (!c->is_pub)
		open_subs++;
	if (used < n)
		frames(c, b + used, n - used, t);
}

static struct phase *phase_of(uint32_t id)
{
	return id < (uint32_t)nphases ? &P[id] : NULL;
}

/* A data frame of a subscriber is complete. */
static void frame_done(struct conn *c, uint64_t t)
{
	struct phase *p;
	uint64_t ts, lat;

	if (c->is_pub)
		return;
	if (c->opcode != 2 || c->plen < MSG_HDR) {
		c->bad = true;
		p = phase_of(nphases - 1);
		if (p)
			p->verify_fail++;
		return;
	}
	p = phase_of(c->phase);
	if (!p) {
		if (nphases)
			P[nphases - 1].verify_fail++;
		return;
	}
	if (c->bad) {
		p->verify_fail++;
		return;
	}
	if (c->seq < c->next_seq) {
		p->dups++;
		return;
	}
	if (c->seq > c->next_seq)
		p->gaps += c->seq - c->next_seq;
	c->next_seq = c->seq + 1;
	ts = get64(c->mh + 8);
	lat = t > ts ? t - ts : 0;
	p->hist[hist_index(lat)]++;
	if (lat > p->hist_max)
		p->hist_max = lat;
	p->delivered++;
}

/* Server frames, streamed: any split of them across reads. */
static void frames(struct conn *c, const unsigned char *b, size_t n, uint64_t t)
{
	while (n) {
		if (c->hlen < c->hneed) {
			c->hdr[c->hlen++] = *b++;
			n--;
			if (c->hlen == 2) {
				unsigned l7 = c->hdr[1] & 0x7f;

				c->hneed = (unsigned char)(2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) +
							   (c->hdr[1] & 0x80 ? 4 : 0));
			}
			if (c->hlen < c->hneed)
				continue;
			{
				unsigned l7 = c->hdr[1] & 0x7f;

				c->plen = l7 < 126 ? l7 : l7 == 126 ? (uint64_t)c->hdr[2] << 8 | c->hdr[3] : 0;
				if (l7 == 127)
					for (int i = 0; i < 8; i++)
						c->plen = c->plen << 8 | c->hdr[2 + i];
			}
			c->opcode = c->hdr[0] & 0x0f;
			c->pgot = 0;
			/* server frames: FIN, no RSV, unmasked, one frame per message */
			c->bad = (c->hdr[0] & 0xf0) != 0x80 || (c->hdr[1] & 0x80);
			if (c->opcode >= 8) {
				ctl_frames++;
				if (c->opcode == 8) { /* the server closes */
					conn_close(c, true);
					return;
				}
			}
			if (c->plen > MAX_SIZE)
				c->bad = true;
			if (c->plen == 0)
				goto done;
			continue;
		}
		{
			uint64_t left = c->plen - c->pgot;
			size_t k = left < n ? (size_t)left : n;

			if (c->opcode < 8 && !c->is_pub) {
				size_t i = 0;

				while (i < k && c->pgot < MSG_HDR) {
					c->mh[c->pgot++] = b[i++];
					if (c->pgot == MSG_HDR) {
						c->seq = get64(c->mh);
						c->phase = get32(c->mh + 20);
						if (get32(c->mh + 16) != c->plen)
							c->bad = true;
					}
				}
				if (i < k) {
					if (!c->bad && memcmp(b + i, pat + c->seq % PAT_PERIOD +
							      (c->pgot - MSG_HDR), k - i))
						c->bad = true;
					c->pgot += k - i;
				}
			} else {
				c->pgot += k;
			}
			b += k;
			n -= k;
			if (c->pgot < c->plen)
				continue;
		}
done:
		if (c->opcode < 8)
			frame_done(c, t);
		c->hlen = 0;
		c->hneed = 2;
	}
}

static void conn_io(struct conn *c, uint32_t events)
{
	if (c->st == C_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			send_handshake(c);
		return;
	}
	for (int rounds = 0; rounds < 4 && c->st != C_CLOSED; rounds++) {
		ssize_t r = read(c->fd, rbuf, sizeof(rbuf));
		uint64_t t = now_ns();

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			conn_close(c, c->st == C_OPEN);
			return;
		}
		if (c->st == C_HANDSHAKE)
			handshake_in(c, rbuf, (size_t)r, t);
		else
			frames(c, rbuf, (size_t)r, t);
		if ((size_t)r < sizeof(rbuf))
			return;
	}
}

/* ---- the publisher --------------------------------------------------- */

static bool pub_compose(unsigned size, uint32_t phase)
{
	unsigned char *f, mask[4];
	size_t hl = size < 126 ? 2 : size < 65536 ? 4 : 10;
	uint32_t m = (uint32_t)random();
	uint64_t t;

	if (pub_len + hl + 4 + size > pub_cap) {
		size_t cap = pub_cap ? pub_cap : (2u << 20);
		unsigned char *nb;

		if (pub_off) {
			memmove(pub_out, pub_out + pub_off, pub_len - pub_off);
			pub_len -= pub_off;
			pub_off = 0;
		}
		while (pub_len + hl + 4 + size > cap)
			cap *= 2;
		if (cap != pub_cap) {
			nb = realloc(pub_out, cap);
			if (!nb)
				return false;
			pub_out = nb;
			pub_cap = cap;
		}
	}
	f = pub_out + pub_len;
	f[0] = 0x82; /* FIN, binary */
	if (hl == 2) {
		f[1] = (unsigned char)(0x80 | size);
	} else if (hl == 4) {
		f[1] = 0x80 | 126;
		f[2] = (unsigned char)(size >> 8);
		f[3] = (unsigned char)size;
	} else {
		f[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			f[2 + i] = (unsigned char)((uint64_t)size >> (56 - 8 * i));
	}
	memcpy(mask, &m, 4);
	memcpy(f + hl, mask, 4);
	f += hl + 4;
	t = now_ns();
	put64(f, pub_seq);
	put64(f + 8, t);
	put32(f + 16, size);
	put32(f + 20, phase);
	memcpy(f + MSG_HDR, pat + pub_seq % PAT_PERIOD, size - MSG_HDR);
	if (O.inject > 0 && pub_seq % (uint64_t)O.inject == (uint64_t)O.inject / 2)
		f[size - 1] ^= 0x20;
	{
		uint64_t m8;
		size_t i = 0;

		memcpy(&m8, mask, 4);
		memcpy((unsigned char *)&m8 + 4, mask, 4);
		for (; i + 8 <= size; i += 8) {
			uint64_t v;

			memcpy(&v, f + i, 8);
			v ^= m8;
			memcpy(f + i, &v, 8);
		}
		for (; i < size; i++)
			f[i] ^= mask[i & 3];
	}
	pub_len += hl + 4 + size;
	pub_seq++;
	return true;
}

static void pub_flush(void)
{
	while (pub_off < pub_len && pubc.st == C_OPEN) {
		ssize_t w = send(pubc.fd, pub_out + pub_off, pub_len - pub_off, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR)
				conn_close(&pubc, false);
			return;
		}
		pub_off += (size_t)w;
	}
	if (pub_off == pub_len)
		pub_off = pub_len = 0;
}

/* ---- the event loop -------------------------------------------------- */

static void poll_once(int timeout_ms)
{
	struct epoll_event evs[1024];
	int n = epoll_wait(ep, evs, 1024, timeout_ms);

	for (int i = 0; i < n; i++)
		conn_io(evs[i].data.ptr, evs[i].events);
}

static uint64_t expected_of(const struct phase *p)
{
	return p->published * (uint64_t)open_subs;
}

/* Publish a phase at its rate; then wait (up to grace) for its deliveries. */
static void run_phase(struct phase *p, double seconds, long count, double grace_s)
{
	uint32_t id = (uint32_t)(p - P);
	double t0, t, deadline;
	double cpu0 = server_cpu_s(), self0 = self_cpu_s();

	p->seq0 = pub_seq;
	/* a time-bound phase has at least MIN_MESSAGES: a rate needs some */
	if (count < 0 && p->rate * seconds < MIN_MESSAGES)
		seconds = MIN_MESSAGES / p->rate;
	p->target = count >= 0 ? (uint64_t)count : (uint64_t)(p->rate * seconds + 0.5);
	if (p->target < 1)
		p->target = 1;
	t0 = p->t_start = now_s();
	for (;;) {
		uint64_t due;

		t = now_s();
		due = (uint64_t)((t - t0) * p->rate) + 1;
		if (due > p->target)
			due = p->target;
		while (p->published < due && pub_len - pub_off < PUB_HIGH && pubc.st == C_OPEN) {
			if (!pub_compose(p->size, id))
				break;
			p->published++;
		}
		pub_flush();
		if (pubc.st != C_OPEN)
			break;
		if (p->published >= p->target && pub_len == 0)
			break;
		/* a time-bound phase ends at its time even if the server did not read */
		if (count < 0 && t >= t0 + seconds + 0.5)
			break;
		poll_once(1);
	}
	p->t_pub_end = now_s();
	deadline = p->t_pub_end + grace_s;
	while ((pub_len || p->delivered + p->verify_fail < expected_of(p)) && now_s() < deadline &&
	       open_subs > 0 && pubc.st == C_OPEN) {
		pub_flush();
		poll_once(pub_len ? 1 : 5);
	}
	p->t_done = now_s();
	if (pub_len) { /* the server did not read what was published in time */
		fprintf(stderr, "wsload: the server stopped reading the publisher\n");
		conn_close(&pubc, false);
	}
	p->cpu_s = server_cpu_s() - cpu0;
	p->client_cpu_s = self_cpu_s() - self0;
	p->delivered_in_time = p->delivered;
	p->ok = p->published && p->delivered == expected_of(p) && !p->verify_fail && !p->gaps &&
		!p->dups;
}

static struct phase *new_phase(const char *kind, unsigned size, double rate)
{
	struct phase *p;

	if (nphases >= MAX_PHASES)
		return NULL;
	p = &P[nphases++];
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->size = size;
	p->rate = rate;
	return p;
}

/* Where the missing messages are when a drain times out: unread in a
 * subscriber's socket (this client), mid-frame here, or not sent at all (the
 * server, or the publisher's own socket). */
static void drain_report(void)
{
	int lagging = 0, unread = 0, midframe = 0, shown = 0;
	int pub_inq = 0, pub_outq = 0;

	if (pubc.st != C_CLOSED) {
		ioctl(pubc.fd, SIOCINQ, &pub_inq);
		ioctl(pubc.fd, SIOCOUTQ, &pub_outq);
	}
	for (int i = 0; i < O.subs; i++) {
		struct conn *c = &subs[i];
		int inq = 0;

		if (c->st != C_OPEN || c->next_seq >= pub_seq)
			continue;
		lagging++;
		ioctl(c->fd, SIOCINQ, &inq);
		if (inq)
			unread++;
		if (c->hlen) /* 0 between frames (pgot keeps the last frame's) */
			midframe++;
		if (shown++ < 5)
			fprintf(stderr, "wsload: sub %d fd %d next_seq %llu of %llu, unread %d, "
				"hdr %u/%u, payload %llu/%llu\n", i, c->fd,
				(unsigned long long)c->next_seq, (unsigned long long)pub_seq, inq,
				c->hlen, c->hneed, (unsigned long long)c->pgot,
				(unsigned long long)c->plen);
	}
	fprintf(stderr, "wsload: drain timed out: %d subscribers short, %d with unread bytes, "
		"%d mid-frame; publisher %s, unsent here %zu, its socket: %d unread, %d unacked/unsent\n",
		lagging, unread, midframe, pubc.st == C_OPEN ? "open" : "closed", pub_len - pub_off,
		pub_inq, pub_outq);
}

/* Before a phase: what earlier phases still have on the way arrives first
 * (a server that fell behind must not charge its backlog to the next one). */
static bool drained(double timeout_s)
{
	double deadline = now_s() + timeout_s;

	for (;;) {
		bool all = true;

		for (int i = 0; i < nphases; i++)
			if (P[i].delivered + P[i].verify_fail < expected_of(&P[i]))
				all = false;
		if (all)
			return true;
		if (now_s() >= deadline || open_subs == 0) {
			drain_report();
			return false;
		}
		poll_once(5);
	}
}

static bool step_sustained(const struct phase *p)
{
	return p->ok && (double)p->published >= 0.95 * (double)p->target &&
	       hist_pct(p, 0.99) <= O.p99_bound_ms * 1e6;
}

static void phase_json(const struct phase *p, bool comma)
{
	/* the n messages of a phase span (n - 1) / rate, then the last one's flush */
	double span = p->rate > 0 ? (double)p->target / p->rate : 0;
	double pub_s = p->t_pub_end - p->t_start > span ? p->t_pub_end - p->t_start : span;
	double dps = pub_s > 0 ? (double)p->delivered_in_time / pub_s : 0;

	printf("%s{\"kind\":\"%s\",\"size\":%u,\"rate\":%.1f,\"published\":%llu,"
	       "\"pub_rate\":%.1f,\"expected\":%llu,\"delivered\":%llu,\"gaps\":%llu,\"dups\":%llu,"
	       "\"verify_fail\":%llu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
	       "\"delivered_in_time\":%llu,\"seconds\":%.3f,\"server_cpu_s\":%.3f,"
	       "\"client_cpu_s\":%.3f,\"deliveries_per_s\":%.0f,"
	       "\"deliveries_per_core_s\":%.0f,\"ok\":%s,\"sustained\":%s}",
	       comma ? "," : "", p->kind, p->size, p->rate, (unsigned long long)p->published,
	       pub_s > 0 ? (double)p->published / pub_s : 0, (unsigned long long)expected_of(p),
	       (unsigned long long)p->delivered, (unsigned long long)p->gaps,
	       (unsigned long long)p->dups, (unsigned long long)p->verify_fail,
	       hist_pct(p, 0.5) / 1e3, hist_pct(p, 0.99) / 1e3, (double)p->hist_max / 1e3,
	       (unsigned long long)p->delivered_in_time, p->t_done - p->t_start, p->cpu_s,
	       p->client_cpu_s, dps,
	       p->cpu_s > 0 ? (double)p->delivered_in_time / p->cpu_s : 0, p->ok ? "true" : "false",
	       p->sustained ? "true" : "false");
}

static int parse_list(const char *s, double *out, int max)
{
	int n = 0;
	char *end;

	while (*s && n < max) {
		out[n++] = strtod(s, &end);
		if (end == s)
			return -1;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return n;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: writevv-relay-loadgen ws --to HOST:PORT [--path /ws/TOPIC] [--subs N]\n"
		"       [--sizes 64,1024,16384] [--rates R1,R2,..] [--seconds S] [--warmup S]\n"
		"       [--count N] [--max] [--step-seconds S] [--step-factor F]\n"
		"       [--p99-bound-ms MS] [--grace-ms MS] [--server-pid PID] [--parallel N]\n");
}

int wsload_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "to", required_argument, NULL, 't' }, { "path", required_argument, NULL, 'p' },
		{ "subs", required_argument, NULL, 'n' }, { "sizes", required_argument, NULL, 'z' },
		{ "rates", required_argument, NULL, 'r' }, { "seconds", required_argument, NULL, 's' },
		{ "warmup", required_argument, NULL, 'w' }, { "count", required_argument, NULL, 'c' },
		{ "max", no_argument, NULL, 'm' }, { "step-seconds", required_argument, NULL, 'S' },
		{ "step-factor", required_argument, NULL, 'F' },
		{ "p99-bound-ms", required_argument, NULL, 'B' },
		{ "grace-ms", required_argument, NULL, 'G' },
		{ "server-pid", required_argument, NULL, 'P' },
		{ "parallel", required_argument, NULL, 'j' },
		{ "inject-corrupt", required_argument, NULL, 'I' }, { NULL, 0, NULL, 0 },
	};
	struct sockaddr_storage ss;
	socklen_t sl;
	double sizes_d[MAX_SIZES] = { 1024 };
	int opt, started = 0, pending, i, status = 0;
	bool first = true, drained_end;
	double t_conn, t_ready;

	O.nsizes = 1;
	O.sizes[0] = 1024;
	O.rates[0] = 100;
	O.nrates = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 't': O.to = optarg; break;
		case 'p': O.path = optarg; break;
		case 'n': O.subs = atoi(optarg); break;
		case 'z':
			O.nsizes = parse_list(optarg, sizes_d, MAX_SIZES);
			for (i = 0; i < O.nsizes; i++)
				O.sizes[i] = (unsigned)sizes_d[i];
			break;
		case 'r': O.nrates = parse_list(optarg, O.rates, MAX_SIZES); break;
		case 's': O.seconds = atof(optarg); break;
		case 'w': O.warmup = atof(optarg); break;
		case 'c': O.count = atol(optarg); break;
		case 'm': O.max = true; break;
		case 'S': O.step_seconds = atof(optarg); break;
		case 'F': O.step_factor = atof(optarg); break;
		case 'B': O.p99_bound_ms = atof(optarg); break;
		case 'G': O.grace_ms = atof(optarg); break;
		case 'P': O.server_pid = atoi(optarg); break;
		case 'j': O.parallel = atoi(optarg); break;
		case 'I': O.inject = atol(optarg); break;
		default: usage(); return 2;
		}
	}
	if (!O.to || O.subs < 1 || O.nsizes < 1 || O.nrates < 1 || O.step_factor <= 1 ||
	    O.parallel < 1) {
		usage();
		return 2;
	}
	for (i = 0; i < O.nsizes; i++)
		if (O.sizes[i] < MSG_HDR || O.sizes[i] > MAX_SIZE) {
			fprintf(stderr, "wsload: sizes are %d..%u bytes\n", MSG_HDR, MAX_SIZE);
			return 2;
		}
	for (i = O.nrates; i < O.nsizes; i++)
		O.rates[i] = O.rates[O.nrates - 1];
	if (resolve(O.to, &ss, &sl) < 0) {
		fprintf(stderr, "wsload: cannot resolve %s\n", O.to);
		return 2;
	}
	{
		struct rlimit rl;

		if (!getrlimit(RLIMIT_NOFILE, &rl)) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	clk_tck = sysconf(_SC_CLK_TCK);
	srandom((unsigned)now_ns());
	{
		uint32_t x = 0x9e3779b9u;

		for (size_t k = 0; k < sizeof(pat); k++) {
			x = x * 1103515245u + 12345u;
			pat[k] = (unsigned char)(x >> 16);
		}
	}
	P = calloc(MAX_PHASES, sizeof(*P));
	subs = calloc((size_t)O.subs, sizeof(*subs));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!P || !subs || ep < 0) {
		perror("wsload");
		return 1;
	}
	/* connect: at most --parallel handshakes in flight */
	t_conn = now_s();
	pubc.is_pub = true;
	if (conn_start(&pubc, &ss, sl) < 0) {
		perror("wsload: connect");
		return 1;
	}
	while (open_subs + failed_hs + closed_subs < O.subs || pubc.st != C_OPEN) {
		pending = started - open_subs - failed_hs - closed_subs;
		while (started < O.subs && pending < O.parallel) {
			if (conn_start(&subs[started], &ss, sl) < 0) {
				subs[started].st = C_CLOSED;
				failed_hs++;
			}
			started++;
			pending++;
		}
		if (pubc.st == C_CLOSED) {
			fprintf(stderr, "wsload: the publisher could not connect\n");
			return 1;
		}
		if (now_s() - t_conn > 60) {
			fprintf(stderr, "wsload: %d of %d subscribers connected in 60 s\n", open_subs,
				O.subs);
			break;
		}
		poll_once(10);
	}
	t_ready = now_s();
	/* the servers subscribe a connection right after the upgrade: let them settle */
	while (now_s() < t_ready + 0.3)
		poll_once(10);

	for (int si = 0; si < O.nsizes && pubc.st == C_OPEN; si++) {
		unsigned size = O.sizes[si];
		double rate = O.rates[si];
		struct phase *p;

		if (!drained(O.drain_s))
			break;
		if (O.warmup > 0 && (p = new_phase("warmup", size, rate)))
			run_phase(p, O.warmup, -1, O.grace_ms / 1e3);
		if (drained(O.drain_s) && (p = new_phase("fixed", size, rate))) {
			run_phase(p, O.seconds, O.count, O.grace_ms / 1e3 * (O.count >= 0 ? 30 : 1));
			p->sustained = step_sustained(p);
			if (!p->ok)
				status = 1;
		}
		if (O.max) {
			double good = 0, bad = 0, r = rate;
			int bisect = 0;

			for (int step = 0; step < 24 && pubc.st == C_OPEN; step++) {
				if (!drained(O.drain_s) || !(p = new_phase("step", size, r)))
					break;
				run_phase(p, O.step_seconds, -1, O.grace_ms / 1e3);
				p->sustained = step_sustained(p);
				if (p->sustained)
					good = r > good ? r : good;
				else
					bad = !bad || r < bad ? r : bad;
				if (bad) {
					if (bisect++ == 2)
						break;
					/* between the last good and the first bad rate */
					r = good ? sqrt(good * bad) : bad / O.step_factor;
					if (r < rate / O.step_factor * 0.999)
						break; /* not below the fixed rate's step down */
				} else {
					r *= O.step_factor;
				}
			}
		}
	}

	/* the last phase has no next one to wait for it: what it still has on the
	 * way arrives first, so lagging_subs counts messages held, not late ones */
	drained_end = drained(O.drain_s);
	{
		/* for a run that stopped early: who is still short of what was published */
		int lagging = 0;
		uint64_t least = pub_seq;

		for (i = 0; i < O.subs; i++)
			if (subs[i].st == C_OPEN && subs[i].next_seq < pub_seq) {
				lagging++;
				if (subs[i].next_seq < least)
					least = subs[i].next_seq;
			}
		printf("{\"drained\":%s,\"publisher_open\":%s,\"published_total\":%llu,\"lagging_subs\":%d,"
		       "\"least_next_seq\":%llu,", drained_end ? "true" : "false",
		       pubc.st == C_OPEN ? "true" : "false",
		       (unsigned long long)pub_seq, lagging, (unsigned long long)least);
	}
	printf("\"to\":\"%s\",\"path\":\"%s\",\"subs\":%d,\"connected\":%d,\"closed\":%d,"
	       "\"failed_handshakes\":%d,\"connect_s\":%.3f,\"control_frames\":%llu,"
	       "\"publish\":\"websocket\",\"p99_bound_ms\":%.1f,\"phases\":[",
	       O.to, O.path, O.subs, open_subs, closed_subs, failed_hs, t_ready - t_conn,
	       (unsigned long long)ctl_frames, O.p99_bound_ms);
	for (i = 0; i < nphases; i++) {
		phase_json(&P[i], !first);
		first = false;
	}
	printf("],\"max\":[");
	first = true;
	for (int si = 0; si < O.nsizes && O.max; si++) {
		const struct phase *best = NULL;

		for (i = 0; i < nphases; i++)
			if (P[i].size == O.sizes[si] && !strcmp(P[i].kind, "step") && P[i].sustained &&
			    (!best || P[i].rate > best->rate))
				best = &P[i];
		if (best) {
			phase_json(best, !first);
			first = false;
		}
	}
	printf("]}\n");
	if (open_subs != O.subs)
		status = 1;
	for (i = 0; i < O.subs; i++)
		if (subs[i].st != C_CLOSED)
			close(subs[i].fd);
	if (pubc.st != C_CLOSED)
		close(pubc.fd);
	free(pub_out);
	free(subs);
	free(P);
	close(ep);
	return status;
}
