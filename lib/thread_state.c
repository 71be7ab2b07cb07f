/* SPDX-License-Identifier: MIT */
/* Per-thread engine state, remade in fork()ed children. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "thread_state.h"

struct tls_hdr {
	struct wvv_tls *owner;
	unsigned fork_gen;
	/* the state follows, max-aligned */
	_Alignas(max_align_t) unsigned char state[];
};

static _Atomic unsigned fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void child_after_fork(void)
{
	atomic_fetch_add(&fork_gen, 1);
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, child_after_fork);
}

static void destroy(void *arg)
{
	struct tls_hdr *h = arg;

	h->owner->fini(h->state);
	free(h);
}

static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;

static int make_key(struct wvv_tls *t)
{
	int err = 0;

	pthread_once(&atfork_once, register_atfork);
	pthread_mutex_lock(&key_lock);
	if (!atomic_load(&t->ready)) {
		err = -pthread_key_create(&t->key, destroy);
		if (!err)
			atomic_store_explicit(&t->ready, 1, memory_order_release);
	}
	pthread_mutex_unlock(&key_lock);
	return err;
}

void *wvv_tls_get(struct wvv_tls *t, int *err)
{
	struct tls_hdr *h;

	if (!atomic_load_explicit(&t->ready, memory_order_acquire) && (*err = make_key(t)))
		return NULL;

	h = pthread_getspecific(t->key);
	if (h && h->fork_gen == atomic_load(&fork_gen))
		return h->state;
	if (h)
		wvv_tls_drop(t);
	h = calloc(1, sizeof(*h) + t->size);
	if (!h) {
		*err = -ENOMEM;
		return NULL;
	}
	h->owner = t;
	h->fork_gen = atomic_load(&fork_gen);
	*err = t->init(h->state);
	if (*err) {
		free(h);
		return NULL;
	}
	pthread_setspecific(t->key, h);
	return h->state;
}

void wvv_tls_drop(struct wvv_tls *t)
{
	struct tls_hdr *h;

	if (!atomic_load_explicit(&t->ready, memory_order_acquire))
		return;
	h = pthread_getspecific(t->key);
	if (!h)
		return;
	pthread_setspecific(t->key, NULL);
	destroy(h);
}
