/* SPDX-License-Identifier: MIT */
/*
 * Several relay nodes on one Redis (--redis HOST:PORT), with hiredis.
 *
 * A node PUBLISHes what its own publishers send (POST /pub/, WebSocket
 * clients with --client-publish) on the channel "writevv:TOPIC" and delivers
 * it locally at once; it SUBSCRIBEs to the channels of the topics its
 * clients use and delivers what other nodes published.  Each message carries
 * the publishing node's random id, so a node skips its own: every
 * subscriber gets a message once.  Redis delivers a channel's messages in
 * publish order.  Two connections (a subscribed one cannot PUBLISH), both
 * driven by the relay's epoll through hiredis's async hooks.  When Redis
 * goes away the node says so, goes on delivering locally, reconnects every
 * second and subscribes again.  Redis pub/sub keeps nothing: what is
 * published while a node is cut off does not reach that node.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/uio.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "redis.h"
#include "relay.h"

#define CHANNEL_PREFIX "writevv:"
#define PREFIX_LEN (sizeof(CHANNEL_PREFIX) - 1)
#define HDR_LEN 9 /* node id (8) + type ('t' or 'b') */
#define RETRY_NS 1000000000ULL

struct link {
	struct tag tag;          /* TAG_REDIS */
	const char *what;
	redisAsyncContext *ac;
	bool connected;
	uint32_t events;         /* what epoll watches */
	int fd;
	uint64_t next_try;
};

static struct {
	bool on;
	int epfd;
	char host[256];
	int port;
	unsigned char node[8];
	struct link pub, sub;
	char **topics;           /* topics with local subscribers */
	size_t ntopics, cap;
	uint64_t published, received, skipped_own, local_only, errors, reconnects;
	long long channels;      /* Redis's count in the last (un)subscribe reply */
	bool lost_logged;
	size_t max_message;
	uint64_t too_big;
} RD;

/* ---- hiredis event hooks on our epoll ---------------------------------- */

static void link_update(struct link *l, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = &l->tag };
	int op;

	if (!l->ac || events == l->events)
		return;
	if (l->fd < 0) {
		l->fd = l->ac->c.fd;
		op = EPOLL_CTL_ADD;
	} else {
		op = EPOLL_CTL_MOD;
	}
	if (epoll_ctl(RD.epfd, op, l->fd, &ev) < 0)
		logmsg("redis: epoll_ctl: %s", strerror(errno));
	l->events = events;
}

static void ev_add_read(void *p)
{
	struct link *l = p;

	link_update(l, l->events | EPOLLIN);
}

static void ev_del_read(void *p)
{
	struct link *l = p;

	link_update(l, l->events & ~(uint32_t)EPOLLIN);
}

static void ev_add_write(void *p)
{
	struct link *l = p;

	link_update(l, l->events | EPOLLOUT);
}

static void ev_del_write(void *p)
{
	struct link *l = p;

	link_update(l, l->events & ~(uint32_t)EPOLLOUT);
}

/* hiredis frees the context: forget it (its fd is still open here). */
static void ev_cleanup(void *p)
{
	struct link *l = p;

	if (l->fd >= 0)
		epoll_ctl(RD.epfd, EPOLL_CTL_DEL, l->fd, NULL);
	l->fd = -1;
	l->events = 0;
	l->ac = NULL;
	l->connected = false;
}

void redis_event(void *tagged, uint32_t events)
{
	struct link *l = (struct link *)tagged;

	if (l->ac && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		redisAsyncHandleRead(l->ac);
	if (l->ac && (events & EPOLLOUT))
		redisAsyncHandleWrite(l->ac);
}

/* ---- connections ---------------------------------------------------------- */

static struct link *link_of(const redisAsyncContext *ac)
{
	return ac == RD.pub.ac ? &RD.pub : ac == RD.sub.ac ? &RD.sub : NULL;
}

static void lost(struct link *l, const char *why)
{
	l->connected = false;
	l->next_try = now_ns() + RETRY_NS;
	if (!RD.lost_logged)
		logmsg("redis %s:%d: %s (%s link): local delivery goes on; reconnecting every "
		       "second", RD.host, RD.port, why, l->what);
	RD.lost_logged = true;
}

static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv);

static void subscribe_all(void)
{
	size_t n = RD.ntopics, i;
	const char **argv;
	size_t *lens;
	char (*names)[PREFIX_LEN + 130];

	if (!RD.sub.connected || n == 0)
		return;
	argv = calloc(n + 1, sizeof(*argv));
	lens = calloc(n + 1, sizeof(*lens));
	names = calloc(n, sizeof(*names));
	if (argv && lens && names) {
		argv[0] = "SUBSCRIBE";
		lens[0] = 9;
		for (i = 0; i < n; i++) {
			snprintf(names[i], sizeof(names[i]), CHANNEL_PREFIX "%s", RD.topics[i]);
			argv[i + 1] = names[i];
			lens[i + 1] = strlen(names[i]);
		}
		redisAsyncCommandArgv(RD.sub.ac, on_sub_reply, NULL, (int)n + 1, argv, lens);
	}
	free(argv);
	free(lens);
	free(names);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct link *l = link_of(ac);

	if (!l)
		return;
	if (status != REDIS_OK) {
		lost(l, ac->errstr[0] ? ac->errstr : "cannot connect");
		return; /* hiredis frees the context */
	}
	l->connected = true;
	if (RD.pub.connected && RD.sub.connected) {
		logmsg("redis %s:%d: connected; subscribing to %zu topic%s", RD.host, RD.port,
		       RD.ntopics, RD.ntopics == 1 ? "" : "s");
		RD.lost_logged = false;
	}
	if (l == &RD.sub)
		subscribe_all();
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct link *l = link_of(ac);

	if (l && status != REDIS_OK)
		lost(l, ac->errstr[0] ? ac->errstr : "connection lost");
}

static void link_connect(struct link *l)
{
	redisAsyncContext *ac = redisAsyncConnect(RD.host, RD.port);

	l->next_try = now_ns() + RETRY_NS;
	if (!ac)
		return;
	if (ac->err) {
		lost(l, ac->errstr);
		redisAsyncFree(ac);
		return;
	}
	RD.reconnects++;
	l->ac = ac;
	l->fd = -1;
	l->events = 0;
	ac->ev.data = l;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

void redis_tick(uint64_t now)
{
	if (!RD.on)
		return;
	if (!RD.pub.ac && now >= RD.pub.next_try)
		link_connect(&RD.pub);
	if (!RD.sub.ac && now >= RD.sub.next_try)
		link_connect(&RD.sub);
}

/* ---- messages ------------------------------------------------------------- */

static void on_pub_reply(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;

	(void)ac;
	(void)priv;
	if (reply && reply->type == REDIS_REPLY_ERROR) {
		RD.errors++;
		logmsg("redis PUBLISH: %s", reply->str);
	}
}

static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r, *kind, *chan, *body;
	enum msg_type type;
	struct iovec iov;
	char topic[130];

	(void)ac;
	(void)priv;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
		return;
	kind = reply->element[0];
	chan = reply->element[1];
	body = reply->element[2];
	if (kind->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(kind->str, "subscribe") == 0 || strcmp(kind->str, "unsubscribe") == 0) {
		if (body->type == REDIS_REPLY_INTEGER)
			RD.channels = body->integer;
		return;
	}
	if (strcmp(kind->str, "message") != 0 || chan->type != REDIS_REPLY_STRING ||
	    body->type != REDIS_REPLY_STRING || chan->len <= PREFIX_LEN ||
	    chan->len - PREFIX_LEN >= sizeof(topic) || body->len < HDR_LEN)
		return;
	if (body->len - HDR_LEN > RD.max_message) {
		RD.too_big++; /* another node with a larger --max-message */
		return;
	}
	if (memcmp(body->str, RD.node, 8) == 0) {
		RD.skipped_own++; /* delivered locally when it was published */
		return;
	}
	memcpy(topic, chan->str + PREFIX_LEN, chan->len - PREFIX_LEN);
	topic[chan->len - PREFIX_LEN] = 0;
	type = body->str[8] == 't' ? MSG_TEXT : MSG_BINARY;
	iov.iov_base = body->str + HDR_LEN;
	iov.iov_len = body->len - HDR_LEN;
	RD.received++;
	if (topic_exists(topic))
		topic_publish(topic, &iov, 1, type);
}

void redis_publish(const char *topic, enum msg_type type, const void *data, size_t len)
{
	char chan[PREFIX_LEN + 130];
	unsigned char *body;

	if (!RD.on)
		return;
	if (!RD.pub.connected) {
		RD.local_only++;
		return;
	}
	body = malloc(HDR_LEN + len);
	if (!body) {
		RD.errors++;
		return;
	}
	memcpy(body, RD.node, 8);
	body[8] = type == MSG_TEXT ? 't' : 'b';
	if (len)
		memcpy(body + HDR_LEN, data, len);
	snprintf(chan, sizeof(chan), CHANNEL_PREFIX "%s", topic);
	/* %b: binary-safe; hiredis copies the command into its buffer */
	if (redisAsyncCommand(RD.pub.ac, on_pub_reply, NULL, "PUBLISH %b %b", chan, strlen(chan),
			      body, HDR_LEN + len) == REDIS_OK)
		RD.published++;
	else
		RD.errors++;
	free(body);
}

void redis_interest(const char *topic, bool on)
{
	size_t i;

	if (!RD.on)
		return;
	for (i = 0; i < RD.ntopics; i++)
		if (!strcmp(RD.topics[i], topic))
			break;
	if (on && i == RD.ntopics) {
		if (RD.ntopics == RD.cap) {
			size_t cap = RD.cap ? RD.cap * 2 : 16;
			char **nt = realloc(RD.topics, sizeof(*nt) * cap);

			if (!nt)
				return;
			RD.topics = nt;
			RD.cap = cap;
		}
		RD.topics[RD.ntopics] = strdup(topic);
		if (!RD.topics[RD.ntopics])
			return;
		RD.ntopics++;
		if (RD.sub.connected)
			redisAsyncCommand(RD.sub.ac, on_sub_reply, NULL, "SUBSCRIBE " CHANNEL_PREFIX "%s",
					  topic);
	} else if (!on && i < RD.ntopics) {
		free(RD.topics[i]);
		RD.topics[i] = RD.topics[--RD.ntopics];
		if (RD.sub.connected)
			redisAsyncCommand(RD.sub.ac, on_sub_reply, NULL,
					  "UNSUBSCRIBE " CHANNEL_PREFIX "%s", topic);
	}
}

void redis_stats_json(char *buf, size_t sz, size_t *off)
{
	int n;

	if (*off >= sz)
		return;
	if (!RD.on)
		n = snprintf(buf + *off, sz - *off, "\"redis\":null,");
	else
		n = snprintf(buf + *off, sz - *off,
			     "\"redis\":{\"server\":\"%s:%d\",\"connected\":%s,\"topics\":%zu,"
			     "\"channels\":%lld,\"published\":%llu,\"received\":%llu,"
			     "\"skipped_own\":%llu,\"local_only\":%llu,\"errors\":%llu,"
			     "\"too_big\":%llu,\"connects\":%llu},",
			     RD.host, RD.port, RD.pub.connected && RD.sub.connected ? "true" : "false",
			     RD.ntopics, RD.sub.connected ? RD.channels : 0,
			     (unsigned long long)RD.published, (unsigned long long)RD.received,
			     (unsigned long long)RD.skipped_own, (unsigned long long)RD.local_only,
			     (unsigned long long)RD.errors, (unsigned long long)RD.too_big,
			     (unsigned long long)RD.reconnects);
	if (n > 0)
		*off = (size_t)n >= sz - *off ? sz : *off + (size_t)n;
}

int redis_init(const char *spec, int epfd, size_t max_message)
{
	const char *colon = strrchr(spec, ':');
	char *end;
	long port;

	if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(RD.host))
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		return -1;
	memcpy(RD.host, spec, (size_t)(colon - spec));
	RD.host[colon - spec] = 0;
	RD.port = (int)port;
	RD.epfd = epfd;
	RD.max_message = max_message;
	if (getrandom(RD.node, sizeof(RD.node), 0) != (ssize_t)sizeof(RD.node))
		return -1;
	RD.on = true;
	RD.pub.tag.kind = RD.sub.tag.kind = TAG_REDIS;
	RD.pub.what = "publish";
	RD.sub.what = "subscribe";
	RD.pub.fd = RD.sub.fd = -1;
	link_connect(&RD.pub);
	link_connect(&RD.sub);
	return 0;
}

void redis_destroy(void)
{
	if (!RD.on)
		return;
	if (RD.pub.ac)
		redisAsyncFree(RD.pub.ac);
	if (RD.sub.ac)
		redisAsyncFree(RD.sub.ac);
	for (size_t i = 0; i < RD.ntopics; i++)
		free(RD.topics[i]);
	free(RD.topics);
	RD.on = false;
}
