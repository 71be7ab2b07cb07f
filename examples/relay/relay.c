/* SPDX-License-Identifier: MIT */
/*
 * writevv-relay: a live-stream fan-out server on the public writevv API.
 *
 * One publisher (a TCP connection on --ingest, or standard input) feeds a
 * byte stream (typically MPEG-TS from ffmpeg); every HTTP viewer on --listen
 * gets the live bytes from the moment it joined.  Each chunk read from the
 * publisher goes to all ready viewers with one writevv() call (per shard).
 *
 * The stream lives in one ring buffer of max-backlog + 2 chunks; a viewer is
 * an offset into it, so a viewer's backlog costs no memory of its own and
 * the relay's memory does not grow with slow viewers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <writevv.h>

#include "http.h"
#include "redis.h"
#include "relay.h"
#include "topic.h"
#include "ws.h"
#include "www.h"

#define CHUNK_MAX (256 * 1024)
#define HTTP_TIMEOUT_NS (10ULL * 1000000000ULL)
#define LINGER_TIMEOUT_NS (2ULL * 1000000000ULL)
#define LINGER_MAX_BYTES (1 << 20)

/* ---- state -------------------------------------------------------------- */

enum hstate { H_READ, H_WRITE, H_LINGER, H_DEAD };

struct hconn {
	struct tag tag;
	int fd;
	enum hstate st;
	enum { AFTER_LINGER, AFTER_VIEWER, AFTER_TOPIC, AFTER_PUB } after; /* once 'out' is written */
	enum sub_kind sub_kind;
	char topic[TOPIC_MAX + 1];
	struct http_req *req;   /* kept for AFTER_TOPIC/AFTER_PUB */
	size_t req_end;      /* where the request head ends in 'in' */
	size_t inlen;
	size_t outlen, outoff;
	size_t discarded;
	uint64_t deadline;
	struct hconn *prev, *next, *next_dead;
	struct hconn *next_ready;   /* holds a whole request already (pipelining) */
	char *out;
	char in[HTTP_MAX_HEADER];
};

static struct {
	struct options opt;
	int epfd;
	int listen_fd, ingest_fd, pub_fd, sig_fd, spare_fd;
	struct tag listen_tag, ingest_tag, pub_tag, sig_tag;
	bool pub_polled;        /* stdin is a regular file: read without epoll */
	bool pub_blocked;       /* ring full: shards have to catch up first */
	bool finishing;         /* --stdin ended: exit once viewers are served */
	uint64_t finish_deadline;
	bool stop;

	struct ring ring;
	size_t chunk_max;
	uint64_t head;          /* end of the data handed to the shards */
	uint64_t wpos;          /* end of the data read from the publisher */
	uint64_t pending_since; /* when the first byte of [head, wpos) came */

	struct shard *shards;
	int nshards;
	bool threaded;
	unsigned rr;

	struct hconn *conns, *dead_conns;
	struct hconn *ready_conns;  /* adopted with a request in 'in': parse them next */
	uint64_t http_errors, http_requests, sessions, bytes_in, session_bytes;
	uint64_t start_ns;
	uint64_t next_sweep, next_stats;
	int engine;
	bool pub_connected;
	uint64_t emfile_logged;
	char listen_name[NI_MAXHOST + 40], ingest_name[NI_MAXHOST + 40];
	struct extra_ingest {
		struct tag tag;     /* TAG_INGEST_TOPIC */
		int fd;
		const char *topic;
		bool busy;          /* a publisher is connected */
	} extra[MAX_EXTRA_INGEST];
} R;

/* ---- sockets ------------------------------------------------------------ */

static int split_hostport(const char *spec, char *host, size_t hostsz, char *port,
			  size_t portsz)
{
	const char *colon;
	size_t hl;

	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (!rb || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - spec - 1);
		if (hl >= hostsz)
			return -1;
		memcpy(host, spec + 1, hl);
		host[hl] = 0;
		colon = rb + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - spec);
		if (hl >= hostsz)
			return -1;
		memcpy(host, spec, hl);
		host[hl] = 0;
	}
	if (strlen(colon + 1) == 0 || strlen(colon + 1) >= portsz)
		return -1;
	strcpy(port, colon + 1);
	return 0;
}

static void sockname(int fd, char *out, size_t outsz)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[NI_MAXHOST], p[NI_MAXSERV];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
			NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(out, outsz, "?");
		return;
	}
	if (ss.ss_family == AF_INET6)
		snprintf(out, outsz, "[%s]:%s", h, p);
	else
		snprintf(out, outsz, "%s:%s", h, p);
}

static int listen_on(const char *spec, const char *what)
{
	char host[256], port[32];
	struct addrinfo hints, *res, *ai;
	int fd = -1, err = 0, one = 1, rc;

	if (split_hostport(spec, host, sizeof(host), port, sizeof(port)) < 0) {
		logmsg("bad %s address '%s': expected ADDR:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)",
		       what, spec);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc) {
		logmsg("cannot resolve %s address '%s': %s", what, spec, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (err == EADDRINUSE)
			logmsg("cannot listen for %s on %s: address already in use -- another "
			       "process (maybe another writevv-relay) holds that port; stop it or "
			       "choose another port with %s ADDR:PORT (port 0 picks a free one)",
			       what, spec, strcmp(what, "viewers") ? "--ingest" : "--listen");
		else if (err == EACCES)
			logmsg("cannot listen for %s on %s: permission denied (ports below 1024 "
			       "need root or CAP_NET_BIND_SERVICE)", what, spec);
		else if (err == EADDRNOTAVAIL)
			logmsg("cannot listen for %s on %s: no such local address", what, spec);
		else
			logmsg("cannot listen for %s on %s: %s", what, spec, strerror(err));
	}
	return fd;
}

static void ep_add(int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	if (epoll_ctl(R.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		logmsg("epoll_ctl(ADD %d): %s", fd, strerror(errno));
}

static void ep_mod(int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	if (epoll_ctl(R.epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		logmsg("epoll_ctl(MOD %d): %s", fd, strerror(errno));
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			vlogmsg("open files limit raised from %llu to %llu",
				(unsigned long long)old, (unsigned long long)rl.rlim_max);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096)
		logmsg("note: the open files limit is %llu, so at most about %llu viewers "
		       "fit; raise the hard limit (as root: `ulimit -Hn 65536`, or "
		       "LimitNOFILE= in a systemd unit) for more",
		       (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_cur - 16);
}

static void log_emfile(int err)
{
	uint64_t now = now_ns();
	struct rlimit rl = { 0, 0 };

	if (R.emfile_logged && now - R.emfile_logged < 10ULL * 1000000000ULL)
		return;
	R.emfile_logged = now;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (err == EMFILE)
		logmsg("too many open files: the limit of %llu descriptors is reached (hard "
		       "limit %llu), new connections are refused; raise it with `ulimit -n` "
		       "before starting (as root `ulimit -Hn 1048576`, or LimitNOFILE= in a "
		       "systemd unit)",
		       (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
	else
		logmsg("too many open files in the system (ENFILE): raise fs.file-max "
		       "(sysctl -w fs.file-max=...); new connections are refused");
}

/* accept4() that survives EMFILE: refuse the connection instead of spinning. */
static int accept_one(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd >= 0 || (errno != EMFILE && errno != ENFILE))
		return fd;
	log_emfile(errno);
	if (R.spare_fd >= 0) {
		close(R.spare_fd);
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\n"
						  "Content-Length: 0\r\nConnection: close\r\n\r\n";

			if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
				/* best effort */
			}
			close(fd);
		}
		R.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	errno = EAGAIN;
	return -1;
}

/* ---- stats -------------------------------------------------------------- */

struct totals {
	uint64_t viewers, behind, bytes_out, drops, left, finished, calls, cpu_ns, joined;
};

static void totals(struct totals *t)
{
	int i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < R.nshards; i++) {
		struct shard *s = &R.shards[i];

		t->viewers += atomic_load_explicit(&s->n_viewers, memory_order_relaxed);
		t->behind += atomic_load_explicit(&s->n_behind, memory_order_relaxed);
		t->bytes_out += atomic_load_explicit(&s->bytes_out, memory_order_relaxed);
		t->drops += atomic_load_explicit(&s->drops, memory_order_relaxed);
		t->left += atomic_load_explicit(&s->left, memory_order_relaxed);
		t->finished += atomic_load_explicit(&s->finished, memory_order_relaxed);
		t->calls += atomic_load_explicit(&s->calls, memory_order_relaxed);
		t->cpu_ns += atomic_load_explicit(&s->cpu_ns, memory_order_relaxed);
		t->joined += atomic_load_explicit(&s->joined, memory_order_relaxed);
	}
}

static int current_engine(void)
{
	int m = -1;

	if (writevv_control(WRITEVV_GETMODE, &m) < 0)
		return -1;
	return m;
}

static const char *requested_mode(void)
{
	const char *e;

	if (R.opt.mode >= 0)
		return mode_name(R.opt.mode);
	e = getenv("WRITEVV_MODE");
	return e && (!strcmp(e, "kernel") || !strcmp(e, "userland") || !strcmp(e, "iouring") ||
		     !strcmp(e, "sendfile") || !strcmp(e, "zerocopy")) ? e : "default";
}

static size_t stats_json(char *buf, size_t sz)
{
	struct totals t;
	uint64_t pcpu = process_cpu_ns();
	double up = (double)(now_ns() - R.start_ns) / 1e9;
	struct topic_totals tt;
	size_t off;
	int n;

	totals(&t);
	n = snprintf(buf, sz,
		     "{\"viewers\":%llu,\"viewers_behind\":%llu,\"viewers_joined\":%llu,"
		     "\"viewers_finished\":%llu,\"viewers_left\":%llu,\"drops\":%llu,"
		     "\"publisher\":%s,\"sessions\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,"
		     "\"writevv_calls\":%llu,\"engine\":\"%s\",\"mode\":\"%s\",\"threads\":%d,"
		     "\"sender_cpu_ns\":%llu,\"sender_cpu_ns_per_byte\":%.4f,"
		     "\"process_cpu_ns\":%llu,\"process_cpu_ns_per_byte\":%.4f,"
		     "\"max_backlog\":%zu,\"max_delay_ms\":%d,\"ts_align\":%s,"
		     "\"http_requests\":%llu,\"http_errors\":%llu,\"rss_kb\":%ld,"
		     "\"uptime_s\":%.3f,",
		     (unsigned long long)t.viewers, (unsigned long long)t.behind,
		     (unsigned long long)t.joined, (unsigned long long)t.finished,
		     (unsigned long long)t.left, (unsigned long long)t.drops,
		     R.pub_connected ? "true" : "false", (unsigned long long)R.sessions,
		     (unsigned long long)R.bytes_in, (unsigned long long)t.bytes_out,
		     (unsigned long long)t.calls, mode_name(current_engine()),
		     requested_mode(), R.threaded ? R.nshards : 0,
		     (unsigned long long)t.cpu_ns,
		     t.bytes_out ? (double)t.cpu_ns / (double)t.bytes_out : 0.0,
		     (unsigned long long)pcpu,
		     t.bytes_out ? (double)pcpu / (double)t.bytes_out : 0.0,
		     R.opt.max_backlog, R.opt.max_delay_ms, R.opt.ts_align ? "true" : "false",
		     (unsigned long long)R.http_requests, (unsigned long long)R.http_errors,
		     rss_kb(), up);
	off = n < 0 ? 0 : ((size_t)n >= sz ? sz : (size_t)n);
	topics_totals(&tt);
	if (off < sz) {
		n = snprintf(buf + off, sz - off,
			     "\"subscribers\":%llu,\"topic_subscribers\":%llu,\"publishers\":%llu,"
			     "\"messages\":%llu,\"message_bytes_in\":%llu,"
			     "\"message_bytes_out\":%llu,\"deliveries\":%llu,\"message_drops\":%llu,"
			     "\"message_writevv_calls\":%llu,\"websocket_errors\":%llu,"
			     "\"topic_sender_cpu_ns\":%llu,\"sender_cpu_ns_per_message\":%.1f,"
			     "\"max_message\":%zu,\"history\":%u,",
			     (unsigned long long)(tt.subscribers + t.viewers),
			     (unsigned long long)tt.subscribers, (unsigned long long)tt.publishers,
			     (unsigned long long)tt.messages, (unsigned long long)tt.bytes_in,
			     (unsigned long long)tt.bytes_out, (unsigned long long)tt.deliveries,
			     (unsigned long long)tt.drops, (unsigned long long)tt.calls,
			     (unsigned long long)tt.ws_errors, (unsigned long long)tt.cpu_ns,
			     tt.deliveries ? (double)tt.cpu_ns / (double)tt.deliveries : 0.0,
			     R.opt.max_message, R.opt.history);
		off = n < 0 ? sz : ((size_t)n >= sz - off ? sz : off + (size_t)n);
	}
	redis_stats_json(buf, sz, &off);
	topics_stats_json(buf, sz, &off);
	if (off + 3 <= sz) {
		memcpy(buf + off, "}\n", 2);
		off += 2;
		return off;
	}
	return 0; /* cannot happen: sz is sized for the topics */
}

static void print_stats_line(void)
{
	struct totals t;

	totals(&t);
	logmsg("stats: viewers=%llu behind=%llu drops=%llu left=%llu in=%llu out=%llu "
	       "calls=%llu engine=%s sender_cpu=%.3fs (%.3f ns/B) rss=%ldkB",
	       (unsigned long long)t.viewers, (unsigned long long)t.behind,
	       (unsigned long long)t.drops, (unsigned long long)t.left,
	       (unsigned long long)R.bytes_in, (unsigned long long)t.bytes_out,
	       (unsigned long long)t.calls, mode_name(current_engine()),
	       (double)t.cpu_ns / 1e9,
	       t.bytes_out ? (double)t.cpu_ns / (double)t.bytes_out : 0.0, rss_kb());
}

/* ---- HTTP connections --------------------------------------------------- */

static void conn_free_later(struct hconn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		R.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->st = H_DEAD;
	c->next_dead = R.dead_conns;
	R.dead_conns = c;
}

static void conn_close(struct hconn *c)
{
	if (c->st == H_DEAD)
		return;
	close(c->fd);
	c->fd = -1;
	conn_free_later(c);
}

static void conn_linger(struct hconn *c)
{
	shutdown(c->fd, SHUT_WR);
	c->st = H_LINGER;
	c->deadline = now_ns() + LINGER_TIMEOUT_NS;
	ep_mod(c->fd, EPOLLIN | EPOLLRDHUP, c);
}

/* The connection becomes a streaming viewer: it now belongs to a shard. */
static void conn_to_viewer(struct hconn *c)
{
	struct shard *sh;
	int fd = c->fd;

	epoll_ctl(R.epfd, EPOLL_CTL_DEL, fd, NULL);
	if (R.opt.sndbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &R.opt.sndbuf, sizeof(R.opt.sndbuf));
	c->fd = -1;
	conn_free_later(c);
	sh = &R.shards[R.rr++ % (unsigned)R.nshards];
	if (R.threaded)
		shard_post(sh, Q_VIEWER, (uint64_t)fd);
	else
		shard_add_viewer(sh, fd);
}

/* The connection becomes a topic subscriber or publisher (topic.c). */
static void conn_to_topic(struct hconn *c)
{
	int fd = c->fd;

	epoll_ctl(R.epfd, EPOLL_CTL_DEL, fd, NULL);
	c->fd = -1;
	conn_free_later(c);
	if (c->after == AFTER_PUB)
		topic_publisher(c->topic, fd, c->req, (unsigned char *)c->in + c->req_end,
				c->inlen - c->req_end);
	else
		topic_subscribe(c->topic, fd, c->sub_kind, c->req,
				(unsigned char *)c->in + c->req_end, c->inlen - c->req_end);
}

static void conn_flush(struct hconn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t r = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ep_mod(c->fd, EPOLLIN | EPOLLOUT, c);
				return;
			}
			conn_close(c);
			return;
		}
		c->outoff += (size_t)r;
	}
	free(c->out);
	c->out = NULL;
	switch (c->after) {
	case AFTER_VIEWER:
		conn_to_viewer(c);
		break;
	case AFTER_TOPIC:
	case AFTER_PUB:
		conn_to_topic(c);
		break;
	default:
		conn_linger(c);
	}
}

static void conn_respond(struct hconn *c, int status, const char *ctype,
			 const char *extra, const char *body, size_t bodylen, bool head_only)
{
	char hdr[512];
	int n;

	if (status >= 400)
		R.http_errors++;
	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 %d %s\r\nServer: writevv-relay\r\nContent-Type: %s\r\n"
		     "Content-Length: %zu\r\nCache-Control: no-store\r\n%sConnection: close\r\n\r\n",
		     status, http_reason(status), ctype, bodylen, extra ? extra : "");
	if (head_only)
		bodylen = 0;
	c->out = malloc((size_t)n + bodylen);
	if (!c->out) {
		conn_close(c);
		return;
	}
	memcpy(c->out, hdr, (size_t)n);
	if (bodylen)
		memcpy(c->out + n, body, bodylen);
	c->outlen = (size_t)n + bodylen;
	c->outoff = 0;
	c->st = H_WRITE;
	conn_flush(c);
}

static void conn_error(struct hconn *c, int status)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, http_reason(status));

	vlogmsg("HTTP %d on fd %d", status, c->fd);
	conn_respond(c, status, "text/plain", status == 405 ? "Allow: GET, HEAD\r\n" :
		     status == 426 ? "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n" : NULL,
		     body, (size_t)n, false);
}

static void conn_error_allow(struct hconn *c, const char *allow)
{
	char body[64], extra[64];
	int n = snprintf(body, sizeof(body), "405 %s\n", http_reason(405));

	snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
	conn_respond(c, 405, "text/plain", extra, body, (size_t)n, false);
}

/* Send a response head (no body, no length), then hand the connection on. */
static void conn_head_then(struct hconn *c, const char *hdr, int n, int after)
{
	c->out = malloc((size_t)n);
	if (!c->out) {
		conn_close(c);
		return;
	}
	memcpy(c->out, hdr, (size_t)n);
	c->outlen = (size_t)n;
	c->outoff = 0;
	c->st = H_WRITE;
	c->after = after;
	conn_flush(c);
}

/* Keep what conn_to_topic() needs of the request. */
static int conn_keep_req(struct hconn *c, const struct http_req *req, size_t end)
{
	c->req = malloc(sizeof(*c->req));
	if (!c->req)
		return -1;
	*c->req = *req;
	c->req_end = end;
	return 0;
}

/* GET /stream|/sse|/ws/TOPIC, POST /pub/TOPIC. Returns false if not a topic path. */
static bool conn_topic_request(struct hconn *c, const struct http_req *req, size_t end, bool head)
{
	static const struct { const char *prefix; int kind; } routes[] = {
		{ "/stream/", SUB_STREAM }, { "/sse/", SUB_SSE }, { "/ws/", SUB_WS }, { "/pub/", -1 },
	};
	const char *name = NULL;
	char hdr[512];
	int kind = 0, st, n;
	size_t i, len;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		size_t pl = strlen(routes[i].prefix);

		if (strncmp(req->path, routes[i].prefix, pl) == 0) {
			name = req->path + pl;
			kind = routes[i].kind;
			break;
		}
	}
	if (!name)
		return false;
	len = strlen(name);
	if (kind == -1) {
		if (strcmp(req->method, "POST") != 0) {
			conn_error_allow(c, "POST");
			return true;
		}
	} else if (!head && strcmp(req->method, "GET") != 0) {
		conn_error_allow(c, kind == SUB_WS ? "GET" : "GET, HEAD");
		return true;
	} else if (head && kind == SUB_WS) {
		conn_error_allow(c, "GET");
		return true;
	}
	st = topic_check(name, len);
	if (st) {
		conn_error(c, st);
		return true;
	}
	if (R.finishing) {
		conn_error(c, 503);
		return true;
	}
	/* The ingest's topic is served from the stream ring, like GET /. */
	if (kind == SUB_STREAM && strcmp(name, R.opt.ingest_topic) == 0)
		return false;
	memcpy(c->topic, name, len + 1);
	if (kind == -1) {
		if (strcmp(name, R.opt.ingest_topic) == 0) {
			conn_error(c, 409); /* fed by --ingest/--stdin */
			return true;
		}
		if (req->te_unsupported) {
			conn_error(c, 501);
			return true;
		}
		if (!req->chunked && req->content_length < 0) {
			conn_error(c, 411);
			return true;
		}
		if (!req->chunked && (uint64_t)req->content_length > R.opt.max_message) {
			conn_error(c, 413);
			return true;
		}
		if (conn_keep_req(c, req, end) < 0) {
			conn_close(c);
			return true;
		}
		c->after = AFTER_PUB;
		conn_to_topic(c);
		return true;
	}
	if (kind == SUB_WS) {
		char accept[29];

		if (req->minor != 1 || !req->upgrade_websocket || !req->conn_upgrade) {
			conn_error(c, req->upgrade_websocket ? 400 : 426);
			return true;
		}
		if (req->ws_version != 13) {
			conn_error(c, 426); /* with Sec-WebSocket-Version: 13 (RFC 6455 4.4) */
			return true;
		}
		if (ws_accept_key(req->ws_key, accept) < 0) {
			conn_error(c, 400);
			return true;
		}
		n = snprintf(hdr, sizeof(hdr),
			     "HTTP/1.1 101 Switching Protocols\r\nServer: writevv-relay\r\n"
			     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			     "Sec-WebSocket-Accept: %s\r\n%s\r\n", accept,
			     R.opt.ws_deflate && req->ws_deflate_offer
				     ? "Sec-WebSocket-Extensions: permessage-deflate; "
				       "server_no_context_takeover; client_no_context_takeover\r\n"
				     : "");
	} else {
		n = snprintf(hdr, sizeof(hdr),
			     "HTTP/1.1 200 OK\r\nServer: writevv-relay\r\nContent-Type: %s\r\n"
			     "Cache-Control: no-cache, no-store\r\n%sConnection: close\r\n\r\n",
			     kind == SUB_SSE ? "text/event-stream" : "application/octet-stream",
			     kind == SUB_SSE ? "X-Accel-Buffering: no\r\n" : "");
	}
	if (conn_keep_req(c, req, end) < 0) {
		conn_close(c);
		return true;
	}
	c->sub_kind = (enum sub_kind)kind;
	conn_head_then(c, hdr, n, head ? AFTER_LINGER : AFTER_TOPIC);
	return true;
}

static void conn_request(struct hconn *c, size_t end)
{
	struct www_reply page;
	struct http_req req;
	bool head;
	int st;

	R.http_requests++;
	if (http_first_line_len(c->in, end) > HTTP_MAX_LINE) {
		conn_error(c, 414);
		return;
	}
	st = http_parse(c->in, end, &req);
	if (st) {
		conn_error(c, st);
		return;
	}
	head = strcmp(req.method, "HEAD") == 0;
	if (conn_topic_request(c, &req, end, head))
		return;
	if (!head && strcmp(req.method, "GET") != 0) {
		conn_error(c, 405);
		return;
	}
	if (strcmp(req.path, "/") == 0 || (strncmp(req.path, "/stream/", 8) == 0 &&
					   strcmp(req.path + 8, R.opt.ingest_topic) == 0)) {
		char hdr[512];
		int n;

		if (R.finishing) {
			conn_error(c, 503);
			return;
		}
		n = snprintf(hdr, sizeof(hdr),
			     "HTTP/1.1 200 OK\r\nServer: writevv-relay\r\nContent-Type: %s\r\n"
			     "Cache-Control: no-cache, no-store\r\nConnection: close\r\n\r\n",
			     R.opt.content_type);
		c->out = malloc((size_t)n);
		if (!c->out) {
			conn_close(c);
			return;
		}
		memcpy(c->out, hdr, (size_t)n);
		c->outlen = (size_t)n;
		c->outoff = 0;
		c->st = H_WRITE;
		c->after = head ? AFTER_LINGER : AFTER_VIEWER;
		conn_flush(c);
	} else if (strcmp(req.path, "/stats") == 0) {
		struct topic_totals tt;
		size_t sz;

		topics_totals(&tt);
		sz = 4096 + (size_t)tt.topics * 520;
		char *body;
		size_t n;

		body = malloc(sz);
		if (!body) {
			conn_error(c, 503);
			return;
		}
		n = stats_json(body, sz);
		conn_respond(c, 200, "application/json", NULL, body, n, head);
		free(body);
	} else if (www_respond(&req, head, &page)) {
		if (page.status >= 400)
			R.http_errors++;
		if (!page.buf) {
			conn_close(c);
			return;
		}
		c->out = page.buf;
		c->outlen = page.len;
		c->outoff = 0;
		c->st = H_WRITE;
		conn_flush(c);
	} else {
		conn_error(c, 404);
	}
}

static void conn_readable(struct hconn *c)
{
	char junk[4096];
	ssize_t r;
	size_t end;

	if (c->st == H_LINGER || c->st == H_WRITE) {
		/* Discard what the client still sends, so our close is clean. */
		for (;;) {
			r = recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT);
			if (r > 0) {
				c->discarded += (size_t)r;
				if (c->discarded > LINGER_MAX_BYTES) {
					conn_close(c);
					return;
				}
				continue;
			}
			if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
				if (c->st == H_LINGER || r < 0)
					conn_close(c);
				else
					ep_mod(c->fd, EPOLLOUT, c); /* peer done sending */
			}
			return;
		}
	}
	r = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, MSG_DONTWAIT);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
		conn_close(c);
		return;
	}
	if (r < 0)
		return;
	c->inlen += (size_t)r;
	end = http_header_end(c->in, c->inlen);
	if (end) {
		conn_request(c, end);
		return;
	}
	if (http_first_line_len(c->in, c->inlen) > HTTP_MAX_LINE)
		conn_error(c, 414);
	else if (c->inlen == sizeof(c->in))
		conn_error(c, 431);
}

static void conn_event(struct hconn *c, uint32_t ev)
{
	if (c->st == H_DEAD)
		return;
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		conn_readable(c);
	if (c->st == H_WRITE && (ev & EPOLLOUT))
		conn_flush(c);
}

static struct hconn *conn_new(int fd)
{
	struct hconn *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	memset(c, 0, offsetof(struct hconn, in));
	c->tag.kind = TAG_HTTP;
	c->fd = fd;
	c->st = H_READ;
	c->deadline = now_ns() + HTTP_TIMEOUT_NS;
	c->next = R.conns;
	if (R.conns)
		R.conns->prev = c;
	R.conns = c;
	ep_add(fd, EPOLLIN | EPOLLRDHUP, c);
	return c;
}

void relay_linger_conn(int fd)
{
	struct hconn *c = conn_new(fd);

	if (!c) {
		close(fd);
		return;
	}
	conn_linger(c);
}

/* A kept-alive connection (after POST /pub/) reads its next request here. */
void relay_adopt_conn(int fd, const unsigned char *pre, size_t prelen)
{
	struct hconn *c;
	size_t end;

	if (R.finishing || !(c = conn_new(fd))) {
		close(fd);
		return;
	}
	if (prelen > sizeof(c->in)) {
		conn_error(c, 431);
		return;
	}
	memcpy(c->in, pre, prelen);
	c->inlen = prelen;
	end = http_header_end(c->in, c->inlen);
	if (end) {
		/* parsed by the main loop, not here: pipelined requests would recurse */
		c->next_ready = R.ready_conns;
		R.ready_conns = c;
	}
}

static void run_ready_conns(void)
{
	while (R.ready_conns) {
		struct hconn *c = R.ready_conns;
		size_t end;

		R.ready_conns = c->next_ready;
		if (c->st != H_READ)
			continue;
		end = http_header_end(c->in, c->inlen);
		if (end)
			conn_request(c, end);
	}
}

static void accept_viewers(void)
{
	int i, fd;

	for (i = 0; i < 64; i++) {
		struct hconn *c;

		fd = accept_one(R.listen_fd);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				logmsg("accept: %s", strerror(errno));
			return;
		}
		c = conn_new(fd);
		if (!c)
			close(fd);
	}
}

static void sweep_conns(uint64_t now)
{
	struct hconn *c, *next;

	for (c = R.conns; c; c = next) {
		next = c->next;
		if (now < c->deadline)
			continue;
		if (c->st == H_READ) {
			c->deadline = now + LINGER_TIMEOUT_NS;
			conn_error(c, 408);
		} else {
			conn_close(c);
		}
	}
}

static void reap_conns(void)
{
	while (R.dead_conns) {
		struct hconn *c = R.dead_conns;

		R.dead_conns = c->next_dead;
		free(c->out);
		free(c->req);
		free(c);
	}
}

/* ---- publisher ---------------------------------------------------------- */

static void flush_chunk(void)
{
	int i;

	if (R.wpos == R.head)
		return;
	/* WebSocket/SSE/stream subscribers of the ingest's topic get the chunk too */
	if (topic_has_subscribers(R.opt.ingest_topic)) {
		struct iovec iov[2];
		int cnt = ring_iov(&R.ring, R.head, R.wpos, iov);

		topic_publish(R.opt.ingest_topic, iov, cnt, MSG_BINARY);
	}
	R.head = R.wpos;
	for (i = 0; i < R.nshards; i++) {
		if (R.threaded)
			shard_post(&R.shards[i], Q_DATA, R.head);
		else
			shard_data(&R.shards[i], R.head);
	}
}

static void pub_end(const char *why)
{
	int i;

	flush_chunk();
	for (i = 0; i < R.nshards; i++) {
		if (R.threaded)
			shard_post(&R.shards[i], Q_EOF, R.head);
		else
			shard_eof(&R.shards[i], R.head);
	}
	logmsg("publisher %s after %llu bytes in this session", why,
	       (unsigned long long)R.session_bytes);
	if (R.pub_fd >= 0) {
		if (!R.pub_polled)
			epoll_ctl(R.epfd, EPOLL_CTL_DEL, R.pub_fd, NULL);
		if (R.pub_fd != STDIN_FILENO)
			close(R.pub_fd);
	}
	R.pub_fd = -1;
	R.pub_connected = false;
	R.pub_blocked = false;
	if (R.opt.use_stdin) {
		R.finishing = true;
		R.finish_deadline = now_ns() + (uint64_t)(R.opt.drain_timeout * 1e9);
		epoll_ctl(R.epfd, EPOLL_CTL_DEL, R.listen_fd, NULL);
		close(R.listen_fd);
		R.listen_fd = -1;
		while (R.conns)
			conn_close(R.conns);
		topics_tick(); /* what was published goes out first */
		topics_going_away((uint64_t)(R.opt.drain_timeout * 1e9));
	} else {
		logmsg("waiting for the next publisher on %s", R.ingest_name);
	}
}

/* Bytes we may read now without overwriting data a shard still needs. */
static size_t ring_room(void)
{
	uint64_t low = R.wpos;
	size_t room, cap;
	int i;

	for (i = 0; i < R.nshards; i++) {
		uint64_t l = atomic_load_explicit(&R.shards[i].low, memory_order_acquire);

		if (l < low)
			low = l;
	}
	if (low > R.head) /* a shard cannot need data it was not given */
		low = R.head;
	room = (size_t)(low + R.ring.size - R.wpos);
	cap = R.chunk_max - (size_t)(R.wpos - R.head);
	return room < cap ? room : cap;
}

static void pub_readable(void)
{
	struct iovec iov[2];
	size_t n;
	ssize_t r;
	int cnt;

	n = ring_room();
	if (n == 0) {
		flush_chunk();
		n = ring_room();
		if (n == 0) {
			/* Only a CPU-starved shard thread gets here, never a viewer. */
			if (!R.pub_blocked && !R.pub_polled)
				ep_mod(R.pub_fd, 0, &R.pub_tag);
			R.pub_blocked = true;
			return;
		}
	}
	if (R.pub_blocked) {
		R.pub_blocked = false;
		if (!R.pub_polled)
			ep_mod(R.pub_fd, EPOLLIN, &R.pub_tag);
	}
	cnt = ring_iov(&R.ring, R.wpos, R.wpos + n, iov);
	r = readv(R.pub_fd, iov, cnt);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		pub_end(strerror(errno));
		return;
	}
	if (r == 0) {
		pub_end("ended");
		return;
	}
	if (R.wpos == R.head)
		R.pending_since = now_ns();
	R.wpos += (uint64_t)r;
	R.bytes_in += (uint64_t)r;
	R.session_bytes += (uint64_t)r;
	if (R.opt.max_delay_ms == 0 || R.wpos - R.head >= R.chunk_max)
		flush_chunk();
}

static void accept_publisher(void)
{
	char peer[NI_MAXHOST + NI_MAXSERV + 4] = "?";
	int fd;

	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char h[NI_MAXHOST], p[NI_MAXSERV];

		fd = accept4(R.ingest_fd, (struct sockaddr *)&ss, &sl,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_emfile(errno);
			return;
		}
		if (!getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
				 NI_NUMERICHOST | NI_NUMERICSERV))
			snprintf(peer, sizeof(peer), "%s:%s", h, p);
		if (R.pub_fd >= 0) {
			logmsg("rejecting publisher %s: a publisher is already connected", peer);
			close(fd);
			continue;
		}
		R.pub_fd = fd;
		R.pub_connected = true;
		R.session_bytes = 0;
		R.sessions++;
		ep_add(fd, EPOLLIN, &R.pub_tag);
		logmsg("publisher connected from %s", peer);
	}
}

/* A further --ingest: one publisher at a time feeds its topic. */
static void accept_topic_publisher(struct extra_ingest *x)
{
	for (;;) {
		int fd = accept4(x->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_emfile(errno);
			return;
		}
		if (x->busy || R.finishing) {
			logmsg("rejecting a publisher of topic %s: one is already connected", x->topic);
			close(fd);
			continue;
		}
		logmsg("ingest publisher of topic %s connected", x->topic);
		topic_raw_publisher(x->topic, fd, &x->busy);
	}
}

/* ---- main loop ---------------------------------------------------------- */

static int poll_timeout_ms(uint64_t now)
{
	uint64_t deadline = R.next_sweep;

	if (R.next_stats && R.next_stats < deadline)
		deadline = R.next_stats;
	if (R.wpos != R.head) {
		uint64_t d = R.pending_since + (uint64_t)R.opt.max_delay_ms * 1000000ULL;

		if (d < deadline)
			deadline = d;
	}
	if (R.pub_blocked || R.pub_polled)
		return R.pub_blocked ? 1 : 0;
	if (R.finishing)
		return 50;
	if (deadline <= now)
		return 0;
	return (int)((deadline - now + 999999) / 1000000);
}

static void check_engine(void)
{
	int e = current_engine();

	if (e != R.engine) {
		logmsg("writevv engine now in use: %s%s%s", mode_name(e),
		       e == WRITEVV_MODE_USERLAND && R.opt.mode == WRITEVV_MODE_KERNEL
			       ? " -- kernel engine: " : "",
		       e == WRITEVV_MODE_USERLAND && R.opt.mode == WRITEVV_MODE_KERNEL
			       ? writevv_kernel_status() : "");
		R.engine = e;
	}
}

static void run(void)
{
	struct epoll_event evs[256];
	int n, i;

	while (!R.stop) {
		uint64_t now = now_ns();

		n = epoll_wait(R.epfd, evs, 256, poll_timeout_ms(now));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			logmsg("epoll_wait: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			struct tag *t = evs[i].data.ptr;

			switch (t->kind) {
			case TAG_LISTEN:
				if (R.listen_fd >= 0)
					accept_viewers();
				break;
			case TAG_INGEST:
				accept_publisher();
				break;
			case TAG_PUB:
				if (R.pub_fd >= 0)
					pub_readable();
				break;
			case TAG_SIGNAL: {
				struct signalfd_siginfo si;

				if (read(R.sig_fd, &si, sizeof(si)) == sizeof(si)) {
					logmsg("%s: shutting down", strsignal((int)si.ssi_signo));
					R.stop = true;
				}
				break;
			}
			case TAG_HTTP:
				conn_event((struct hconn *)t, evs[i].events);
				break;
			case TAG_VIEWER:
				shard_viewer_event(&R.shards[0], (struct viewer *)t, evs[i].events);
				break;
			case TAG_SHARDEV:
				break;
			case TAG_SUB:
			case TAG_PUBCONN:
				topics_event(t, evs[i].events);
				break;
			case TAG_REDIS:
				redis_event(t, evs[i].events);
				break;
			case TAG_INGEST_TOPIC:
				accept_topic_publisher((struct extra_ingest *)t);
				break;
			}
		}
		if (R.pub_polled && R.pub_fd >= 0)
			pub_readable();
		else if (R.pub_blocked && R.pub_fd >= 0)
			pub_readable();
		now = now_ns();
		if (R.wpos != R.head &&
		    now >= R.pending_since + (uint64_t)R.opt.max_delay_ms * 1000000ULL)
			flush_chunk();
		run_ready_conns();
		topics_tick();
		if (!R.threaded)
			shard_reap(&R.shards[0]);
		reap_conns();
		topics_reap();
		if (now >= R.next_sweep) {
			sweep_conns(now);
			topics_sweep(now);
			redis_tick(now);
			reap_conns();
			topics_reap();
			check_engine();
			R.next_sweep = now + 500000000ULL;
		}
		if (R.next_stats && now >= R.next_stats) {
			print_stats_line();
			R.next_stats = now + (uint64_t)(R.opt.stats_interval * 1e9);
		}
		if (R.finishing) {
			struct totals t;

			totals(&t);
			if ((t.viewers == 0 && !topics_busy()) || now >= R.finish_deadline) {
				if (t.viewers)
					logmsg("drain timeout: closing %llu viewers still behind",
					       (unsigned long long)t.viewers);
				logmsg("stdin ended and the viewers are served: exiting");
				break;
			}
		}
	}
}

/* ---- setup -------------------------------------------------------------- */

static int setup_mode(void)
{
	int m;

	if (R.opt.mode >= 0) {
		m = R.opt.mode;
		if (writevv_control(WRITEVV_SETMODE, &m) < 0) {
			int e = errno;

			if (R.opt.mode == WRITEVV_MODE_KERNEL) {
				const char *why = writevv_kernel_status();

				if (e == ENOENT)
					logmsg("--mode kernel: the writevv BPF program is not loaded "
					       "(%s)%s; or use --mode default to fall back to the "
					       "userland engine", why && *why ? why : "not loaded",
					       why && strstr(why, "writevv-loader") ? "" :
					       "; load it as root with `writevv-loader load`");
				else if (e == EACCES)
					logmsg("--mode kernel: the pinned writevv BPF objects are not "
					       "accessible (%s); run as root or fix the bpffs "
					       "permissions", why);
				else if (e == EPROTO)
					logmsg("--mode kernel: the loaded writevv BPF program belongs "
					       "to another writevv version (%s); reload it with this "
					       "version's `writevv-loader`", why);
				else
					logmsg("--mode kernel: %s (%s)", strerror(e), why);
			} else {
				logmsg("cannot select mode %s: %s", mode_name(R.opt.mode),
				       strerror(e));
			}
			return -1;
		}
	}
	R.engine = current_engine();
	if (R.engine == WRITEVV_MODE_USERLAND && R.opt.mode == WRITEVV_MODE_KERNEL)
		logmsg("kernel engine unavailable (%s): falling back to the userland engine",
		       writevv_kernel_status());
	else if (R.engine == WRITEVV_MODE_USERLAND && R.opt.mode != WRITEVV_MODE_USERLAND)
		logmsg("writevv engine: userland (the faster engines do not work here)");
	else
		logmsg("writevv engine: %s", mode_name(R.engine));
	return 0;
}

int main(int argc, char **argv)
{
	sigset_t mask;
	int i, rc = 0;

	parse_args(argc, argv, &R.opt);
	R.start_ns = now_ns();
	R.listen_fd = R.ingest_fd = R.pub_fd = R.sig_fd = -1;
	R.listen_tag.kind = TAG_LISTEN;
	R.ingest_tag.kind = TAG_INGEST;
	R.pub_tag.kind = TAG_PUB;
	R.sig_tag.kind = TAG_SIGNAL;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &mask, NULL); /* threads inherit the mask */

	raise_nofile();
	if (setup_mode() < 0)
		return 1;

	R.chunk_max = CHUNK_MAX < R.opt.max_backlog ? CHUNK_MAX : R.opt.max_backlog;
	R.ring.size = R.opt.max_backlog + 2 * R.chunk_max;
	R.ring.buf = malloc(R.ring.size);
	if (!R.ring.buf) {
		logmsg("cannot allocate the %zu-byte stream ring", R.ring.size);
		return 1;
	}

	R.epfd = epoll_create1(EPOLL_CLOEXEC);
	R.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	R.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (R.epfd < 0 || R.sig_fd < 0) {
		logmsg("epoll/signalfd: %s", strerror(errno));
		return 1;
	}
	ep_add(R.sig_fd, EPOLLIN, &R.sig_tag);

	R.listen_fd = listen_on(R.opt.listen, "viewers");
	if (R.listen_fd < 0)
		return 1;
	sockname(R.listen_fd, R.listen_name, sizeof(R.listen_name));
	ep_add(R.listen_fd, EPOLLIN, &R.listen_tag);
	if (R.opt.use_stdin) {
		struct stat st;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &R.pub_tag };

		R.pub_fd = STDIN_FILENO;
		if (fstat(STDIN_FILENO, &st) < 0) {
			logmsg("standard input: %s", strerror(errno));
			return 1;
		}
		if (epoll_ctl(R.epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0) {
			if (errno != EPERM) {
				logmsg("standard input: %s", strerror(errno));
				return 1;
			}
			R.pub_polled = true; /* a regular file: always readable */
		}
		R.pub_connected = true;
		R.sessions = 1;
		snprintf(R.ingest_name, sizeof(R.ingest_name), "stdin");
	} else {
		R.ingest_fd = listen_on(R.opt.ingest, "the publisher");
		if (R.ingest_fd < 0)
			return 1;
		sockname(R.ingest_fd, R.ingest_name, sizeof(R.ingest_name));
		ep_add(R.ingest_fd, EPOLLIN, &R.ingest_tag);
	}

	{
		struct topic_opts to = {
			.max_backlog = R.opt.max_backlog, .max_message = R.opt.max_message,
			.history = R.opt.history, .max_topics = R.opt.max_topics,
			.client_publish = R.opt.client_publish, .sndbuf = R.opt.sndbuf,
			.ws_deflate = R.opt.ws_deflate,
		};

		topics_init(R.epfd, &to);
		www_init(R.opt.www);
		if (R.opt.redis && redis_init(R.opt.redis, R.epfd, R.opt.max_message) < 0) {
			logmsg("bad --redis '%s': expected HOST:PORT", R.opt.redis);
			return 1;
		}
		if (R.opt.redis)
			logmsg("redis %s: topics are shared with the other nodes", R.opt.redis);
	}
	for (i = 0; i < R.opt.n_extra; i++) {
		struct extra_ingest *x = &R.extra[i];
		char name[NI_MAXHOST + 40];

		x->tag.kind = TAG_INGEST_TOPIC;
		x->topic = R.opt.extra[i].topic;
		x->fd = listen_on(R.opt.extra[i].addr, "the publisher");
		if (x->fd < 0)
			return 1;
		sockname(x->fd, name, sizeof(name));
		ep_add(x->fd, EPOLLIN, &x->tag);
		logmsg("publisher of topic %s on tcp://%s", x->topic, name);
	}
	R.threaded = R.opt.threads > 1;
	R.nshards = R.opt.threads;
	R.shards = calloc((size_t)R.nshards, sizeof(*R.shards));
	if (!R.shards)
		return 1;
	for (i = 0; i < R.nshards; i++) {
		if (shard_init(&R.shards[i], i, R.epfd, R.threaded, &R.opt, &R.ring, 0) < 0 ||
		    (R.threaded && shard_start(&R.shards[i]) < 0)) {
			logmsg("cannot start shard %d: %s", i, strerror(errno));
			return 1;
		}
	}

	logmsg("viewers on http://%s/ (GET /stats for JSON)", R.listen_name);
	logmsg("topics: GET /stream/T, /sse/T, /ws/T (WebSocket), POST /pub/T; %s feeds '%s'",
	       R.opt.use_stdin ? "stdin" : "the ingest", R.opt.ingest_topic);
	if (R.opt.use_stdin)
		logmsg("publisher: standard input");
	else
		logmsg("publisher on tcp://%s", R.ingest_name);
	logmsg("max backlog %zu bytes, max delay %d ms, %d sender thread%s%s",
	       R.opt.max_backlog, R.opt.max_delay_ms, R.opt.threads,
	       R.opt.threads > 1 ? "s" : "", R.opt.ts_align ? ", TS-aligned joins" : "");

	R.next_sweep = now_ns() + 500000000ULL;
	if (R.opt.stats_interval > 0)
		R.next_stats = now_ns() + (uint64_t)(R.opt.stats_interval * 1e9);
	run();

	if (R.opt.stats_interval > 0)
		print_stats_line();
	for (i = 0; i < R.nshards; i++) {
		if (R.threaded)
			shard_join(&R.shards[i]);
		shard_destroy(&R.shards[i]);
	}
	while (R.conns)
		conn_close(R.conns);
	reap_conns();
	topics_destroy();
	redis_destroy();
	if (R.listen_fd >= 0)
		close(R.listen_fd);
	if (R.ingest_fd >= 0)
		close(R.ingest_fd);
	for (i = 0; i < R.opt.n_extra; i++)
		if (R.extra[i].fd >= 0)
			close(R.extra[i].fd);
	if (R.pub_fd > STDIN_FILENO)
		close(R.pub_fd);
	if (R.spare_fd >= 0)
		close(R.spare_fd);
	close(R.sig_fd);
	close(R.epfd);
	free(R.shards);
	free(R.ring.buf);
	logmsg("stopped");
	return rc;
}
