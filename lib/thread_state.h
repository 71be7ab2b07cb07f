/* SPDX-License-Identifier: MIT */
/* Per-thread engine state that a fork()ed child must not share. */
#ifndef WRITEVV_THREAD_STATE_H
#define WRITEVV_THREAD_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

struct wvv_tls {
	_Atomic int ready;          /* key created */
	pthread_key_t key;
	size_t size;                /* of the state */
	int (*init)(void *state);   /* on zeroed memory; 0 or -errno */
	void (*fini)(void *state);  /* at thread exit, or in a fork()ed child */
};

#define WVV_TLS_INIT(type, init_fn, fini_fn) \
	{ 0, 0, sizeof(type), init_fn, fini_fn }

/*
 * This thread's state, made on first use. In a child of fork() the state
 * inherited from the parent (a ring or file shared with it) is finalised
 * (closing the child's copies only) and made anew. NULL with *err on error.
 */
void *wvv_tls_get(struct wvv_tls *t, int *err);
/* Finalise and forget this thread's state (it is made anew on next use). */
void wvv_tls_drop(struct wvv_tls *t);

#endif
