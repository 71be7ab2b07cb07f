/* SPDX-License-Identifier: MIT */
/*
 * Several relay nodes on one Redis (--redis HOST:PORT), with hiredis.
 *
 * A node SUBSCRIBEs to the channels "writevv:TOPIC" of the topics its
 * clients use.  What its own publishers send (POST /pub/, WebSocket clients
 * with --client-publish) goes to Redis with one script (PUBLISH_SCRIPT) that
 * takes the message's id from the topic's counter (INCR writevv:id:TOPIC)
 * and PUBLISHes it tagged with that id, atomically: ids follow the order in
 * which Redis publishes.  Every node, the publishing one included, delivers
 * what comes back on its subscription, with the id it carries (the SSE
 * id:), so all subscribers on all nodes see a topic's messages in one order,
 * under the same ids.  A node's own message is therefore not delivered
 * locally when it is posted, except when Redis cannot bring it back:
 *  - the publish link is down: local delivery only, with a local id;
 *  - the subscribe link is down: published, and delivered locally;
 *  - the topic's SUBSCRIBE is not confirmed yet: the message waits here for
 *    the confirmation (after which Redis surely sends it back), bounded by
 *    PENDING_MAX bytes beyond which it goes as if the link were down.
 * A topic without local subscribers is not subscribed: its messages are
 * only published.  The counter lives in Redis; a restarted Redis without
 * persistence has lost it, so each node raises it to the last id it
 * delivered when its subscription is confirmed again, and the script never
 * gives an id at or below the publishing node's last one.  Two connections
 * (a subscribed one cannot PUBLISH), both driven by the relay's epoll
 * through hiredis's async hooks.  When Redis goes away the node says so,
 * goes on delivering locally, reconnects every second and subscribes again.
 * Redis pub/sub keeps nothing: what is published while a node is cut off
 * does not reach that node.
 *
 * The script goes by EVALSHA: SCRIPT LOAD first on each publish connection,
 * then only its SHA-1.  A NOSCRIPT reply (SCRIPT FLUSH; a Redis restarted
 * under a kept connection cannot happen, a new connection loads it again)
 * makes the node hold its new publishes until every reply is in, load the
 * script again, then send the failed ones and the held ones in their order.
 *
 * SSE history on every node: the script also appends each text message to
 * the stream writevv:hist:TOPIC (entry id 0-ID, MAXLEN ~ --history).  A node
 * resumes a Last-Event-ID from its own history when it has had every
 * message of the topic since before that id (subscribed, and the first
 * message after the SUBSCRIBE's confirmation was at or below it); else it
 * asks Redis (XREVRANGE on the publish connection, after the topic's
 * SUBSCRIBE is confirmed so that whatever the answer lacks comes live)
 * and topic.c merges the answer with the live messages by id.
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
#include <openssl/sha.h>

#include "redis.h"
#include "relay.h"

#define CHANNEL_PREFIX "writevv:"
#define PREFIX_LEN (sizeof(CHANNEL_PREFIX) - 1)
#define ID_PREFIX "writevv:id:" /* a key (keys and channels do not collide) */
#define HIST_PREFIX "writevv:hist:" /* a stream (topic names have no ':') */
#define HDR_LEN 9 /* node id (8) + type ('t' or 'b'), after "ID:" */
#define ID_DIGITS_MAX 20
#define RETRY_NS 1000000000ULL
#define PENDING_MAX (16u << 20)

/* KEYS: the id counter, the channel, the history stream; ARGV: the message
 * (node, type, bytes), the publishing node's last id of the topic, how many
 * entries the stream keeps (0: not kept).  Publishes "ID:message" and
 * appends the message to the stream under the entry id 0-ID, so that a
 * resume can ask for the entries after an SSE id (XREVRANGE); pcall: a
 * stream already past that id (its counter was deleted, not the stream)
 * must not stop the publish.  MAXLEN ~: Redis trims whole nodes of its
 * stream, at least ARGV[3] entries stay (an exact MAXLEN costs Redis about
 * twice the script's time); the fetch takes the newest ARGV[3]. */
static const char PUBLISH_SCRIPT[] =
	"local id = redis.call('INCR', KEYS[1]) "
	"local floor = tonumber(ARGV[2]) "
	"if id <= floor then id = floor + 1 redis.call('SET', KEYS[1], id) end "
	"redis.call('PUBLISH', KEYS[2], id .. ':' .. ARGV[1]) "
	"if ARGV[3] ~= '0' then "
	"redis.pcall('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '0-' .. id, 'm', ARGV[1]) end "
	"return id";
/* KEYS: the id counter; ARGV: a node's last id of the topic. */
static const char RAISE_SCRIPT[] =
	"if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then "
	"redis.call('SET', KEYS[1], ARGV[1]) end return 0";

/* A message of this node waiting for its topic's subscription. */
struct pending {
	struct pending *next;
	enum msg_type type;
	size_t len;
	unsigned char data[];
};

/* A publish sent to Redis, its reply not in yet (hiredis's privdata): kept
 * to send it again after a NOSCRIPT. */
struct inflight {
	struct inflight *next;
	char topic[TOPIC_MAX + 1];
	enum msg_type type;
	size_t len;               /* of body */
	unsigned char body[];     /* node (8), type, the message */
};

/* An SSE resume waiting for its topic's SUBSCRIBE, then for XREVRANGE. */
struct fetch {
	struct fetch *next;
	uint64_t token, after;
	char topic[TOPIC_MAX + 1];
};

/* A topic this node subscribes to (it has local subscribers). */
struct rtopic {
	char *name;
	bool confirmed;          /* Redis answered its SUBSCRIBE on this link */
	/* complete: this node has had every message with an id above since
	 * (the first one after the confirmation told where it starts) */
	bool complete, await_first;
	uint64_t since;
	struct pending *head, **tail;
	struct fetch *fetches;
};

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
	struct rtopic *topics;   /* topics with local subscribers */
	size_t ntopics, cap;
	size_t pending_bytes;
	uint64_t published, received, own, local_only, errors, reconnects, waited, id_behind;
	long long channels;      /* Redis's count in the last (un)subscribe reply */
	bool lost_logged;
	size_t max_message;
	uint64_t too_big;
	char sha[41];            /* PUBLISH_SCRIPT's SHA-1, for EVALSHA */
	unsigned history;        /* --history: the stream's MAXLEN */
	size_t inflight;         /* publishes without their reply yet */
	bool reloading;          /* a NOSCRIPT came: new publishes wait in held */
	struct inflight *redo, **redo_tail, *held, **held_tail;
	size_t awaiting;         /* topics with await_first */
	uint64_t noscript, fetches, fetched, fetch_failed;
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

static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv);
static void flush_pending(struct rtopic *rt);
static void raise_counter(const char *topic);
static void fetches_fail(struct rtopic *rt);
static void fetches_send(struct rtopic *rt);

/* Publishes that never reached Redis (they waited for a reload of the
 * script): delivered here, as when the link is down. */
static void unsent_local(struct inflight **head, struct inflight ***tail)
{
	while (*head) {
		struct inflight *f = *head;
		struct iovec iov = { f->body + HDR_LEN, f->len - HDR_LEN };

		*head = f->next;
		RD.local_only++;
		if (topic_exists(f->topic))
			topic_publish(f->topic, &iov, 1, f->type);
		free(f);
	}
	*tail = head;
}

static void lost(struct link *l, const char *why)
{
	l->connected = false;
	l->next_try = now_ns() + RETRY_NS;
	if (!RD.lost_logged)
		logmsg("redis %s:%d: %s (%s link): local delivery goes on; reconnecting every "
		       "second", RD.host, RD.port, why, l->what);
	RD.lost_logged = true;
	if (l == &RD.pub) {
		RD.reloading = false;
		unsent_local(&RD.redo, &RD.redo_tail);
		unsent_local(&RD.held, &RD.held_tail);
	}
	/* Either link: what this node has of its topics may have gaps from now
	 * on (missed messages; local ids), and no history can be fetched. */
	for (size_t i = 0; i < RD.ntopics; i++) {
		RD.topics[i].complete = RD.topics[i].await_first = false;
		fetches_fail(&RD.topics[i]);
	}
	RD.awaiting = 0;
	if (l == &RD.sub) {
		/* the count was the lost connection's: none until the new one's
		 * SUBSCRIBE reply (the stats said resubscribed before it came) */
		RD.channels = 0;
		for (size_t i = 0; i < RD.ntopics; i++) {
			RD.topics[i].confirmed = false;
			flush_pending(&RD.topics[i]); /* nothing brings them back now */
		}
	}
}

static void on_load_reply(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;

	(void)ac;
	(void)priv;
	if (reply && (reply->type != REDIS_REPLY_STRING || strcmp(reply->str, RD.sha))) {
		RD.errors++;
		logmsg("redis SCRIPT LOAD: %s", reply->type == REDIS_REPLY_ERROR ? reply->str :
		       "not the script's SHA-1");
	}
}

/* Before the publishes on this connection: they go as EVALSHA. */
static void script_load(void)
{
	redisAsyncCommand(RD.pub.ac, on_load_reply, NULL, "SCRIPT LOAD %s", PUBLISH_SCRIPT);
}

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
			snprintf(names[i], sizeof(names[i]), CHANNEL_PREFIX "%s", RD.topics[i].name);
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
	if (l == &RD.sub) /* a new connection: nothing is subscribed on it yet */
		for (size_t i = 0; i < RD.ntopics; i++)
			RD.topics[i].confirmed = false;
	else { /* a restarted Redis has lost the counters (and the scripts) */
		script_load();
		for (size_t i = 0; i < RD.ntopics; i++)
			raise_counter(RD.topics[i].name);
	}
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

static struct rtopic *rtopic_find(const char *topic)
{
	for (size_t i = 0; i < RD.ntopics; i++)
		if (!strcmp(RD.topics[i].name, topic))
			return &RD.topics[i];
	return NULL;
}

static int send_inflight(struct inflight *f);

/* All replies are in after a NOSCRIPT: load the script again, then send
 * what failed and what waited, in their order (one connection: Redis runs
 * them in that order, after the load). */
static void reload(void)
{
	struct inflight *list, *f, **ft;

	*RD.redo_tail = RD.held;
	list = RD.redo;
	RD.redo = RD.held = NULL;
	RD.redo_tail = &RD.redo;
	RD.held_tail = &RD.held;
	RD.reloading = false;
	script_load();
	while (list) {
		f = list;
		list = f->next;
		f->next = NULL;
		ft = &f;
		if (send_inflight(f) < 0)
			unsent_local(&f, &ft);
	}
}

static void on_pub_reply(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct inflight *f = priv;

	(void)ac;
	RD.inflight--;
	if (reply && reply->type == REDIS_REPLY_ERROR && !strncmp(reply->str, "NOSCRIPT", 8)) {
		/* Redis restarted or SCRIPT FLUSH: this one goes again after a
		 * reload, and so do the publishes sent after it, in order. */
		if (!RD.reloading)
			logmsg("redis: the publish script is gone (%s): loading it again", reply->str);
		RD.noscript++;
		RD.reloading = true;
		f->next = NULL;
		*RD.redo_tail = f;
		RD.redo_tail = &f->next;
		f = NULL;
	} else if (reply && reply->type == REDIS_REPLY_ERROR) {
		RD.errors++;
		logmsg("redis publish script: %s", reply->str);
	}
	free(f);
	if (reply && RD.reloading && RD.inflight == 0 && RD.pub.connected)
		reload();
}

static void on_raise_reply(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;

	(void)ac;
	(void)priv;
	if (reply && reply->type == REDIS_REPLY_ERROR) {
		RD.errors++;
		logmsg("redis counter script: %s", reply->str);
	}
}

/* EVALSHA of PUBLISH_SCRIPT for f: 0 (f is the callback's from here), or
 * -1 (hiredis did not take it; f is the caller's). */
static int send_inflight(struct inflight *f)
{
	char chan[PREFIX_LEN + 130], key[sizeof(ID_PREFIX) + 130], hist[sizeof(HIST_PREFIX) + 130];
	char floor[24], maxlen[16];

	if (RD.reloading) { /* after the ones that failed */
		f->next = NULL;
		*RD.held_tail = f;
		RD.held_tail = &f->next;
		return 0;
	}
	snprintf(chan, sizeof(chan), CHANNEL_PREFIX "%s", f->topic);
	snprintf(key, sizeof(key), ID_PREFIX "%s", f->topic);
	snprintf(hist, sizeof(hist), HIST_PREFIX "%s", f->topic);
	snprintf(floor, sizeof(floor), "%llu", (unsigned long long)topic_last_id(f->topic));
	/* only text: the history serves SSE resumes, which carry no binary */
	snprintf(maxlen, sizeof(maxlen), "%u", f->type == MSG_TEXT ? RD.history : 0);
	/* %b: binary-safe; hiredis copies the command into its buffer */
	if (redisAsyncCommand(RD.pub.ac, on_pub_reply, f, "EVALSHA %s 3 %s %s %s %b %s %s", RD.sha,
			      key, chan, hist, f->body, f->len, floor, maxlen) != REDIS_OK) {
		RD.errors++;
		return -1;
	}
	RD.inflight++;
	return 0;
}

/* PUBLISH_SCRIPT for one message. 0, or -1 if it cannot go. */
static int send_publish(const char *topic, enum msg_type type, const void *data, size_t len)
{
	struct inflight *f = malloc(sizeof(*f) + HDR_LEN + len);

	if (!f || strlen(topic) > TOPIC_MAX) {
		free(f);
		RD.errors++;
		return -1;
	}
	strcpy(f->topic, topic);
	f->type = type;
	f->len = HDR_LEN + len;
	memcpy(f->body, RD.node, 8);
	f->body[8] = type == MSG_TEXT ? 't' : 'b';
	if (len)
		memcpy(f->body + HDR_LEN, data, len);
	if (send_inflight(f) < 0) {
		free(f);
		return -1;
	}
	RD.published++;
	return 0;
}

/* The messages that waited for rt's subscription: published if it is
 * confirmed (they come back), else published if possible and delivered. */
static void flush_pending(struct rtopic *rt)
{
	while (rt->head) {
		struct pending *p = rt->head;
		struct iovec iov = { p->data, p->len };
		bool back = RD.pub.connected && RD.sub.connected && rt->confirmed;

		rt->head = p->next;
		RD.pending_bytes -= p->len;
		if (RD.pub.connected ? send_publish(rt->name, p->type, p->data, p->len) < 0 || !back
				     : (RD.local_only++, true))
			topic_publish(rt->name, &iov, 1, p->type);
		free(p);
	}
	rt->tail = &rt->head;
}

/* Raise the topic's counter in Redis to the last id this node delivered
 * (a restarted Redis starts from nothing). */
static void raise_counter(const char *topic)
{
	char key[sizeof(ID_PREFIX) + 130], last[24];
	uint64_t id = topic_last_id(topic);

	if (!RD.pub.connected || !id)
		return;
	snprintf(key, sizeof(key), ID_PREFIX "%s", topic);
	snprintf(last, sizeof(last), "%llu", (unsigned long long)id);
	redisAsyncCommand(RD.pub.ac, on_raise_reply, NULL, "EVAL %s 1 %s %s", RAISE_SCRIPT, key,
			  last);
}

/* Redis confirmed the SUBSCRIBE of a channel: raise the topic's counter,
 * then send what waited for it. */
static void confirmed(const char *chan, size_t len)
{
	char topic[130];
	struct rtopic *rt;

	if (len <= PREFIX_LEN || len - PREFIX_LEN >= sizeof(topic) ||
	    memcmp(chan, CHANNEL_PREFIX, PREFIX_LEN))
		return;
	memcpy(topic, chan + PREFIX_LEN, len - PREFIX_LEN);
	topic[len - PREFIX_LEN] = 0;
	rt = rtopic_find(topic);
	if (!rt)
		return; /* unsubscribed since */
	rt->confirmed = true;
	if (!rt->complete && !rt->await_first) {
		rt->await_first = true;
		RD.awaiting++;
	}
	raise_counter(topic);
	flush_pending(rt);
	fetches_send(rt);
}

static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r, *kind, *chan, *body;
	enum msg_type type;
	struct iovec iov;
	char topic[130];
	unsigned long long id = 0;
	size_t d = 0;

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
		if (kind->str[0] == 's' && chan->type == REDIS_REPLY_STRING)
			confirmed(chan->str, chan->len);
		return;
	}
	if (strcmp(kind->str, "message") != 0 || chan->type != REDIS_REPLY_STRING ||
	    body->type != REDIS_REPLY_STRING || chan->len <= PREFIX_LEN ||
	    chan->len - PREFIX_LEN >= sizeof(topic))
		return;
	/* "ID:" then the message */
	while (d < body->len && d < ID_DIGITS_MAX && body->str[d] >= '0' && body->str[d] <= '9')
		id = id * 10 + (unsigned long long)(body->str[d++] - '0');
	if (d == 0 || d >= body->len || body->str[d] != ':' || body->len - d - 1 < HDR_LEN) {
		RD.errors++; /* not a message of this version's nodes */
		return;
	}
	d++;
	if (body->len - d - HDR_LEN > RD.max_message) {
		RD.too_big++; /* another node with a larger --max-message */
		return;
	}
	if (memcmp(body->str + d, RD.node, 8) == 0)
		RD.own++;
	memcpy(topic, chan->str + PREFIX_LEN, chan->len - PREFIX_LEN);
	topic[chan->len - PREFIX_LEN] = 0;
	type = body->str[d + 8] == 't' ? MSG_TEXT : MSG_BINARY;
	iov.iov_base = body->str + d + HDR_LEN;
	iov.iov_len = body->len - d - HDR_LEN;
	RD.received++;
	if (RD.awaiting) {
		struct rtopic *rt = rtopic_find(topic);

		if (rt && rt->await_first) { /* every message from this one on comes */
			rt->await_first = false;
			RD.awaiting--;
			rt->complete = true;
			rt->since = id - 1;
		}
	}
	if (!topic_exists(topic))
		return;
	if (id <= topic_last_id(topic))
		RD.id_behind++; /* the counter went back (a Redis without it): a local id */
	topic_publish_id(topic, &iov, 1, type, id);
}

/* ---- history (SSE resume on any node) -------------------------------- */

/* No history from Redis for this subscriber: it resumes from this node's. */
static void fetch_fail(struct fetch *fe)
{
	RD.fetch_failed++;
	topic_resume_done(fe->token, NULL, 0);
	free(fe);
}

/* An XREVRANGE reply, newest first: [[ "0-ID", [ "m", body ] ], ...]; to
 * the waiting subscriber in id order, or NULL (no reply: it resumes from
 * this node's history). */
static void on_fetch_reply(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct fetch *fe = priv;
	struct hist_msg *v = NULL;
	size_t n = 0;

	(void)ac;
	if (reply && reply->type == REDIS_REPLY_ARRAY)
		v = calloc(reply->elements ? reply->elements : 1, sizeof(*v));
	if (!v) {
		if (reply && reply->type == REDIS_REPLY_ERROR)
			logmsg("redis XREVRANGE: %s", reply->str);
		fetch_fail(fe);
		return;
	}
	for (size_t i = reply->elements; i-- > 0;) {
		redisReply *e = reply->element[i], *kv;
		unsigned long long id;
		char *end;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING || strncmp(e->element[0]->str, "0-", 2))
			continue;
		kv = e->element[1];
		id = strtoull(e->element[0]->str + 2, &end, 10);
		if (*end || kv->type != REDIS_REPLY_ARRAY || kv->elements != 2 ||
		    kv->element[1]->type != REDIS_REPLY_STRING || kv->element[1]->len < HDR_LEN ||
		    kv->element[1]->str[8] != 't' || kv->element[1]->len - HDR_LEN > RD.max_message)
			continue;
		v[n].id = id;
		v[n].data = kv->element[1]->str + HDR_LEN;
		v[n].len = kv->element[1]->len - HDR_LEN;
		n++;
	}
	RD.fetched += n;
	topic_resume_done(fe->token, v, n);
	free(v);
	free(fe);
}

static void fetch_send(struct fetch *fe)
{
	char key[sizeof(HIST_PREFIX) + 130];

	snprintf(key, sizeof(key), HIST_PREFIX "%s", fe->topic);
	RD.fetches++;
	/* the newest --history entries down to 0-(after+1), the first one after
	 * the client's id: what a local history of --history messages keeps */
	if (redisAsyncCommand(RD.pub.ac, on_fetch_reply, fe, "XREVRANGE %s + 0-%llu COUNT %u", key,
			      (unsigned long long)fe->after + 1, RD.history) != REDIS_OK)
		fetch_fail(fe);
}

/* The topic's SUBSCRIBE is confirmed: whatever XREVRANGE does not return
 * will come on the subscription. */
static void fetches_send(struct rtopic *rt)
{
	while (rt->fetches) {
		struct fetch *fe = rt->fetches;

		rt->fetches = fe->next;
		if (RD.pub.connected)
			fetch_send(fe);
		else
			fetch_fail(fe);
	}
}

static void fetches_fail(struct rtopic *rt)
{
	while (rt->fetches) {
		struct fetch *fe = rt->fetches;

		rt->fetches = fe->next;
		fetch_fail(fe);
	}
}

bool redis_history_local(const char *topic, uint64_t after)
{
	struct rtopic *rt;

	if (!RD.on || !RD.history || !RD.pub.connected || !RD.sub.connected ||
	    after == UINT64_MAX)
		return true;
	rt = rtopic_find(topic);
	return !rt || (rt->complete && after >= rt->since);
}

int redis_history_fetch(const char *topic, uint64_t after, uint64_t token)
{
	struct rtopic *rt = rtopic_find(topic);
	struct fetch *fe;

	if (!rt || !RD.pub.connected || !RD.sub.connected || strlen(topic) > TOPIC_MAX)
		return -ENOTCONN;
	fe = malloc(sizeof(*fe));
	if (!fe)
		return -ENOMEM;
	fe->token = token;
	fe->after = after;
	strcpy(fe->topic, topic);
	if (rt->confirmed) {
		fetch_send(fe);
	} else {
		fe->next = rt->fetches;
		rt->fetches = fe;
	}
	return 0;
}

bool redis_publish(const char *topic, enum msg_type type, const void *data, size_t len)
{
	struct rtopic *rt;
	struct pending *p;

	if (!RD.on)
		return false;
	if (!RD.pub.connected) {
		RD.local_only++;
		return false;
	}
	rt = rtopic_find(topic);
	if (RD.sub.connected && rt && !rt->confirmed && RD.pending_bytes + len <= PENDING_MAX &&
	    (p = malloc(sizeof(*p) + len)) != NULL) {
		/* Not subscribed yet: published once Redis will send it back. */
		p->next = NULL;
		p->type = type;
		p->len = len;
		if (len)
			memcpy(p->data, data, len);
		*rt->tail = p;
		rt->tail = &p->next;
		RD.pending_bytes += len;
		RD.waited++;
		return true;
	}
	if (send_publish(topic, type, data, len) < 0)
		return false;
	/* Subscribed: it comes back in Redis's order.  No local subscribers:
	 * nothing to deliver here.  Else (the subscribe link is down, or the
	 * message could not wait) it is delivered here now. */
	return RD.sub.connected && (!rt || rt->confirmed);
}

void redis_interest(const char *topic, bool on)
{
	struct rtopic *rt;

	if (!RD.on)
		return;
	rt = rtopic_find(topic);
	if (on && !rt) {
		if (RD.ntopics == RD.cap) {
			size_t cap = RD.cap ? RD.cap * 2 : 16;
			struct rtopic *nt = realloc(RD.topics, sizeof(*nt) * cap);

			if (!nt)
				return;
			RD.topics = nt;
			RD.cap = cap;
			for (size_t i = 0; i < RD.ntopics; i++) /* the lists moved */
				if (!RD.topics[i].head)
					RD.topics[i].tail = &RD.topics[i].head;
				else {
					struct pending *q = RD.topics[i].head;

					while (q->next)
						q = q->next;
					RD.topics[i].tail = &q->next;
				}
		}
		rt = &RD.topics[RD.ntopics];
		rt->name = strdup(topic);
		if (!rt->name)
			return;
		rt->confirmed = rt->complete = rt->await_first = false;
		rt->since = 0;
		rt->fetches = NULL;
		rt->head = NULL;
		rt->tail = &rt->head;
		RD.ntopics++;
		if (RD.sub.connected)
			redisAsyncCommand(RD.sub.ac, on_sub_reply, NULL, "SUBSCRIBE " CHANNEL_PREFIX "%s",
					  topic);
	} else if (!on && rt) {
		size_t i = (size_t)(rt - RD.topics);

		rt->confirmed = false;
		flush_pending(rt);
		fetches_fail(rt);
		if (rt->await_first)
			RD.awaiting--;
		free(rt->name);
		RD.topics[i] = RD.topics[--RD.ntopics];
		if (i < RD.ntopics)
			RD.topics[i].tail = RD.topics[i].head ? RD.topics[i].tail : &RD.topics[i].head;
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
			     "\"own\":%llu,\"waited\":%llu,\"id_behind\":%llu,"
			     "\"local_only\":%llu,\"errors\":%llu,"
			     "\"too_big\":%llu,\"connects\":%llu,\"noscript\":%llu,"
			     "\"history_fetches\":%llu,\"history_fetched\":%llu,"
			     "\"history_fetch_failed\":%llu},",
			     RD.host, RD.port, RD.pub.connected && RD.sub.connected ? "true" : "false",
			     RD.ntopics, RD.sub.connected ? RD.channels : 0,
			     (unsigned long long)RD.published, (unsigned long long)RD.received,
			     (unsigned long long)RD.own, (unsigned long long)RD.waited,
			     (unsigned long long)RD.id_behind, (unsigned long long)RD.local_only,
			     (unsigned long long)RD.errors, (unsigned long long)RD.too_big,
			     (unsigned long long)RD.reconnects, (unsigned long long)RD.noscript,
			     (unsigned long long)RD.fetches, (unsigned long long)RD.fetched,
			     (unsigned long long)RD.fetch_failed);
	if (n > 0)
		*off = (size_t)n >= sz - *off ? sz : *off + (size_t)n;
}

int redis_init(const char *spec, int epfd, size_t max_message, unsigned history)
{
	unsigned char dg[SHA_DIGEST_LENGTH];

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
	RD.history = history;
	SHA1((const unsigned char *)PUBLISH_SCRIPT, sizeof(PUBLISH_SCRIPT) - 1, dg);
	for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
		snprintf(RD.sha + 2 * i, 3, "%02x", dg[i]);
	RD.redo_tail = &RD.redo;
	RD.held_tail = &RD.held;
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
	while (RD.redo) {
		struct inflight *f = RD.redo;

		RD.redo = f->next;
		free(f);
	}
	while (RD.held) {
		struct inflight *f = RD.held;

		RD.held = f->next;
		free(f);
	}
	for (size_t i = 0; i < RD.ntopics; i++) {
		while (RD.topics[i].fetches) {
			struct fetch *fe = RD.topics[i].fetches;

			RD.topics[i].fetches = fe->next;
			free(fe);
		}
		while (RD.topics[i].head) {
			struct pending *p = RD.topics[i].head;

			RD.topics[i].head = p->next;
			free(p);
		}
		free(RD.topics[i].name);
	}
	free(RD.topics);
	RD.on = false;
}
