/* SPDX-License-Identifier: MIT */
/* writevv-relay: shared declarations. */
#ifndef WRITEVV_RELAY_H
#define WRITEVV_RELAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "clock.h"
#include "mode_names.h"

#define TS_PACKET 188
#define TS_SYNC 0x47

/* What an epoll_event.data.ptr points at: every such struct starts with one. */
enum tag_kind {
	TAG_LISTEN,   /* viewers' HTTP listener */
	TAG_INGEST,   /* publisher listener */
	TAG_PUB,      /* the publisher connection or stdin */
	TAG_SIGNAL,   /* signalfd */
	TAG_HTTP,     /* an HTTP connection still reading its request */
	TAG_VIEWER,   /* a streaming viewer */
	TAG_SHARDEV,  /* a shard's queue eventfd */
	TAG_SUB,      /* a topic subscriber (topic.c) */
	TAG_PUBCONN,  /* a POST /pub/ publisher (topic.c) */
	TAG_REDIS,    /* a Redis connection (redis.c) */
	TAG_INGEST_TOPIC, /* a further --ingest listener, feeding a topic */
};

struct tag {
	enum tag_kind kind;
};

#define MAX_EXTRA_INGEST 16

struct options {
	const char *listen;
	const char *ingest;
	bool use_stdin;
	int mode;            /* -1: leave the library's choice (WRITEVV_MODE env) */
	const char *content_type;
	size_t max_backlog;
	bool ts_align;
	double stats_interval;
	int max_delay_ms;
	int threads;
	int sndbuf;
	double drain_timeout;
	bool verbose;
	const char *ingest_topic;  /* the topic --ingest/--stdin feeds */
	size_t max_message;
	unsigned history;
	unsigned max_topics;
	bool client_publish;
	const char *redis;         /* HOST:PORT or NULL */
	bool ws_deflate;           /* accept permessage-deflate offers */
	const char *www;           /* --www: the pages' data directory, NULL: default */
	struct { const char *addr, *topic; } extra[MAX_EXTRA_INGEST]; /* --ingest A=T */
	int n_extra;
};

/*
 * The stream ring: the last 'size' bytes of the stream, addressed by
 * absolute stream offset.  Every viewer is an offset into it.
 */
struct ring {
	unsigned char *buf;
	size_t size;
};

static inline int ring_iov(const struct ring *r, uint64_t from, uint64_t to,
			   struct iovec iov[2])
{
	size_t off = (size_t)(from % r->size);
	size_t len = (size_t)(to - from);
	size_t first;

	if (len == 0)
		return 0;
	first = r->size - off;
	iov[0].iov_base = r->buf + off;
	if (len <= first) {
		iov[0].iov_len = len;
		return 1;
	}
	iov[0].iov_len = first;
	iov[1].iov_base = r->buf;
	iov[1].iov_len = len - first;
	return 2;
}

static inline unsigned char ring_byte(const struct ring *r, uint64_t at)
{
	return r->buf[at % r->size];
}

enum viewer_state { V_READY, V_BEHIND, V_WAIT, V_CLOSED };

struct viewer {
	struct tag tag;
	int fd;
	enum viewer_state state;
	int idx;            /* index in the shard array of its state */
	uint64_t pos;       /* next stream offset to send */
	uint64_t limit;     /* end of its publisher session, or UINT64_MAX */
	struct viewer *next_dead;
};

struct vlist {
	struct viewer **v;
	int n, cap;
};

enum qkind { Q_VIEWER, Q_DATA, Q_EOF, Q_STOP };

struct qitem {
	enum qkind kind;
	uint64_t val;   /* head for DATA/EOF, fd for VIEWER */
};

struct shard {
	struct tag evtag;      /* TAG_SHARDEV for its eventfd */
	int id;
	int epfd;
	bool threaded;
	const struct options *opt;
	const struct ring *ring;

	uint64_t head;         /* stream end this shard has processed */
	bool ended;            /* the current session ended (EOF seen) */
	struct vlist ready;    /* pos == head, no EPOLLOUT */
	struct vlist behind;   /* unsent backlog, waiting for EPOLLOUT */
	struct vlist wait;     /* --ts-align: waiting for a packet boundary */
	int *fds;              /* scratch for writevv, sized like ready */
	size_t *rets;
	int *errs;
	int scratch_cap;
	struct viewer *dead;   /* closed, freed after the current event batch */

	/* Lowest stream offset this shard may still read from the ring. */
	_Atomic uint64_t low;

	/* counters, read by the stats code in the main thread */
	_Atomic uint64_t n_viewers;
	_Atomic uint64_t n_behind;
	_Atomic uint64_t bytes_out;
	_Atomic uint64_t drops;
	_Atomic uint64_t left;
	_Atomic uint64_t finished;
	_Atomic uint64_t calls;
	_Atomic uint64_t cpu_ns;
	_Atomic uint64_t joined;

	/* threaded mode: the inbox */
	pthread_t thread;
	int evfd;
	pthread_mutex_t qlock;
	struct qitem *q;
	size_t qn, qcap;
};

/* shard.c */
int shard_init(struct shard *sh, int id, int epfd, bool threaded,
	       const struct options *opt, const struct ring *ring, uint64_t head);
void shard_destroy(struct shard *sh);
void shard_add_viewer(struct shard *sh, int fd);
void shard_data(struct shard *sh, uint64_t new_head);
void shard_eof(struct shard *sh, uint64_t end);
void shard_viewer_event(struct shard *sh, struct viewer *v, uint32_t events);
void shard_reap(struct shard *sh);
void shard_close_all(struct shard *sh);
/* threaded mode */
int shard_start(struct shard *sh);
void shard_post(struct shard *sh, enum qkind kind, uint64_t val);
void shard_join(struct shard *sh);

/* options.c */
void parse_args(int argc, char **argv, struct options *o);

/* util.c */
long rss_kb(void);
extern bool relay_verbose;
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vlogmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
