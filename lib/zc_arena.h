/* SPDX-License-Identifier: MIT */
/*
 * The zero-copy engine's buffer (zc_arena.c): one registered region that
 * holds each call's payload until every socket that sent it from there has
 * let go of its pages (the SEND_ZC notifications). Payloads are placed in
 * FIFO order, like a ring; a region is reused only once it and every
 * region placed before it are released.
 */
#ifndef WRITEVV_ZC_ARENA_H
#define WRITEVV_ZC_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#define WVV_ARENA_RECORDS 64 /* payloads in flight at most */
#define WVV_ARENA_ALIGN 64

struct wvv_arena_rec {
	size_t off, len;
	int pending;  /* notifications still to come */
	bool open;    /* its call is still submitting */
};

struct wvv_arena {
	size_t size;
	size_t head;            /* end of the newest payload */
	unsigned first, count;  /* live records, oldest first, in rec[] as a ring */
	struct wvv_arena_rec rec[WVV_ARENA_RECORDS];
};

void wvv_arena_init(struct wvv_arena *a, size_t size);
/* The largest payload the arena takes (a quarter, so that calls overlap). */
size_t wvv_arena_max(const struct wvv_arena *a);
/* Place a payload of len bytes: its record id (>= 0) with *off set, open
 * until wvv_arena_close(); -ENOBUFS if no room now, -EMSGSIZE if never. */
int wvv_arena_alloc(struct wvv_arena *a, size_t len, size_t *off);
/* A send from record id will be followed by a notification... */
void wvv_arena_hold(struct wvv_arena *a, int id);
/* ...which has come. */
void wvv_arena_release(struct wvv_arena *a, int id);
/* The call that placed record id has submitted all its sends. */
void wvv_arena_close(struct wvv_arena *a, int id);
/* Bytes held by payloads still in flight. */
size_t wvv_arena_used(const struct wvv_arena *a);

#endif
