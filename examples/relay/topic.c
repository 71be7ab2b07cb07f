/* SPDX-License-Identifier: MIT */
/*
 * Topics (see topic.h).
 *
 * A message is stored once, refcounted, with its encodings: the raw bytes
 * (streams), a WebSocket frame header in front of them (server frames are
 * unmasked, so every subscriber of a topic gets the same bytes) and, for text,
 * the SSE event.  A subscriber that is ready (nothing queued) takes part in
 * its topic's next writevv() call; one that is not holds a backlog of message
 * references (no copies), bounded by --max-backlog, and catches up on
 * EPOLLOUT.  Over the bound it is closed and counted as a drop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <writevv.h>

#include "redis.h"
#include "relay.h"
#include "topic.h"
#include "ws.h"

#define BATCH_MSGS 512            /* 2 iovecs each: within IOV_MAX */
#define ITEM_COST 64              /* what one backlog entry costs besides its bytes */
#define CLOSE_TIMEOUT_NS (2ULL * 1000000000ULL)
#define BODY_TIMEOUT_NS (30ULL * 1000000000ULL)
#define PUB_READ 65536
#define HELD_MAX 16384            /* answers held for pipelined requests; more are sent */
#define NBUCKETS 1024

struct msg {
	unsigned refs;
	enum msg_type type;
	uint64_t seq;
	unsigned char wshdr[WS_MAX_HEADER];
	unsigned char wshdr_len;
	unsigned char *sse;       /* "id: N\ndata: ...\n\n" for text */
	size_t sse_len;
	unsigned char *z;         /* permessage-deflate payload, if it is smaller */
	size_t z_len;
	unsigned char zhdr[WS_MAX_HEADER];
	unsigned char zhdr_len;
	bool z_done;
	size_t len;
	unsigned char data[];
};

struct slist {
	struct sub **v;
	int n, cap;
};

struct topic {
	char name[TOPIC_MAX + 1];
	struct topic *hnext;
	struct topic *dnext;      /* dirty list: messages pending */
	bool dirty;
	unsigned refs;            /* subscribers and publishers */
	uint64_t seq;
	uint64_t sent_seq;        /* the last message that went out */
	struct msg **pending;
	size_t npending, cappending;
	struct msg **hist;        /* ring of the last --history text messages */
	unsigned hist_head, hist_n;
	struct slist ready[SUB_KINDS];
	struct slist behind;
	unsigned nsubs[SUB_KINDS];
	uint64_t messages, bytes_in, bytes_out, deliveries, drops;
	uint64_t cpu_ns;          /* sender CPU of its fan-out (topics_tick) */
};

enum sub_state { S_READY, S_BEHIND, S_CLOSING, S_LINGER, S_DEAD };

struct sub {
	struct tag tag;
	int fd;
	enum sub_kind kind;
	enum sub_state st;
	struct topic *t;
	int idx;
	bool reading;             /* EPOLLIN wanted */
	uint64_t deadline;
	/* backlog: a queue of message references, the first one from bl_off */
	struct msg **bl;
	size_t bl_head, bl_n, bl_cap, bl_off, bl_bytes;
	struct ws_parser *wp;
	size_t discarded;
	struct sub *lnext, *lprev; /* closing/linger list */
	/* An SSE resume from Redis's history (redis_history_fetch): until the
	 * answer, live messages queue in the backlog and nothing is written
	 * (hold); after it, live messages up to skip_upto are the fetched
	 * ones again, and are not queued. */
	bool hold;
	uint64_t token, resume_after, skip_upto;
	struct sub *hnext;        /* the holding list */
	struct sub *next_dead;
};

struct pubconn {
	struct tag tag;
	int fd;
	struct topic *t;
	bool chunked;
	bool raw;                 /* a further --ingest: no HTTP at all */
	bool *busy;               /* its listener's "has a publisher" */
	struct http_chunked ch;
	enum msg_type type;
	bool keepalive;
	uint64_t left;            /* Content-Length bytes still to read */
	unsigned char *body;
	size_t body_len;
	char *held;               /* answers to earlier pipelined requests, unsent */
	size_t held_len;
	uint64_t deadline;
	struct pubconn *next, *prev, *next_dead;
};

static struct {
	int epfd;
	struct topic_opts o;
	struct topic *buckets[NBUCKETS];
	struct topic *dirty;
	unsigned ntopics;
	struct sub *closing;      /* subs in S_CLOSING or S_LINGER */
	struct sub *dead;
	struct pubconn *pubs, *dead_pubs;
	int *fds;
	size_t *rets;
	int *errs;
	int scratch;
	struct iovec iov[2 * BATCH_MSGS];
	struct topic_totals tot;
	uint64_t close_timeout_ns; /* how long a closing subscriber may drain */
	struct sub *holding;      /* subscribers waiting for Redis's history */
	uint64_t tokens;
} T;

/* ---- messages ------------------------------------------------------------ */

static struct msg *msg_new(enum msg_type type, const struct iovec *iov, int iovcnt)
{
	size_t len = 0, off = 0;
	struct msg *m;
	int i;

	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	m = malloc(sizeof(*m) + len);
	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->refs = 1;
	m->type = type;
	m->len = len;
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len)
			memcpy(m->data + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	if (type != MSG_CTL)
		m->wshdr_len = (unsigned char)ws_frame_header(
			m->wshdr, type == MSG_TEXT ? WS_OP_TEXT : WS_OP_BINARY, true, len);
	return m;
}

static void msg_unref(struct msg *m)
{
	if (--m->refs == 0) {
		free(m->sse);
		free(m->z);
		free(m);
	}
}

/* The SSE event of a text message: one data: line per line (\n, \r\n or \r). */
static int msg_make_sse(struct msg *m)
{
	size_t lines = 1, i, o;
	char id[40];
	int idn = snprintf(id, sizeof(id), "id: %llu\n", (unsigned long long)m->seq);

	for (i = 0; i < m->len; i++)
		if (m->data[i] == '\n' || m->data[i] == '\r')
			lines++;
	m->sse = malloc((size_t)idn + m->len + lines * 7 + 1);
	if (!m->sse)
		return -1;
	memcpy(m->sse, id, (size_t)idn);
	o = (size_t)idn;
	memcpy(m->sse + o, "data: ", 6);
	o += 6;
	for (i = 0; i < m->len; i++) {
		unsigned char c = m->data[i];

		if (c == '\r' || c == '\n') {
			if (c == '\r' && i + 1 < m->len && m->data[i + 1] == '\n')
				i++;
			memcpy(m->sse + o, "\ndata: ", 7);
			o += 7;
		} else {
			m->sse[o++] = c;
		}
	}
	m->sse[o++] = '\n';
	m->sse[o++] = '\n';
	m->sse_len = o;
	return 0;
}

static bool is_ws(enum sub_kind k)
{
	return k == SUB_WS || k == SUB_WSZ;
}

/* The compressed frame of m, once, shared by every deflate subscriber. */
static void msg_make_z(struct msg *m)
{
	unsigned char *z;
	long n;

	if (m->z_done || m->type == MSG_CTL)
		return;
	m->z_done = true;
	n = ws_deflate_message(m->data, m->len, &z);
	if (n < 0)
		return;
	if ((size_t)n >= m->len) {
		free(z); /* does not shrink: plain frame */
		return;
	}
	m->z = z;
	m->z_len = (size_t)n;
	m->zhdr_len = (unsigned char)ws_frame_header(
		m->zhdr, m->type == MSG_TEXT ? WS_OP_TEXT : WS_OP_BINARY, true, (uint64_t)n);
	m->zhdr[0] |= 0x40; /* RSV1: compressed */
}

/* The bytes a subscriber of kind k gets for m (0 pieces: not for it). */
static int msg_iov(const struct msg *m, enum sub_kind k, struct iovec iov[2])
{
	if (m->type == MSG_CTL) {
		if (k != SUB_WS && k != SUB_WSZ)
			return 0;
		iov[0] = (struct iovec){ (void *)m->data, m->len };
		return 1;
	}
	switch (k) {
	case SUB_STREAM:
		if (!m->len)
			return 0;
		iov[0] = (struct iovec){ (void *)m->data, m->len };
		return 1;
	case SUB_SSE:
		if (m->type != MSG_TEXT)
			return 0;
		iov[0] = (struct iovec){ m->sse, m->sse_len };
		return 1;
	case SUB_WSZ:
		if (m->z) {
			iov[0] = (struct iovec){ (void *)m->zhdr, m->zhdr_len };
			iov[1] = (struct iovec){ m->z, m->z_len };
			return 2;
		}
		/* sent uncompressed (RSV1 clear), as RFC 7692 allows */
		/* fall through */
	case SUB_WS:
		iov[0] = (struct iovec){ (void *)m->wshdr, m->wshdr_len };
		if (!m->len)
			return 1;
		iov[1] = (struct iovec){ (void *)m->data, m->len };
		return 2;
	default:
		return 0;
	}
}

static size_t msg_size(const struct msg *m, enum sub_kind k)
{
	struct iovec iov[2];
	int n = msg_iov(m, k, iov);
	size_t s = 0;

	for (int i = 0; i < n; i++)
		s += iov[i].iov_len;
	return s;
}

/* ---- lists ---------------------------------------------------------------- */

static int slist_push(struct slist *l, struct sub *s)
{
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 16;
		struct sub **nv = realloc(l->v, sizeof(*nv) * (size_t)cap);

		if (!nv)
			return -1;
		l->v = nv;
		l->cap = cap;
	}
	s->idx = l->n;
	l->v[l->n++] = s;
	return 0;
}

static void slist_remove(struct slist *l, struct sub *s)
{
	int i = s->idx;

	if (i < 0 || i >= l->n || l->v[i] != s)
		return;
	l->n--;
	if (i != l->n) {
		l->v[i] = l->v[l->n];
		l->v[i]->idx = i;
	}
	s->idx = -1;
}

static void ensure_scratch(int n)
{
	int cap;

	if (n <= T.scratch)
		return;
	cap = T.scratch ? T.scratch : 64;
	while (cap < n)
		cap *= 2;
	free(T.fds);
	free(T.rets);
	free(T.errs);
	T.fds = malloc(sizeof(*T.fds) * (size_t)cap);
	T.rets = malloc(sizeof(*T.rets) * (size_t)cap);
	T.errs = malloc(sizeof(*T.errs) * (size_t)cap);
	if (!T.fds || !T.rets || !T.errs) {
		logmsg("out of memory for %d subscribers", n);
		abort();
	}
	T.scratch = cap;
}

/* ---- topics --------------------------------------------------------------- */

static unsigned hash_name(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % NBUCKETS;
}

static struct topic *topic_find(const char *name)
{
	struct topic *t;

	for (t = T.buckets[hash_name(name)]; t; t = t->hnext)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

int topic_check(const char *name, size_t len)
{
	char n[TOPIC_MAX + 1];

	if (!http_topic_valid(name, len))
		return 400;
	memcpy(n, name, len);
	n[len] = 0;
	if (!topic_find(n) && T.ntopics >= T.o.max_topics)
		return 503;
	return 0;
}

static struct topic *topic_get(const char *name)
{
	struct topic *t = topic_find(name);
	unsigned h;

	if (t)
		return t;
	if (!http_topic_valid(name, strlen(name)) || T.ntopics >= T.o.max_topics)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (T.o.history) {
		t->hist = calloc(T.o.history, sizeof(*t->hist));
		if (!t->hist) {
			free(t);
			return NULL;
		}
	}
	strcpy(t->name, name);
	h = hash_name(name);
	t->hnext = T.buckets[h];
	T.buckets[h] = t;
	T.ntopics++;
	return t;
}

static void topic_free(struct topic *t)
{
	struct topic **pp = &T.buckets[hash_name(t->name)];

	while (*pp != t)
		pp = &(*pp)->hnext;
	*pp = t->hnext;
	for (unsigned i = 0; i < t->hist_n; i++)
		msg_unref(t->hist[(t->hist_head + i) % T.o.history]);
	for (size_t i = 0; i < t->npending; i++)
		msg_unref(t->pending[i]);
	for (int k = 0; k < SUB_KINDS; k++)
		free(t->ready[k].v);
	free(t->behind.v);
	free(t->pending);
	free(t->hist);
	free(t);
	T.ntopics--;
}

/* Topics nobody uses and that keep no history go. */
static void topic_maybe_free(struct topic *t)
{
	if (t->refs == 0 && t->npending == 0 && t->hist_n == 0 && !t->dirty)
		topic_free(t);
}

static void hist_add(struct topic *t, struct msg *m)
{
	unsigned cap = T.o.history;

	if (!cap || m->type != MSG_TEXT)
		return;
	m->refs++;
	if (t->hist_n == cap) {
		msg_unref(t->hist[t->hist_head]);
		t->hist[t->hist_head] = m;
		t->hist_head = (t->hist_head + 1) % cap;
	} else {
		t->hist[(t->hist_head + t->hist_n) % cap] = m;
		t->hist_n++;
	}
}

static int queue_msg(struct topic *t, struct msg *m, uint64_t id)
{
	if (t->npending == t->cappending) {
		size_t cap = t->cappending ? t->cappending * 2 : 16;
		struct msg **np = realloc(t->pending, sizeof(*np) * cap);

		if (!np)
			return -1;
		t->pending = np;
		t->cappending = cap;
	}
	m->seq = id > t->seq ? id : t->seq + 1;
	t->seq = m->seq;
	if (m->type == MSG_TEXT && msg_make_sse(m) < 0)
		return -1;
	t->pending[t->npending++] = m;
	t->messages++;
	t->bytes_in += m->len;
	T.tot.messages++;
	T.tot.bytes_in += m->len;
	hist_add(t, m);
	if (!t->dirty) {
		t->dirty = true;
		t->dnext = T.dirty;
		T.dirty = t;
	}
	return 0;
}

int topic_publish_id(const char *name, const struct iovec *iov, int iovcnt, enum msg_type type,
		     uint64_t id)
{
	struct topic *t = topic_get(name);
	struct msg *m;

	if (!t)
		return -ENOSPC;
	m = msg_new(type, iov, iovcnt);
	if (!m || queue_msg(t, m, id) < 0) {
		if (m)
			msg_unref(m);
		topic_maybe_free(t);
		return -ENOMEM;
	}
	return 0;
}

int topic_publish(const char *name, const struct iovec *iov, int iovcnt, enum msg_type type)
{
	return topic_publish_id(name, iov, iovcnt, type, 0);
}

uint64_t topic_last_id(const char *name)
{
	struct topic *t = topic_find(name);

	return t ? t->seq : 0;
}

/* A message of this node's publishers: through Redis when it brings it
 * back (so every node delivers in one order), else here. */
static int publish_own(const char *name, const void *data, size_t len, enum msg_type type)
{
	struct iovec iov = { (void *)data, len };

	if (redis_publish(name, type, data, len))
		return 0;
	return topic_publish(name, &iov, 1, type);
}

bool topic_exists(const char *name)
{
	return topic_find(name) != NULL;
}

bool topic_has_subscribers(const char *name)
{
	struct topic *t = topic_find(name);

	return t && (t->nsubs[0] || t->nsubs[1] || t->nsubs[2] || t->nsubs[3]);
}

/* ---- subscribers ---------------------------------------------------------- */

static void sub_epoll(struct sub *s)
{
	struct epoll_event ev = { .events = 0, .data.ptr = s };

	if (s->reading)
		ev.events |= EPOLLIN | EPOLLRDHUP;
	if (s->bl_n && !s->hold)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(T.epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
		logmsg("epoll_ctl(MOD subscriber fd %d): %s", s->fd, strerror(errno));
}

static void bl_clear(struct sub *s, size_t keep)
{
	while (s->bl_n > keep) {
		size_t i = (s->bl_head + s->bl_n - 1) % s->bl_cap;

		msg_unref(s->bl[i]);
		s->bl_n--;
	}
	if (!s->bl_n)
		s->bl_off = 0;
}

/* Remove s from its topic's lists and counts (it stays allocated). */
static void sub_detach(struct sub *s)
{
	struct topic *t = s->t;

	if (!t)
		return;
	if (s->hold) {
		struct sub **pp = &T.holding;

		while (*pp != s)
			pp = &(*pp)->hnext;
		*pp = s->hnext;
		s->hold = false;
	}
	if (s->st == S_READY)
		slist_remove(&t->ready[s->kind], s);
	else
		slist_remove(&t->behind, s);
	t->nsubs[s->kind]--;
	t->refs--;
	T.tot.subscribers--;
	s->t = NULL;
	if (!t->nsubs[0] && !t->nsubs[1] && !t->nsubs[2] && !t->nsubs[3])
		redis_interest(t->name, false);
	topic_maybe_free(t);
}

static void list_unlink(struct sub *s)
{
	if (s->st != S_CLOSING && s->st != S_LINGER)
		return;
	if (s->lprev)
		s->lprev->lnext = s->lnext;
	else
		T.closing = s->lnext;
	if (s->lnext)
		s->lnext->lprev = s->lprev;
	s->lnext = s->lprev = NULL;
}

static void sub_close(struct sub *s, bool abortive)
{
	if (s->st == S_DEAD)
		return;
	sub_detach(s);
	list_unlink(s);
	if (abortive) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(s->fd);
	s->fd = -1;
	s->st = S_DEAD;
	bl_clear(s, 0);
	s->next_dead = T.dead;
	T.dead = s;
}

static void closing_link(struct sub *s)
{
	s->lprev = NULL;
	s->lnext = T.closing;
	if (T.closing)
		T.closing->lprev = s;
	T.closing = s;
}

static int bl_push(struct sub *s, struct msg *m)
{
	if (s->bl_n == s->bl_cap) {
		size_t cap = s->bl_cap ? s->bl_cap * 2 : 16, i;
		struct msg **nb = malloc(sizeof(*nb) * cap);

		if (!nb)
			return -1;
		for (i = 0; i < s->bl_n; i++)
			nb[i] = s->bl[(s->bl_head + i) % s->bl_cap];
		free(s->bl);
		s->bl = nb;
		s->bl_cap = cap;
		s->bl_head = 0;
	}
	m->refs++;
	s->bl[(s->bl_head + s->bl_n) % s->bl_cap] = m;
	s->bl_n++;
	s->bl_bytes += msg_size(m, s->kind) + ITEM_COST;
	return 0;
}

static void become_behind(struct sub *s)
{
	if (s->st != S_READY)
		return;
	slist_remove(&s->t->ready[s->kind], s);
	slist_push(&s->t->behind, s);
	s->st = S_BEHIND;
	sub_epoll(s);
}

static void become_ready(struct sub *s)
{
	if (s->st != S_BEHIND)
		return;
	slist_remove(&s->t->behind, s);
	slist_push(&s->t->ready[s->kind], s);
	s->st = S_READY;
	sub_epoll(s);
}

/* Everything queued is written: a closing subscriber now half-closes. */
static void closing_flushed(struct sub *s)
{
	shutdown(s->fd, SHUT_WR);
	s->st = S_LINGER;
	s->reading = true;
	s->deadline = now_ns() + CLOSE_TIMEOUT_NS;
	sub_epoll(s);
}

/* Stop topic data; what is queued still goes, then the close. */
static void sub_start_closing(struct sub *s)
{
	if (s->st == S_CLOSING || s->st == S_LINGER || s->st == S_DEAD)
		return;
	sub_detach(s);
	s->st = S_CLOSING;
	s->deadline = now_ns() + T.close_timeout_ns;
	closing_link(s);
	if (!s->bl_n)
		closing_flushed(s);
	else
		sub_epoll(s);
}

static bool err_is_again(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ENOBUFS;
}

/* Write as much of the backlog as the socket takes. */
static void bl_flush(struct sub *s)
{
	struct iovec *iov = T.iov;
	size_t ret, i, done = 0;
	int cnt = 0, err;

	if (!s->bl_n || s->hold)
		return;
	for (i = 0; i < s->bl_n && cnt <= 2 * BATCH_MSGS - 2; i++)
		cnt += msg_iov(s->bl[(s->bl_head + i) % s->bl_cap], s->kind, iov + cnt);
	/* skip bl_off bytes of the first message */
	{
		size_t off = s->bl_off;
		int j = 0;

		while (off && j < cnt) {
			size_t take = off < iov[j].iov_len ? off : iov[j].iov_len;

			iov[j].iov_base = (char *)iov[j].iov_base + take;
			iov[j].iov_len -= take;
			off -= take;
			if (!iov[j].iov_len)
				j++;
		}
		if (writevv(&s->fd, 1, iov + j, cnt - j, &ret, &err) < 0) {
			logmsg("writevv: %s", strerror(errno));
			abort();
		}
	}
	T.tot.calls++;
	if (err) {
		if (!err_is_again(err))
			sub_close(s, false);
		return;
	}
	T.tot.bytes_out += ret;
	if (s->t)
		s->t->bytes_out += ret;
	/* pop what was written entirely */
	ret += s->bl_off;
	while (s->bl_n) {
		struct msg *m = s->bl[s->bl_head];
		size_t sz = msg_size(m, s->kind);

		if (ret < sz)
			break;
		ret -= sz;
		s->bl_head = (s->bl_head + 1) % s->bl_cap;
		s->bl_n--;
		s->bl_bytes -= sz + ITEM_COST;
		if (m->type != MSG_CTL) {
			done++;
			if (s->t)
				s->t->deliveries++;
		}
		msg_unref(m);
	}
	s->bl_off = ret;
	T.tot.deliveries += done;
	if (s->bl_n)
		return;
	s->bl_off = 0;
	s->bl_bytes = 0;
	if (s->st == S_BEHIND && !s->skip_upto) /* else its live messages are filtered */
		become_ready(s);
	else if (s->st == S_CLOSING)
		closing_flushed(s);
}

/* Over --max-backlog: WebSocket gets 1008 after its frame in progress. */
static void sub_drop(struct sub *s)
{
	T.tot.drops++;
	s->t->drops++;
	vlogmsg("subscriber fd %d of topic %s dropped: backlog over %zu bytes", s->fd,
		s->t->name, T.o.max_backlog);
	if (is_ws(s->kind)) {
		unsigned char f[4] = { 0x88, 2, WS_CLOSE_POLICY >> 8, WS_CLOSE_POLICY & 0xff };
		struct iovec iov = { f, sizeof(f) };
		struct msg *m = msg_new(MSG_CTL, &iov, 1);

		bl_clear(s, s->bl_off ? 1 : 0);
		s->bl_bytes = 0;
		if (m && bl_push(s, m) == 0) {
			msg_unref(m);
			sub_start_closing(s);
			return;
		}
		if (m)
			msg_unref(m);
	}
	sub_close(s, true);
}

/* A control frame for one WebSocket subscriber, at a frame boundary. */
static void sub_send_ctl(struct sub *s, int opcode, const unsigned char *payload, size_t len)
{
	unsigned char f[WS_MAX_HEADER + 125];
	size_t h = ws_frame_header(f, opcode, true, len);
	struct iovec iov = { f, h + len };
	struct msg *m;

	if (len)
		memcpy(f + h, payload, len);
	m = msg_new(MSG_CTL, &iov, 1);
	if (!m) {
		sub_close(s, true);
		return;
	}
	bl_push(s, m);
	msg_unref(m);
	if (s->st == S_READY)
		become_behind(s);
	if (s->bl_bytes > T.o.max_backlog && s->st == S_BEHIND) {
		sub_drop(s); /* pings from a client that does not read */
		return;
	}
	bl_flush(s);
}

/* Close with 'code'; 'fault': the client broke the protocol (counted). */
static void ws_close_with(struct sub *s, unsigned code, bool fault)
{
	unsigned char p[2] = { (unsigned char)(code >> 8), (unsigned char)code };

	if (s->st == S_CLOSING || s->st == S_LINGER || s->st == S_DEAD)
		return;
	if (fault)
		T.tot.ws_errors++;
	vlogmsg("websocket fd %d: close %u", s->fd, code);
	if (s->st == S_READY)
		become_behind(s);
	sub_send_ctl(s, WS_OP_CLOSE, p, code == WS_CLOSE_NO_STATUS ? 0 : 2);
	if (s->st != S_DEAD)
		sub_start_closing(s);
}

static void ws_input(struct sub *s, const unsigned char *in, size_t len)
{
	size_t off = 0;

	while (s->st != S_DEAD && s->st != S_CLOSING && s->st != S_LINGER) {
		struct ws_event ev;
		size_t used;

		ws_parse(s->wp, in + off, len - off, &used, &ev);
		off += used;
		switch (ev.kind) {
		case WS_EV_MORE:
			return;
		case WS_EV_TEXT:
		case WS_EV_BINARY:
			if (T.o.client_publish && s->t) {
				enum msg_type mt = ev.kind == WS_EV_TEXT ? MSG_TEXT : MSG_BINARY;

				if (publish_own(s->t->name, ev.data, ev.len, mt) < 0)
					ws_close_with(s, WS_CLOSE_INTERNAL, false);
			}
			break;
		case WS_EV_PING:
			sub_send_ctl(s, WS_OP_PONG, ev.data, ev.len);
			break;
		case WS_EV_PONG:
			break;
		case WS_EV_CLOSE:
			/* echo the status code (RFC 6455 5.5.1), then close */
			ws_close_with(s, ev.code, false);
			return;
		case WS_EV_ERROR:
			ws_close_with(s, ev.code, true);
			return;
		}
	}
}

static void sub_readable(struct sub *s)
{
	unsigned char buf[16384];
	ssize_t r;
	int rounds = 0;

	while (s->st != S_DEAD && rounds++ < 16) {
		r = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			sub_close(s, false);
			return;
		}
		if (r == 0) {
			/* The client is gone: a subscriber sends nothing after its
			 * request (a WebSocket a close frame first), so its EOF is
			 * not a half-close to keep serving (nginx takes it so too);
			 * it leaves /stats's counts now, not at a failed write. */
			sub_close(s, false);
			return;
		}
		if (s->st == S_LINGER || s->st == S_CLOSING || !is_ws(s->kind)) {
			s->discarded += (size_t)r;
			if (s->discarded > ((size_t)1 << 20) && s->st != S_READY &&
			    s->st != S_BEHIND)
				sub_close(s, false);
			continue;
		}
		ws_input(s, buf, (size_t)r);
	}
}

static void pubconn_event(struct pubconn *p, uint32_t events);

void topics_event(void *tagged, uint32_t events)
{
	struct tag *tg = tagged;

	if (tg->kind == TAG_PUBCONN) {
		pubconn_event((struct pubconn *)tg, events);
		return;
	}
	struct sub *s = tagged;

	if (s->st == S_DEAD)
		return;
	if ((events & EPOLLOUT) && s->bl_n)
		bl_flush(s);
	if (s->st != S_DEAD && (events & (EPOLLIN | EPOLLRDHUP)) && s->reading)
		sub_readable(s);
	if (s->st != S_DEAD && (events & (EPOLLERR | EPOLLHUP)))
		sub_close(s, false);
}

int topic_subscribe(const char *name, int fd, enum sub_kind kind, const struct http_req *req,
		    const unsigned char *pre, size_t prelen)
{
	struct topic *t = topic_get(name);
	struct sub *s;
	struct epoll_event ev;

	if (!t || !(s = calloc(1, sizeof(*s)))) {
		close(fd);
		if (t)
			topic_maybe_free(t);
		return -1;
	}
	if (kind == SUB_WS && req && req->ws_deflate_offer && T.o.ws_deflate)
		kind = SUB_WSZ; /* conn.c said so in the handshake */
	s->tag.kind = TAG_SUB;
	s->fd = fd;
	s->kind = kind;
	s->t = t;
	s->st = S_READY;
	s->reading = true;
	if (is_ws(kind)) {
		s->wp = malloc(sizeof(*s->wp));
		if (!s->wp || (ws_parser_init(s->wp, T.o.max_message),
			       kind == SUB_WSZ && ws_parser_enable_deflate(s->wp) < 0)) {
			if (s->wp)
				ws_parser_free(s->wp);
			free(s->wp);
			close(fd);
			free(s);
			topic_maybe_free(t);
			return -1;
		}
	}
	if (T.o.sndbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &T.o.sndbuf, sizeof(T.o.sndbuf));
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.ptr = s;
	if (epoll_ctl(T.epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ||
	    slist_push(&t->ready[kind], s) < 0) {
		logmsg("subscribe: %s", strerror(errno));
		close(fd);
		if (s->wp)
			ws_parser_free(s->wp);
		free(s->wp);
		free(s);
		topic_maybe_free(t);
		return -1;
	}
	if (!t->nsubs[0] && !t->nsubs[1] && !t->nsubs[2] && !t->nsubs[3])
		redis_interest(t->name, true);
	t->nsubs[kind]++;
	t->refs++;
	T.tot.subscribers++;
	vlogmsg("subscriber fd %d on topic %s (%s)", fd, t->name,
		kind == SUB_WSZ ? "websocket, permessage-deflate" : kind == SUB_WS ? "websocket" :
		kind == SUB_SSE ? "sse" : "stream");
	/* SSE resume from Redis's history: this node has not had all of the
	 * topic's messages since Last-Event-ID.  Live messages queue meanwhile
	 * (topic_resume_done). */
	if (kind == SUB_SSE && req && req->has_last_event_id && T.o.history &&
	    !redis_history_local(t->name, req->last_event_id)) {
		s->hold = true;
		s->token = ++T.tokens;
		s->resume_after = req->last_event_id;
		s->hnext = T.holding;
		T.holding = s;
		become_behind(s);
		if (redis_history_fetch(t->name, req->last_event_id, s->token) == 0)
			return 0;
		topic_resume_done(s->token, NULL, 0);
		return 0;
	}
	/* SSE resume: the kept text messages after Last-Event-ID, in order */
	if (kind == SUB_SSE && req && req->has_last_event_id && T.o.history) {
		for (unsigned i = 0; i < t->hist_n; i++) {
			struct msg *m = t->hist[(t->hist_head + i) % T.o.history];

			if (m->seq > req->last_event_id && m->seq <= t->sent_seq &&
			    bl_push(s, m) < 0)
				break;
		}
		if (s->bl_n) {
			become_behind(s);
			bl_flush(s);
		}
	}
	if (prelen && is_ws(kind) && s->st != S_DEAD)
		ws_input(s, pre, prelen);
	return 0;
}

/* Redis's answer for a holding SSE subscriber: its backlog becomes the
 * messages after its Last-Event-ID from three lists in id order, each id
 * once: Redis's history (v), this node's history (what went out here;
 * Redis may lack it, e.g. restarted; not below Redis's oldest, which would
 * leave a gap in the middle rather than at the start), and the live
 * messages queued since it arrived.  Redis may have answered before the subscription brought the
 * latest of the fetched messages: live ones up to the last fetched id are
 * skipped (skip_upto).  No write here: the next EPOLLOUT does it. */
void topic_resume_done(uint64_t token, const struct hist_msg *v, size_t n)
{
	struct sub **pp = &T.holding, *s;
	struct topic *t;
	struct msg **out;
	size_t nout = 0, iv = 0, ih = 0, ib = 0, cap;
	uint64_t last, lfloor = n ? v[0].id : 0;

	while (*pp && (*pp)->token != token)
		pp = &(*pp)->hnext;
	s = *pp;
	if (!s)
		return; /* gone meanwhile */
	*pp = s->hnext;
	s->hold = false;
	t = s->t;
	last = s->resume_after;
	cap = n + (t ? t->hist_n : 0) + s->bl_n;
	out = malloc(sizeof(*out) * (cap ? cap : 1));
	if (!out || !t) {
		free(out);
		sub_close(s, true);
		return;
	}
	for (;;) {
		/* the smallest next id of the three, above the last taken */
		struct msg *hm = NULL, *bm = NULL, *m = NULL;
		uint64_t id = UINT64_MAX;

		while (iv < n && v[iv].id <= last)
			iv++;
		while (ih < t->hist_n &&
		       ((hm = t->hist[(t->hist_head + ih) % T.o.history])->seq <= last ||
			hm->seq < lfloor ||
			hm->seq > t->sent_seq)) /* not sent yet: the fan-out brings it */
			hm = NULL, ih++;
		if (ih >= t->hist_n)
			hm = NULL;
		while (ib < s->bl_n && (bm = s->bl[(s->bl_head + ib) % s->bl_cap])->seq <= last)
			bm = NULL, ib++;
		if (ib >= s->bl_n)
			bm = NULL;
		if (iv < n)
			id = v[iv].id;
		if (hm && hm->seq < id)
			id = hm->seq;
		if (bm && bm->seq < id)
			id = bm->seq;
		if (id == UINT64_MAX)
			break;
		if (bm && bm->seq == id) {
			m = bm;
			m->refs++;
		} else if (hm && hm->seq == id) {
			m = hm;
			m->refs++;
		} else {
			struct iovec iov = { (void *)v[iv].data, v[iv].len };

			m = msg_new(MSG_TEXT, &iov, 1);
			if (m) {
				m->seq = id;
				if (msg_make_sse(m) < 0) {
					msg_unref(m);
					m = NULL;
				}
			}
		}
		last = id;
		if (m)
			out[nout++] = m;
	}
	bl_clear(s, 0); /* nothing of it was written (hold) */
	s->bl_bytes = 0;
	for (iv = 0; iv < nout && bl_push(s, out[iv]) == 0; iv++)
		;
	for (size_t i = 0; i < nout; i++)
		msg_unref(out[i]);
	free(out);
	if (iv < nout) { /* no gap: rather no resume */
		sub_close(s, true);
		return;
	}
	/* what the fan-out brings from now on is above t->sent_seq */
	s->skip_upto = last > t->sent_seq ? last : 0;
	if (s->bl_bytes > T.o.max_backlog)
		sub_drop(s);
	else if (s->bl_n)
		sub_epoll(s);
	else if (!s->skip_upto)
		become_ready(s);
	else
		sub_epoll(s);
}

/* ---- fan-out ------------------------------------------------------------- */

/* One batch of a topic's new messages to its subscribers of kind k. */
static void fan_batch(struct topic *t, enum sub_kind k, struct msg **ms, size_t nm)
{
	struct slist *rl = &t->ready[k];
	size_t total = 0, i, nsized = 0;
	int cnt = 0, n, j;

	for (i = 0; i < nm; i++) {
		int c;

		if (k == SUB_WSZ)
			msg_make_z(ms[i]);
		c = msg_iov(ms[i], k, T.iov + cnt);

		for (j = 0; j < c; j++)
			total += T.iov[cnt + j].iov_len;
		cnt += c;
		nsized += c > 0;
	}
	if (total == 0)
		return;
	/* Subscribers with a backlog get the batch queued behind it. */
	for (j = t->behind.n - 1; j >= 0; j--) {
		struct sub *s = t->behind.v[j];
		bool was_empty = !s->bl_n;

		if (s->kind != k)
			continue;
		for (i = 0; i < nm; i++)
			if (msg_size(ms[i], k) && ms[i]->seq > s->skip_upto && bl_push(s, ms[i]) < 0)
				break;
		if (s->skip_upto && s->skip_upto <= ms[nm - 1]->seq)
			s->skip_upto = 0; /* the live messages are past the fetched ones */
		if (i < nm || s->bl_bytes > T.o.max_backlog)
			sub_drop(s);
		else if (was_empty && s->bl_n)
			sub_epoll(s); /* behind with nothing queued (skip_upto): EPOLLOUT now */
	}
	n = rl->n;
	if (n == 0)
		return;
	ensure_scratch(n);
	for (j = 0; j < n; j++)
		T.fds[j] = rl->v[j]->fd;
	if (writevv(T.fds, n, T.iov, cnt, T.rets, T.errs) < 0) {
		logmsg("writevv: %s", strerror(errno));
		abort();
	}
	T.tot.calls++;
	/* Backwards: a removal at j only moves an already-handled subscriber. */
	for (j = n - 1; j >= 0; j--) {
		struct sub *s = rl->v[j];
		int e = T.errs[j];
		size_t r = e ? 0 : T.rets[j], sz;

		if (e && !err_is_again(e)) {
			sub_close(s, false);
			continue;
		}
		T.tot.bytes_out += r;
		t->bytes_out += r;
		if (r == total) {
			T.tot.deliveries += nsized;
			t->deliveries += nsized;
			continue;
		}
		/* Partial: the rest goes to its backlog, from where it stopped. */
		for (i = 0; i < nm; i++) {
			sz = msg_size(ms[i], k);
			if (!sz)
				continue;
			if (r < sz)
				break;
			r -= sz;
			T.tot.deliveries++;
			t->deliveries++;
		}
		for (size_t q = i; q < nm; q++)
			if (msg_size(ms[q], k))
				bl_push(s, ms[q]);
		s->bl_off = r;
		/* after the pushes: its epoll interest (EPOLLOUT) follows the
		 * backlog it has now, or nothing writes the rest until it is
		 * dropped */
		become_behind(s);
		if (s->bl_bytes > T.o.max_backlog)
			sub_drop(s);
	}
}

void topics_tick(void)
{
	uint64_t t0, tprev;

	if (!T.dirty)
		return;
	t0 = thread_cpu_ns();
	tprev = t0;
	while (T.dirty) {
		struct topic *t = T.dirty;
		uint64_t tnow;

		T.dirty = t->dnext;
		t->dirty = false;
		for (size_t b = 0; b < t->npending; b += BATCH_MSGS) {
			size_t nm = t->npending - b < BATCH_MSGS ? t->npending - b : BATCH_MSGS;

			for (int k = 0; k < SUB_KINDS; k++)
				if (t->nsubs[k])
					fan_batch(t, (enum sub_kind)k, t->pending + b, nm);
		}
		for (size_t i = 0; i < t->npending; i++)
			msg_unref(t->pending[i]);
		if (t->npending)
			t->sent_seq = t->seq;
		t->npending = 0;
		/* One clock read per dirty topic (the tick's end is the last one). */
		tnow = thread_cpu_ns();
		t->cpu_ns += tnow - tprev;
		tprev = tnow;
		topic_maybe_free(t);
	}
	T.tot.cpu_ns += tprev - t0;
}

/* ---- publishers (POST /pub/TOPIC) --------------------------------------- */

/* The publisher leaves this module; its descriptor is closed unless kept. */
static void pub_release(struct pubconn *p, bool close_fd)
{
	if (p->fd < 0)
		return;
	epoll_ctl(T.epfd, EPOLL_CTL_DEL, p->fd, NULL);
	if (close_fd)
		close(p->fd);
	p->fd = -1;
	if (p->busy)
		*p->busy = false;
	if (p->prev)
		p->prev->next = p->next;
	else
		T.pubs = p->next;
	if (p->next)
		p->next->prev = p->prev;
	if (p->t) {
		p->t->refs--;
		topic_maybe_free(p->t);
		p->t = NULL;
	}
	T.tot.publishers--;
	p->next_dead = T.dead_pubs;
	T.dead_pubs = p;
}

static void pub_close(struct pubconn *p)
{
	pub_release(p, true);
}

static int held_add(struct pubconn *p, const char *a, size_t alen)
{
	char *h = realloc(p->held, p->held_len + alen);

	if (!h)
		return -1;
	memcpy(h + p->held_len, a, alen);
	p->held = h;
	p->held_len += alen;
	return 0;
}

/* What is held goes now (the connection waits for the client next). */
static int held_send(struct pubconn *p)
{
	ssize_t r = p->held_len ? send(p->fd, p->held, p->held_len, MSG_NOSIGNAL | MSG_DONTWAIT)
				: 0;
	int ok = r == (ssize_t)p->held_len;

	free(p->held);
	p->held = NULL;
	p->held_len = 0;
	return ok ? 0 : -1;
}

/* Answer, then either go on with the next request or close cleanly.  While
 * the next request is here already (pipelined), the answer is held and goes
 * with the next one's: one send for all that one read brought, as each
 * separate small send costs a packet and a wake-up at the client. */
static void pub_answer(struct pubconn *p, int status, const unsigned char *rest, size_t restlen)
{
	char hdr[256];
	bool keep = p->keepalive && status == 204;
	int n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d %s\r\nServer: writevv-relay\r\n%s%s\r\n",
			 status, http_reason(status),
			 status == 204 ? "" : "Content-Length: 0\r\n",
			 keep ? "" : "Connection: close\r\n");
	int fd = p->fd;

	if (held_add(p, hdr, (size_t)n) < 0) {
		keep = false;
		held_send(p);
	} else if (keep && p->held_len < HELD_MAX &&
		   http_header_end((const char *)rest, restlen)) {
		char *held = p->held;
		size_t held_len = p->held_len;

		p->held = NULL;
		p->held_len = 0;
		pub_release(p, false);
		relay_adopt_conn(fd, rest, restlen, held, held_len);
		return;
	} else if (held_send(p) < 0) {
		keep = false;
	}
	if (keep) {
		/* conn.c reads the next request of this connection */
		pub_release(p, false);
		relay_adopt_conn(fd, rest, restlen, NULL, 0);
		return;
	}
	/* a lingering close, so that the answer is not lost to a reset */
	pub_release(p, false);
	relay_linger_conn(fd);
}

static void pub_data(struct pubconn *p, const unsigned char *in, size_t len)
{
	size_t off = 0;

	if (!p->chunked) {
		size_t n = len < p->left ? len : (size_t)p->left;

		memcpy(p->body + p->body_len, in, n);
		p->body_len += n;
		p->left -= n;
		if (p->left == 0) {
			if (p->type == MSG_TEXT && !ws_utf8_valid(p->body, p->body_len))
				pub_answer(p, 400, NULL, 0); /* a text frame must be UTF-8 */
			else if (publish_own(p->t->name, p->body, p->body_len, p->type) < 0)
				pub_answer(p, 503, NULL, 0);
			else
				pub_answer(p, 204, in + n, len - n);
		}
		return;
	}
	/* A chunked body is a live stream: what one read brings is one message. */
	p->body_len = 0;
	while (off < len) {
		size_t used, doff, dlen;
		int k = http_chunked_next(&p->ch, in + off, len - off, &used, &doff, &dlen);

		if (k == HTTP_CHUNK_DATA) {
			memcpy(p->body + p->body_len, in + off + doff, dlen);
			p->body_len += dlen;
		}
		off += used;
		if (k == HTTP_CHUNK_ERROR) {
			pub_answer(p, 400, NULL, 0);
			return;
		}
		if (k == HTTP_CHUNK_END || k == HTTP_CHUNK_MORE) {
			if (p->body_len) {
				publish_own(p->t->name, p->body, p->body_len, MSG_BINARY);
				p->body_len = 0;
			}
			if (k == HTTP_CHUNK_END)
				pub_answer(p, 204, in + off, len - off);
			return;
		}
	}
	if (p->body_len) {
		publish_own(p->t->name, p->body, p->body_len, MSG_BINARY);
		p->body_len = 0;
	}
}

static void pubconn_event(struct pubconn *p, uint32_t events)
{
	unsigned char buf[PUB_READ];
	ssize_t r;

	(void)events;
	if (p->fd < 0)
		return;
	for (int rounds = 0; rounds < 8 && p->fd >= 0; rounds++) {
		size_t want = sizeof(buf);

		if (!p->raw && !p->chunked && p->left < want)
			want = (size_t)p->left; /* never read the next request */
		r = recv(p->fd, buf, want, MSG_DONTWAIT);
		if (r < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				pub_close(p);
			return;
		}
		if (r == 0) {
			if (p->raw)
				logmsg("ingest publisher of topic %s ended", p->t->name);
			else
				vlogmsg("publisher on %s: body ended early", p->t->name);
			pub_close(p);
			return;
		}
		if (p->raw) {
			publish_own(p->t->name, buf, (size_t)r, MSG_BINARY);
			continue;
		}
		if (p->chunked)
			p->deadline = now_ns() + BODY_TIMEOUT_NS; /* idle bound of a live stream */
		pub_data(p, buf, (size_t)r);
	}
}

/* A publisher of topic name on fd, in the list of publishers; NULL (fd
 * closed) when there is no memory for it. */
static struct pubconn *pub_new(const char *name, int fd)
{
	struct topic *t = topic_get(name);
	struct pubconn *p = calloc(1, sizeof(*p));

	if (!t || !p) {
		free(p);
		close(fd);
		return NULL;
	}
	p->tag.kind = TAG_PUBCONN;
	p->fd = fd;
	p->t = t;
	t->refs++;
	T.tot.publishers++;
	p->next = T.pubs;
	if (T.pubs)
		T.pubs->prev = p;
	T.pubs = p;
	return p;
}

void topic_publisher(const char *name, int fd, const struct http_req *req,
		     const unsigned char *pre, size_t prelen, char *held, size_t heldlen)
{
	struct pubconn *p = pub_new(name, fd);
	struct epoll_event ev;

	if (!p) {
		free(held);
		return;
	}
	p->held = held;
	p->held_len = held ? heldlen : 0;
	p->chunked = req->chunked;
	p->type = strncasecmp(req->content_type, "text/", 5) == 0 ? MSG_TEXT : MSG_BINARY;
	p->keepalive = req->minor == 1 && !req->conn_close;
	p->left = p->chunked ? 0 : (uint64_t)req->content_length;
	p->deadline = now_ns() + BODY_TIMEOUT_NS;
	p->body = malloc(p->chunked ? PUB_READ : (p->left ? (size_t)p->left : 1));
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.ptr = p;
	if (!p->body || epoll_ctl(T.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		pub_close(p);
		return;
	}
	if (req->expect_continue &&
	    (held_add(p, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0 || held_send(p) < 0)) {
		pub_close(p);
		return;
	}
	if (prelen || (!p->chunked && p->left == 0))
		pub_data(p, pre, prelen);
	/* the body is still to come: what is held goes now */
	if (p->fd >= 0 && p->held_len && held_send(p) < 0)
		pub_close(p);
}

/*
 * The relay is finishing (--stdin ended): every subscriber gets what it has
 * queued, then WebSocket close 1001 or the end of its stream, within
 * drain_ns.  Publishers are closed.
 */
void topics_going_away(uint64_t drain_ns)
{
	T.close_timeout_ns = drain_ns;
	while (T.pubs)
		pub_close(T.pubs);
	for (unsigned b = 0; b < NBUCKETS; b++) {
		struct topic *t = T.buckets[b], *next;

		for (; t; t = next) {
			next = t->hnext;
			t->refs++; /* keep it while its subscribers leave */
			for (int k = 0; k < SUB_KINDS; k++)
				while (t->ready[k].n) {
					struct sub *s = t->ready[k].v[t->ready[k].n - 1];

					if (is_ws(s->kind))
						ws_close_with(s, WS_CLOSE_GOING_AWAY, false);
					else
						sub_start_closing(s);
				}
			while (t->behind.n) {
				struct sub *s = t->behind.v[t->behind.n - 1];

				if (is_ws(s->kind))
					ws_close_with(s, WS_CLOSE_GOING_AWAY, false);
				else
					sub_start_closing(s);
			}
			t->refs--;
			topic_maybe_free(t);
		}
	}
}

bool topics_busy(void)
{
	return T.tot.subscribers || T.closing || T.pubs;
}

void topic_raw_publisher(const char *name, int fd, bool *busy)
{
	struct pubconn *p = pub_new(name, fd);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };

	if (!p)
		return;
	p->raw = true;
	p->busy = busy;
	*busy = true;
	ev.data.ptr = p;
	if (epoll_ctl(T.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		pub_close(p);
}

/* ---- housekeeping ---------------------------------------------------------- */

void topics_sweep(uint64_t now)
{
	struct sub *s, *next;
	struct pubconn *p, *pn;

	for (s = T.closing; s; s = next) {
		next = s->lnext;
		if (now >= s->deadline)
			sub_close(s, s->st == S_CLOSING);
	}
	for (p = T.pubs; p; p = pn) {
		pn = p->next;
		if (!p->raw && now >= p->deadline) {
			vlogmsg("publisher on %s: body timeout", p->t ? p->t->name : "?");
			pub_answer(p, 408, NULL, 0);
		}
	}
}

void topics_reap(void)
{
	while (T.dead) {
		struct sub *s = T.dead;

		T.dead = s->next_dead;
		if (s->wp) {
			ws_parser_free(s->wp);
			free(s->wp);
		}
		free(s->bl);
		free(s);
	}
	while (T.dead_pubs) {
		struct pubconn *p = T.dead_pubs;

		T.dead_pubs = p->next_dead;
		free(p->body);
		free(p->held);
		free(p);
	}
}

void topics_totals(struct topic_totals *t)
{
	*t = T.tot;
	t->topics = T.ntopics;
}

static void jappend(char *buf, size_t sz, size_t *off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void jappend(char *buf, size_t sz, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= sz)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, sz - *off, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*off = (size_t)n >= sz - *off ? sz : *off + (size_t)n;
}

void topics_stats_json(char *buf, size_t sz, size_t *off)
{
	bool first = true;

	jappend(buf, sz, off, "\"topics\":{");
	for (unsigned b = 0; b < NBUCKETS; b++)
		for (struct topic *t = T.buckets[b]; t; t = t->hnext) {
			size_t backlog = 0;

			for (int j = 0; j < t->behind.n; j++)
				backlog += t->behind.v[j]->bl_bytes;
			jappend(buf, sz, off,
				"%s\"%s\":{\"subscribers\":%u,\"stream\":%u,\"sse\":%u,"
				"\"websocket\":%u,\"websocket_deflate\":%u,\"messages\":%llu,\"seq\":%llu,"
				"\"bytes_in\":%llu,\"bytes_out\":%llu,\"deliveries\":%llu,"
				"\"drops\":%llu,\"history\":%u,\"behind\":%d,\"backlog_bytes\":%zu,"
				"\"sender_cpu_ns\":%llu}",
				first ? "" : ",", t->name,
				t->nsubs[0] + t->nsubs[1] + t->nsubs[2] + t->nsubs[3],
				t->nsubs[SUB_STREAM], t->nsubs[SUB_SSE],
				t->nsubs[SUB_WS] + t->nsubs[SUB_WSZ], t->nsubs[SUB_WSZ],
				(unsigned long long)t->messages, (unsigned long long)t->seq,
				(unsigned long long)t->bytes_in, (unsigned long long)t->bytes_out,
				(unsigned long long)t->deliveries, (unsigned long long)t->drops,
				t->hist_n, t->behind.n, backlog, (unsigned long long)t->cpu_ns);
			first = false;
		}
	jappend(buf, sz, off, "}");
}

int topics_init(int epfd, const struct topic_opts *o)
{
	memset(&T, 0, sizeof(T));
	T.epfd = epfd;
	T.o = *o;
	T.close_timeout_ns = CLOSE_TIMEOUT_NS;
	return 0;
}

void topics_destroy(void)
{
	while (T.pubs)
		pub_close(T.pubs);
	while (T.closing)
		sub_close(T.closing, true);
	for (unsigned b = 0; b < NBUCKETS; b++)
		while (T.buckets[b]) {
			struct topic *t = T.buckets[b];

			t->refs++; /* keep it while its subscribers go */
			for (int k = 0; k < SUB_KINDS; k++)
				while (t->ready[k].n)
					sub_close(t->ready[k].v[t->ready[k].n - 1], false);
			while (t->behind.n)
				sub_close(t->behind.v[t->behind.n - 1], false);
			topic_free(t);
		}
	topics_reap();
	ws_deflate_cleanup();
	free(T.fds);
	free(T.rets);
	free(T.errs);
}
