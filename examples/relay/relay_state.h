/* SPDX-License-Identifier: MIT */
/* writevv-relay: the process's state (R, relay.c) and what relay.c,
 * sockets.c, stats.c, conn.c and publisher.c give each other. */
#ifndef WRITEVV_RELAY_STATE_H
#define WRITEVV_RELAY_STATE_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "relay.h"
#include "topic.h"

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
	char *out;   /* in H_READ: answers to earlier pipelined requests, held */
	char in[HTTP_MAX_HEADER];
};

struct relay {
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
};
extern struct relay R;

struct totals {
	uint64_t viewers, behind, bytes_out, drops, left, finished, calls, cpu_ns, joined;
};

/* sockets.c: listening, accepting, epoll */
void sockname(int fd, char *out, size_t outsz);
int listen_on(const char *spec, const char *what);
void ep_add(int fd, uint32_t events, void *ptr);
void ep_mod(int fd, uint32_t events, void *ptr);
void raise_nofile(void);
void log_emfile(int err);
int accept_one(int lfd);

/* stats.c: counters, /stats and the periodic line */
void totals(struct totals *t);
int current_engine(void);
size_t stats_json(char *buf, size_t sz);
void print_stats_line(void);

/* conn.c: HTTP connections, from the request to a viewer, a topic or an error */
void conn_close(struct hconn *c);
void conn_event(struct hconn *c, uint32_t ev);
void run_ready_conns(void);
void accept_viewers(void);
void sweep_conns(uint64_t now);
void reap_conns(void);

/* publisher.c: the stream publisher (--ingest, --stdin) and the topic ingests */
void flush_chunk(void);
void pub_readable(void);
void accept_publisher(void);
void accept_topic_publisher(struct extra_ingest *x);

#endif
