/* SPDX-License-Identifier: MIT */
/* Several relay nodes on one Redis (see redis.c).  All calls are no-ops
 * without --redis. */
#ifndef WRITEVV_RELAY_REDIS_H
#define WRITEVV_RELAY_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "topic.h"

/* history: --history, how many text messages Redis keeps per topic too. */
int redis_init(const char *hostport, int epfd, size_t max_message, unsigned history);
void redis_destroy(void);
void redis_event(void *tagged, uint32_t events);
/* Reconnects; call it now and then. */
void redis_tick(uint64_t now);
/* A message of one of this node's publishers, for every node.  true: Redis
 * brings it back to this node's subscribers too (in Redis's order, with
 * the id all nodes use), so it must not be delivered locally now; false:
 * deliver it locally (no Redis, or Redis cannot bring it back). */
bool redis_publish(const char *topic, enum msg_type type, const void *data, size_t len);
/* The topic got its first local subscriber (on) or lost its last one. */
void redis_interest(const char *topic, bool on);
/* SSE resume after the id `after`: true if this node's own history serves
 * it (no Redis, Redis unreachable, or the node has had every message of
 * the topic above an id at or below after); else redis_history_fetch. */
bool redis_history_local(const char *topic, uint64_t after);
/* Ask Redis for the topic's kept messages after `after`, once the topic's
 * SUBSCRIBE is confirmed (the subscriber must be one already): then
 * topic_resume_done(token, ...), always once.  0, or -errno (nothing was
 * asked: serve it locally). */
int redis_history_fetch(const char *topic, uint64_t after, uint64_t token);
void redis_stats_json(char *buf, size_t sz, size_t *off);

#endif
