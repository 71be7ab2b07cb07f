/* SPDX-License-Identifier: MIT */
/* Several relay nodes on one Redis (see redis.c).  All calls are no-ops
 * without --redis. */
#ifndef WRITEVV_RELAY_REDIS_H
#define WRITEVV_RELAY_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "topic.h"

int redis_init(const char *hostport, int epfd, size_t max_message);
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
void redis_stats_json(char *buf, size_t sz, size_t *off);

#endif
