/* SPDX-License-Identifier: MIT */
/*
 * Topics: named message streams with subscribers over HTTP streams, SSE and
 * WebSocket, and publishers over POST.  Runs in the main thread.  Each tick,
 * a topic's messages queued since the last tick go to all of its ready
 * subscribers of one kind in one writevv() call.
 */
#ifndef WRITEVV_RELAY_TOPIC_H
#define WRITEVV_RELAY_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "http.h"

/* SUB_WSZ: WebSocket with permessage-deflate (one compressed frame per message) */
enum sub_kind { SUB_STREAM, SUB_SSE, SUB_WS, SUB_WSZ, SUB_KINDS };

enum msg_type {
	MSG_TEXT,     /* published as text: WebSocket text frame, an SSE event */
	MSG_BINARY,   /* WebSocket binary frame; not sent to SSE */
	MSG_CTL,      /* a WebSocket control frame for one subscriber, bytes as they are */
};

struct topic_opts {
	size_t max_backlog;
	size_t max_message;
	unsigned history;
	unsigned max_topics;
	bool client_publish;
	bool ws_deflate;
	int sndbuf;
};

struct topic_totals {
	uint64_t subscribers, topics, messages, bytes_in, bytes_out, deliveries, drops,
		calls, cpu_ns, publishers, ws_errors;
};

int topics_init(int epfd, const struct topic_opts *o);
void topics_destroy(void);

/* 0, or an HTTP status: 400 bad name, 503 too many topics. */
int topic_check(const char *name, size_t len);
/* Hand over an accepted connection whose response header was sent. */
int topic_subscribe(const char *name, int fd, enum sub_kind kind, const struct http_req *req,
		    const unsigned char *pre, size_t prelen);
/* A POST /pub/NAME request: the connection reads its body from here on.
 * held (malloc'd, taken over; may be NULL): answers to this connection's
 * earlier pipelined requests, not sent yet (they go before this one's). */
void topic_publisher(const char *name, int fd, const struct http_req *req,
		     const unsigned char *pre, size_t prelen, char *held, size_t heldlen);
/* A raw TCP publisher (a further --ingest): each read is one binary message.
 * *busy is cleared when it ends. */
void topic_raw_publisher(const char *name, int fd, bool *busy);
/* Queue a message (copied) for the next tick, with the topic's next id. */
int topic_publish(const char *name, const struct iovec *iov, int iovcnt, enum msg_type type);
/* The same with the id Redis gave it (used if above the topic's last id,
 * else the next one: a Redis that lost its counter). */
int topic_publish_id(const char *name, const struct iovec *iov, int iovcnt, enum msg_type type,
		     uint64_t id);
/* A text message of the topic's history in Redis (redis.c). */
struct hist_msg {
	uint64_t id;
	const void *data;
	size_t len;
};
/* The answer to redis_history_fetch(token): the kept text messages after the
 * subscriber's Last-Event-ID, in id order (v NULL: none could be had). */
void topic_resume_done(uint64_t token, const struct hist_msg *v, size_t n);
/* The id of the topic's last message here (0: none, or no such topic). */
uint64_t topic_last_id(const char *name);
bool topic_has_subscribers(const char *name);
bool topic_exists(const char *name);

void topics_tick(void);
void topics_going_away(uint64_t drain_ns);
bool topics_busy(void);
void topics_event(void *tagged, uint32_t events);
void topics_sweep(uint64_t now);
void topics_reap(void);
void topics_totals(struct topic_totals *t);
/* Appends "topics":{...} to buf at *off (bounded by sz). */
void topics_stats_json(char *buf, size_t sz, size_t *off);

/* conn.c: a connection that goes on with another HTTP request; held
 * (malloc'd, taken over; may be NULL) as for topic_publisher(). */
void relay_adopt_conn(int fd, const unsigned char *pre, size_t prelen, char *held,
		      size_t heldlen);
/* conn.c: half-close, read what still comes for a while, then close. */
void relay_linger_conn(int fd);

#endif
