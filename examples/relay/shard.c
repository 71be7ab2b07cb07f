/* SPDX-License-Identifier: MIT */
/*
 * A shard: a set of viewers served by one thread.  Every chunk of the stream
 * goes to all of the shard's ready viewers with one writevv() call; a viewer
 * that could not take all of it keeps its place in the stream ring (its
 * backlog is ring[pos, head)) and catches up on EPOLLOUT.  A viewer whose
 * backlog exceeds --max-backlog is dropped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <writevv.h>

#include "relay.h"

enum close_why { WHY_FINISH, WHY_DROP, WHY_LEFT };

static int vlist_push(struct vlist *l, struct viewer *v)
{
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 64;
		struct viewer **nv = realloc(l->v, sizeof(*nv) * (size_t)cap);

		if (!nv)
			return -1;
		l->v = nv;
		l->cap = cap;
	}
	v->idx = l->n;
	l->v[l->n++] = v;
	return 0;
}

static void vlist_remove(struct vlist *l, struct viewer *v)
{
	int i = v->idx;

	l->n--;
	if (i != l->n) {
		l->v[i] = l->v[l->n];
		l->v[i]->idx = i;
	}
	v->idx = -1;
}

static struct vlist *list_of(struct shard *sh, struct viewer *v)
{
	switch (v->state) {
	case V_READY:
		return &sh->ready;
	case V_BEHIND:
		return &sh->behind;
	case V_WAIT:
		return &sh->wait;
	default:
		return NULL;
	}
}

static int ensure_scratch(struct shard *sh, int n)
{
	int cap;

	if (n <= sh->scratch_cap)
		return 0;
	cap = sh->scratch_cap ? sh->scratch_cap : 64;
	while (cap < n)
		cap *= 2;
	free(sh->fds);
	free(sh->rets);
	free(sh->errs);
	sh->fds = malloc(sizeof(*sh->fds) * (size_t)cap);
	sh->rets = malloc(sizeof(*sh->rets) * (size_t)cap);
	sh->errs = malloc(sizeof(*sh->errs) * (size_t)cap);
	if (!sh->fds || !sh->rets || !sh->errs) {
		logmsg("out of memory for %d viewers", n);
		abort();
	}
	sh->scratch_cap = cap;
	return 0;
}

static void set_epollout(struct shard *sh, struct viewer *v, bool on)
{
	struct epoll_event ev = { .events = EPOLLRDHUP | (on ? EPOLLOUT : 0), .data.ptr = v };

	if (epoll_ctl(sh->epfd, EPOLL_CTL_MOD, v->fd, &ev) < 0)
		logmsg("epoll_ctl(MOD viewer fd %d): %s", v->fd, strerror(errno));
}

static void move_to(struct shard *sh, struct viewer *v, enum viewer_state st)
{
	bool was_behind = v->state == V_BEHIND;
	struct vlist *from = list_of(sh, v);

	if (from)
		vlist_remove(from, v);
	v->state = st;
	vlist_push(list_of(sh, v), v);
	if (st == V_BEHIND && !was_behind) {
		set_epollout(sh, v, true);
		atomic_fetch_add_explicit(&sh->n_behind, 1, memory_order_relaxed);
	} else if (st != V_BEHIND && was_behind) {
		set_epollout(sh, v, false);
		atomic_fetch_sub_explicit(&sh->n_behind, 1, memory_order_relaxed);
	}
}

static void viewer_close(struct shard *sh, struct viewer *v, enum close_why why, int err)
{
	struct vlist *from = list_of(sh, v);
	char junk[4096];

	if (v->state == V_CLOSED)
		return;
	if (v->state == V_BEHIND)
		atomic_fetch_sub_explicit(&sh->n_behind, 1, memory_order_relaxed);
	if (from)
		vlist_remove(from, v);
	v->state = V_CLOSED;
	switch (why) {
	case WHY_DROP: {
		/* Abortive close: free the kernel's queued data at once. */
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(v->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		atomic_fetch_add_explicit(&sh->drops, 1, memory_order_relaxed);
		vlogmsg("viewer fd %d dropped: backlog over %zu bytes", v->fd,
			sh->opt->max_backlog);
		break;
	}
	case WHY_FINISH:
		/* End of stream: FIN after the queued data.  Swallow anything the
		 * client sent so that close() does not turn into a reset. */
		while (recv(v->fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
			;
		shutdown(v->fd, SHUT_WR);
		atomic_fetch_add_explicit(&sh->finished, 1, memory_order_relaxed);
		break;
	case WHY_LEFT:
		atomic_fetch_add_explicit(&sh->left, 1, memory_order_relaxed);
		vlogmsg("viewer fd %d left (%s)", v->fd, err ? strerror(err) : "hangup");
		break;
	}
	close(v->fd);
	v->fd = -1;
	atomic_fetch_sub_explicit(&sh->n_viewers, 1, memory_order_relaxed);
	v->next_dead = sh->dead;
	sh->dead = v;
}

void shard_reap(struct shard *sh)
{
	while (sh->dead) {
		struct viewer *v = sh->dead;

		sh->dead = v->next_dead;
		free(v);
	}
}

static void update_low(struct shard *sh)
{
	uint64_t low = sh->head;
	int i;

	for (i = 0; i < sh->behind.n; i++)
		if (sh->behind.v[i]->pos < low)
			low = sh->behind.v[i]->pos;
	atomic_store_explicit(&sh->low, low, memory_order_release);
}

static inline bool err_is_again(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ENOBUFS;
}

void shard_add_viewer(struct shard *sh, int fd)
{
	struct viewer *v = calloc(1, sizeof(*v));
	struct epoll_event ev;

	if (!v) {
		close(fd);
		return;
	}
	v->tag.kind = TAG_VIEWER;
	v->fd = fd;
	v->pos = sh->head;
	v->limit = UINT64_MAX;
	v->state = sh->opt->ts_align ? V_WAIT : V_READY;
	/* EPOLLERR and EPOLLHUP are always reported; EPOLLRDHUP: the viewer's
	 * EOF (a viewer sends nothing after its request) is it gone */
	ev.events = EPOLLRDHUP;
	ev.data.ptr = v;
	if (epoll_ctl(sh->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		logmsg("epoll_ctl(ADD viewer): %s", strerror(errno));
		close(fd);
		free(v);
		return;
	}
	if (vlist_push(list_of(sh, v), v) < 0) {
		close(fd);
		free(v);
		return;
	}
	atomic_fetch_add_explicit(&sh->n_viewers, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh->joined, 1, memory_order_relaxed);
	vlogmsg("viewer fd %d joined shard %d at offset %llu", fd, sh->id,
		(unsigned long long)sh->head);
}

/*
 * One writevv() of ring[from, to) to every viewer of list l (all of them at
 * offset 'from'); then sort them by outcome.
 */
static void fan_out(struct shard *sh, struct vlist *l, uint64_t from, uint64_t to)
{
	struct iovec iov[2];
	int iovcnt = ring_iov(sh->ring, from, to, iov);
	size_t len = (size_t)(to - from);
	uint64_t out = 0;
	int n = l->n, i;

	if (n == 0 || len == 0)
		return;
	ensure_scratch(sh, n);
	for (i = 0; i < n; i++)
		sh->fds[i] = l->v[i]->fd;
	if (writevv(sh->fds, n, iov, iovcnt, sh->rets, sh->errs) < 0) {
		/* Only bad arguments get here; the vector is ours, so it's a bug. */
		logmsg("writevv: %s", strerror(errno));
		abort();
	}
	atomic_fetch_add_explicit(&sh->calls, 1, memory_order_relaxed);
	/* Backwards: a removal at i only moves an already-handled viewer. */
	for (i = n - 1; i >= 0; i--) {
		struct viewer *v = l->v[i];
		int e = sh->errs[i];

		if (e == 0) {
			out += sh->rets[i];
			v->pos = from + sh->rets[i];
			if (v->pos == to) {
				if (v->state != V_READY)
					move_to(sh, v, V_READY);
			} else {
				move_to(sh, v, V_BEHIND);
			}
		} else if (err_is_again(e)) {
			v->pos = from;
			move_to(sh, v, V_BEHIND);
		} else {
			viewer_close(sh, v, WHY_LEFT, e);
		}
	}
	atomic_fetch_add_explicit(&sh->bytes_out, out, memory_order_relaxed);
}

void shard_data(struct shard *sh, uint64_t h1)
{
	uint64_t h0 = sh->head, t0 = 0, p;
	size_t maxb = sh->opt->max_backlog;
	int i;

	if (h1 <= h0)
		return;
	if (!sh->threaded)
		t0 = thread_cpu_ns();
	sh->head = h1;

	/* 1. Viewers whose backlog would exceed the bound are dropped. */
	for (i = sh->behind.n - 1; i >= 0; i--) {
		struct viewer *v = sh->behind.v[i];

		if (h1 - v->pos > maxb)
			viewer_close(sh, v, WHY_DROP, 0);
	}

	/* 2. The chunk to every ready viewer in one call. */
	fan_out(sh, &sh->ready, h0, h1);

	/* 3. --ts-align joiners start at the first packet boundary in it. */
	if (sh->wait.n) {
		for (p = (h0 + TS_PACKET - 1) / TS_PACKET * TS_PACKET; p < h1; p += TS_PACKET)
			if (ring_byte(sh->ring, p) == TS_SYNC)
				break;
		if (p < h1) {
			for (i = 0; i < sh->wait.n; i++)
				sh->wait.v[i]->pos = p;
			fan_out(sh, &sh->wait, p, h1);
		}
	}
	update_low(sh);
	if (!sh->threaded)
		atomic_fetch_add_explicit(&sh->cpu_ns, thread_cpu_ns() - t0, memory_order_relaxed);
}

void shard_eof(struct shard *sh, uint64_t end)
{
	int i;

	shard_data(sh, end);
	while (sh->ready.n)
		viewer_close(sh, sh->ready.v[sh->ready.n - 1], WHY_FINISH, 0);
	while (sh->wait.n)
		viewer_close(sh, sh->wait.v[sh->wait.n - 1], WHY_FINISH, 0);
	for (i = sh->behind.n - 1; i >= 0; i--)
		sh->behind.v[i]->limit = end;
	vlogmsg("shard %d: end of stream at %llu, %d viewers still draining", sh->id,
		(unsigned long long)end, sh->behind.n);
}

static void catch_up(struct shard *sh, struct viewer *v)
{
	uint64_t end = sh->head < v->limit ? sh->head : v->limit;
	struct iovec iov[2];
	size_t ret;
	int err, iovcnt;

	if (v->pos < end) {
		iovcnt = ring_iov(sh->ring, v->pos, end, iov);
		if (writevv(&v->fd, 1, iov, iovcnt, &ret, &err) < 0) {
			logmsg("writevv: %s", strerror(errno));
			abort();
		}
		atomic_fetch_add_explicit(&sh->calls, 1, memory_order_relaxed);
		if (err == 0) {
			v->pos += ret;
			atomic_fetch_add_explicit(&sh->bytes_out, ret, memory_order_relaxed);
		} else if (!err_is_again(err)) {
			viewer_close(sh, v, WHY_LEFT, err);
			return;
		}
	}
	if (v->pos == end) {
		if (v->limit != UINT64_MAX)
			viewer_close(sh, v, WHY_FINISH, 0);
		else
			move_to(sh, v, V_READY);
	}
}

void shard_viewer_event(struct shard *sh, struct viewer *v, uint32_t events)
{
	uint64_t t0 = 0;

	if (v->state == V_CLOSED)
		return;
	if (!sh->threaded)
		t0 = thread_cpu_ns();
	if (v->state == V_BEHIND && (events & EPOLLOUT))
		catch_up(sh, v);
	if (v->state != V_CLOSED && (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))) {
		int err = 0;
		socklen_t sl = sizeof(err);

		getsockopt(v->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
		viewer_close(sh, v, WHY_LEFT, err);
	}
	if (!sh->threaded)
		atomic_fetch_add_explicit(&sh->cpu_ns, thread_cpu_ns() - t0, memory_order_relaxed);
}

void shard_close_all(struct shard *sh)
{
	while (sh->ready.n)
		viewer_close(sh, sh->ready.v[sh->ready.n - 1], WHY_FINISH, 0);
	while (sh->wait.n)
		viewer_close(sh, sh->wait.v[sh->wait.n - 1], WHY_FINISH, 0);
	while (sh->behind.n)
		viewer_close(sh, sh->behind.v[sh->behind.n - 1], WHY_FINISH, 0);
	shard_reap(sh);
}

int shard_init(struct shard *sh, int id, int epfd, bool threaded,
	       const struct options *opt, const struct ring *ring, uint64_t head)
{
	memset(sh, 0, sizeof(*sh));
	sh->evtag.kind = TAG_SHARDEV;
	sh->id = id;
	sh->threaded = threaded;
	sh->opt = opt;
	sh->ring = ring;
	sh->head = head;
	sh->evfd = -1;
	atomic_store(&sh->low, head);
	if (!threaded) {
		sh->epfd = epfd;
		return 0;
	}
	sh->epfd = epoll_create1(EPOLL_CLOEXEC);
	sh->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sh->epfd < 0 || sh->evfd < 0)
		return -1;
	pthread_mutex_init(&sh->qlock, NULL);
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &sh->evtag };

		if (epoll_ctl(sh->epfd, EPOLL_CTL_ADD, sh->evfd, &ev) < 0)
			return -1;
	}
	return 0;
}

void shard_destroy(struct shard *sh)
{
	shard_close_all(sh);
	free(sh->ready.v);
	free(sh->behind.v);
	free(sh->wait.v);
	free(sh->fds);
	free(sh->rets);
	free(sh->errs);
	if (sh->threaded) {
		close(sh->epfd);
		close(sh->evfd);
		pthread_mutex_destroy(&sh->qlock);
		free(sh->q);
	}
}

/* ---- threaded mode ---------------------------------------------------- */

void shard_post(struct shard *sh, enum qkind kind, uint64_t val)
{
	uint64_t one = 1;
	bool wake;

	pthread_mutex_lock(&sh->qlock);
	if (kind == Q_DATA && sh->qn && sh->q[sh->qn - 1].kind == Q_DATA) {
		sh->q[sh->qn - 1].val = val; /* coalesce */
	} else {
		if (sh->qn == sh->qcap) {
			size_t cap = sh->qcap ? sh->qcap * 2 : 64;
			struct qitem *nq = realloc(sh->q, sizeof(*nq) * cap);

			if (!nq) {
				logmsg("out of memory");
				abort();
			}
			sh->q = nq;
			sh->qcap = cap;
		}
		sh->q[sh->qn].kind = kind;
		sh->q[sh->qn].val = val;
		sh->qn++;
	}
	wake = true;
	pthread_mutex_unlock(&sh->qlock);
	if (wake && write(sh->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		logmsg("eventfd write: %s", strerror(errno));
}

static void *shard_main(void *arg)
{
	struct shard *sh = arg;
	struct epoll_event evs[256];
	struct qitem *items = NULL;
	size_t nitems = 0, cap = 0, k;
	bool stop = false;
	int n, i;

	while (!stop) {
		uint64_t t0;

		n = epoll_wait(sh->epfd, evs, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			logmsg("shard %d: epoll_wait: %s", sh->id, strerror(errno));
			break;
		}
		t0 = thread_cpu_ns();
		for (i = 0; i < n; i++) {
			struct tag *t = evs[i].data.ptr;

			if (t->kind == TAG_SHARDEV) {
				uint64_t cnt;
				struct qitem *tmp;

				if (read(sh->evfd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
					logmsg("eventfd read: %s", strerror(errno));
				pthread_mutex_lock(&sh->qlock);
				tmp = sh->q;
				sh->q = items;
				items = tmp;
				nitems = sh->qn;
				k = sh->qcap;
				sh->qcap = cap;
				cap = k;
				sh->qn = 0;
				pthread_mutex_unlock(&sh->qlock);
				for (k = 0; k < nitems; k++) {
					switch (items[k].kind) {
					case Q_VIEWER:
						shard_add_viewer(sh, (int)items[k].val);
						break;
					case Q_DATA:
						shard_data(sh, items[k].val);
						break;
					case Q_EOF:
						shard_eof(sh, items[k].val);
						break;
					case Q_STOP:
						stop = true;
						break;
					}
				}
			} else {
				shard_viewer_event(sh, (struct viewer *)t, evs[i].events);
			}
		}
		shard_reap(sh);
		update_low(sh);
		atomic_fetch_add_explicit(&sh->cpu_ns, thread_cpu_ns() - t0, memory_order_relaxed);
	}
	free(items);
	shard_close_all(sh);
	return NULL;
}

int shard_start(struct shard *sh)
{
	int err = pthread_create(&sh->thread, NULL, shard_main, sh);

	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

void shard_join(struct shard *sh)
{
	shard_post(sh, Q_STOP, 0);
	pthread_join(sh->thread, NULL);
}
