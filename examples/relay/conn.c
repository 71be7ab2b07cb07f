/* SPDX-License-Identifier: MIT */
/* writevv-relay: the HTTP connections: reading a request, routing it (viewer, topic,
 * publisher, /stats, errors), writing the answer, lingering. */
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
#include "nofile.h"
#include "relay.h"
#include "relay_state.h"
#include "topic.h"
#include "ws.h"
#include "www.h"


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

void conn_close(struct hconn *c)
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
	if (c->after == AFTER_PUB) {
		char *held = c->out;

		c->out = NULL;
		topic_publisher(c->topic, fd, c->req, (unsigned char *)c->in + c->req_end,
				c->inlen - c->req_end, held, c->outlen);
	} else
		topic_subscribe(c->topic, fd, c->sub_kind, c->req,
				(unsigned char *)c->in + c->req_end, c->inlen - c->req_end);
}

/* Append to what is to be written (answers held for earlier pipelined
 * requests come first: one send for all). */
static int conn_out_add(struct hconn *c, const void *a, size_t alen, const void *b, size_t blen)
{
	char *o = realloc(c->out, c->outlen + alen + blen);

	if (!o)
		return -1;
	memcpy(o + c->outlen, a, alen);
	if (blen)
		memcpy(o + c->outlen + alen, b, blen);
	c->out = o;
	c->outlen += alen + blen;
	c->outoff = 0;
	return 0;
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
	if (conn_out_add(c, hdr, (size_t)n, body, bodylen) < 0) {
		conn_close(c);
		return;
	}
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
	if (conn_out_add(c, hdr, (size_t)n, NULL, 0) < 0) {
		conn_close(c);
		return;
	}
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
		/* An SSE comment first: Firefox fires EventSource's open event only
		 * on the first body bytes, which may be long after the headers. */
		n = snprintf(hdr, sizeof(hdr),
			     "HTTP/1.1 200 OK\r\nServer: writevv-relay\r\nContent-Type: %s\r\n"
			     "Cache-Control: no-cache, no-store\r\n%sConnection: close\r\n\r\n%s",
			     kind == SUB_SSE ? "text/event-stream" : "application/octet-stream",
			     kind == SUB_SSE ? "X-Accel-Buffering: no\r\n" : "",
			     kind == SUB_SSE && !head ? ": subscribed\n\n" : "");
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
		conn_head_then(c, hdr, n, head ? AFTER_LINGER : AFTER_VIEWER);
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
		if (!c->out) {
			c->out = page.buf;
			c->outlen = page.len;
			c->outoff = 0;
		} else {
			int rc = conn_out_add(c, page.buf, page.len, NULL, 0);

			free(page.buf);
			if (rc < 0) {
				conn_close(c);
				return;
			}
		}
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

void conn_event(struct hconn *c, uint32_t ev)
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

/* A kept-alive connection (after POST /pub/) reads its next request here.
 * Held answers wait only for a request that is here already. */
void relay_adopt_conn(int fd, const unsigned char *pre, size_t prelen, char *held,
		      size_t heldlen)
{
	struct hconn *c;
	size_t end;

	if (R.finishing || !(c = conn_new(fd))) {
		if (heldlen && send(fd, held, heldlen, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* best effort: the connection is closed anyway */
		}
		free(held);
		close(fd);
		return;
	}
	c->out = held;
	c->outlen = held ? heldlen : 0;
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
	} else if (c->outlen) {
		/* not held for a request still to come (pub_answer() holds none so) */
		ssize_t r = send(fd, c->out, c->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);

		free(c->out);
		c->out = NULL;
		if (r != (ssize_t)c->outlen)
			conn_close(c);
		c->outlen = 0;
	}
}

void run_ready_conns(void)
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

void accept_viewers(void)
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

void sweep_conns(uint64_t now)
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

void reap_conns(void)
{
	while (R.dead_conns) {
		struct hconn *c = R.dead_conns;

		R.dead_conns = c->next_dead;
		free(c->out);
		free(c->req);
		free(c);
	}
}
