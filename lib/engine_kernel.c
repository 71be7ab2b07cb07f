/* SPDX-License-Identifier: MIT */
/*
 * The kernel engine: one frame per target and round, sent with sendmmsg on
 * the calling thread's control socket, redirected by writevv.bpf.c.
 *
 * How a call runs:
 *  - targets the BPF path cannot serve (files, pipes, UNIX/UDP sockets,
 *    unconnected or kTLS TCP, bad fds) are written with writev semantics
 *    after the BPF targets;
 *  - BPF targets are cut into segments in which no socket appears twice,
 *    so that a target that needs finishing in user space can be finished at
 *    once without reordering bytes on a socket;
 *  - the payload is cut into frames that always reach the verdict program
 *    as one sk_msg (WVV_FRAME_BYTES_MAX), so a failed redirect never leaves
 *    apply-bytes or redirect state behind on the control socket, and each
 *    redirect ends at the end of its message, so no target is left corked
 *    (tcp_bpf_push only sets MSG_MORE when a redirect ends mid-element);
 *  - round r sends frame r of every live target of the segment;
 *  - frames go with MSG_DONTWAIT, so a full target never holds up the
 *    frames of the others in the kernel; a target the kernel could not
 *    fully take is finished at once with one writev-equivalent call, which
 *    blocks or not as the target's own O_NONBLOCK says, exactly as writev
 *    would (so a full *blocking* target delays the rest of the call, as it
 *    would in the writev loop);
 *  - the status ring tells which frames were redirected; sendmmsg's
 *    per-message length tells how many payload bytes each target took.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "call.h"
#include "internal.h"
#include "pins.h"
#include "registry.h"
#include "thread_state.h"

#define HDR_LEN ((size_t)sizeof(struct wvv_frame_hdr))
#define FRAME_PAYLOAD_MAX ((size_t)WVV_FRAME_BYTES_MAX - HDR_LEN)
/* sendmsg takes at most UIO_MAXIOV (1024) iovecs, one is the header. */
#define FRAME_IOV_MAX 1023
#define CTL_SNDBUF (8 << 20)
#define SCRATCH_KEEP (1u << 20)
/* Larger payloads are written by the writev loop: the frame plan is made
 * up front (40 bytes per 64 KiB frame), and an iov_len of a terabyte over
 * an unmapped page (EFAULT for writev) must not cost gigabytes of plan.
 * Past this size one system call per target is nothing next to the copy. */
#define KERNEL_TOTAL_MAX ((size_t)64 << 20)

/* ---- process-wide engine state ----------------------------------------- */


static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wvv_pins pins = { .ctl_fd = -1, .targets_fd = -1, .slot_state_fd = -1 };
static _Atomic int engine_status = 1; /* 1: never probed, 0: usable, <0: -errno */
static _Atomic uint32_t engine_gen;   /* bumped each time the threads must claim slots again */
static _Atomic long long reprobe_at;  /* when a failed engine is probed again (probe.c) */
static char engine_why[512] = "not probed yet";

/*
 * Open the pins. A reload (other maps) makes a new generation: every
 * thread claims its slot again. So do the same pins where 'same_reclaims'
 * (the first probe, or the engine found again after it failed).
 */
static int probe_locked(bool same_reclaims)
{
	struct wvv_pins p;
	int err;

	err = wvv_pins_open(&p, engine_why, sizeof(engine_why));
	if (!err) {
		if (pins.ctl_fd >= 0 && wvv_pins_same(&pins, &p)) {
			/* Not reloaded (a lost control socket, a detached
			 * program, rewritten slot state): keep what we have. */
			wvv_pins_close(&p);
		} else {
			/* Reloaded. The old descriptors stay open: another
			 * thread may be using them right now, and closing would
			 * let the numbers be reused. One set per reload. */
			pins = p;
			same_reclaims = true;
		}
		if (same_reclaims)
			atomic_fetch_add(&engine_gen, 1);
	}
	wvv_retry_later(&reprobe_at);
	atomic_store(&engine_status, err);
	return err;
}

int wvv_kernel_available(void)
{
	int st = atomic_load_explicit(&engine_status, memory_order_acquire);

	if (st == 0)
		return 0;
	if (st < 0 && !wvv_retry_due(&reprobe_at))
		return st;
	pthread_mutex_lock(&engine_lock);
	st = atomic_load(&engine_status);
	if (st != 0)
		st = probe_locked(true);
	pthread_mutex_unlock(&engine_lock);
	return st;
}

const char *wvv_kernel_reason(void)
{
	return engine_why;
}



/* ---- per-thread control socket ------------------------------------------ */

struct record_buf {
	struct wvv_record *v;
	size_t n, cap;
	uint64_t ring_bytes; /* ring space the consumed records took */
};

struct wvv_thread {
	uint32_t gen;
	int ctl, peer;
	uint32_t slot;
	struct ring_buffer *rb;
	int ring_fd;
	/* The ring's consumer and producer positions (read-only view):
	 * whether anyone else consumed or produced records on our ring. */
	const _Atomic unsigned long *ring_pos;
	size_t ring_pos_len;
	uint64_t call_id;
	struct record_buf recs;
	/* scratch reused across calls */
	void *scratch;
	size_t scratch_len;
	_Atomic long long retry_at; /* setup failed (e.g. no free slot): wait (probe.c) */
	bool setup_failed;
};

static void thread_release(struct wvv_thread *t)
{
	if (t->rb)
		ring_buffer__free(t->rb);
	t->rb = NULL;
	if (t->ring_pos)
		munmap((void *)t->ring_pos, t->ring_pos_len);
	t->ring_pos = NULL;
	if (t->ring_fd >= 0)
		close(t->ring_fd);
	/* Closing the control socket removes it from wvv_ctl: the slot is free. */
	if (t->ctl >= 0)
		close(t->ctl);
	if (t->peer >= 0)
		close(t->peer);
	t->ring_fd = t->ctl = t->peer = -1;
	t->gen = 0;
}

/*
 * The pins vanished or stopped answering this thread's control socket:
 * unloaded, reloaded, or only this socket's own state (a payload the
 * kernel could not read leaves a frame half taken on it). Reloaded: new
 * maps and a new generation, every thread claims its slot again. Gone:
 * calls use user space until a later probe finds the pins. The same pins:
 * this thread alone claims its slot again, at its next call.
 */
static void engine_lost(struct wvv_thread *t)
{
	pthread_mutex_lock(&engine_lock);
	if (atomic_load(&engine_status) == 0 && probe_locked(false) == 0)
		thread_release(t);
	pthread_mutex_unlock(&engine_lock);
}

static int thread_init(void *state)
{
	struct wvv_thread *t = state;

	t->ctl = t->peer = t->ring_fd = -1;
	return 0;
}

/* At thread exit, and in a fork()ed child (closing the child's references
 * to the parent's control socket and ring only; the parent keeps its slot). */
static void thread_fini(void *state)
{
	struct wvv_thread *t = state;

	thread_release(t);
	free(t->recs.v);
	free(t->scratch);
}

static struct wvv_tls thread_tls = WVV_TLS_INIT(struct wvv_thread, thread_init, thread_fini);

/*
 * fork(): the child's threads remake their state (thread_state.c); the
 * lock is held across the fork so that the child's copy is consistent, and
 * a new generation makes the child check its targets' registrations again.
 */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&engine_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&engine_lock);
}

static void atfork_child(void)
{
	atomic_fetch_add(&engine_gen, 1);
	pthread_mutex_unlock(&engine_lock);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void register_atfork(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct record_buf *rb = ctx;

	if (size < sizeof(struct wvv_record))
		return 0;
	if (rb->n == rb->cap) {
		size_t cap = rb->cap ? rb->cap * 2 : 1024;
		void *v = realloc(rb->v, cap * sizeof(*rb->v));

		if (!v)
			return -ENOMEM;
		rb->v = v;
		rb->cap = cap;
	}
	memcpy(&rb->v[rb->n++], data, sizeof(struct wvv_record));
	return 0;
}

/* A record's share of the ring: its 8-byte header, its size rounded to 8. */
static uint64_t ring_space(size_t size)
{
	return 8 + ((size + 7) & ~(size_t)7);
}

static int on_record_counted(void *ctx, void *data, size_t size)
{
	struct record_buf *rb = ctx;

	rb->ring_bytes += ring_space(size);
	return on_record(ctx, data, size);
}

/* The producer position of this thread's ring: only our own frames move it. */
static unsigned long ring_produced(const struct wvv_thread *t)
{
	size_t page = t->ring_pos_len / 2;

	return atomic_load_explicit(&t->ring_pos[page / sizeof(unsigned long)],
				    memory_order_acquire);
}

/* A loopback TCP connection: ctl (goes into wvv_ctl) and its peer. */
static int control_pair(int *ctl, int *peer, uint16_t *lport, uint16_t *rport)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int lfd, c = -1, p = -1, one = 1, sz = CTL_SNDBUF, err;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lfd < 0)
		return -errno;
	/* A backlog with room for intruders, so they never hold up our connect. */
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 64) ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen))
		goto fail;
	/* Non-blocking connect: if others filled the listener's backlog
	 * first, our connect completes once they are accepted and closed. */
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c < 0 || (connect(c, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS))
		goto fail;
	*rport = ntohs(a.sin_port);
	alen = sizeof(a);
	if (getsockname(c, (struct sockaddr *)&a, &alen))
		goto fail;
	*lport = ntohs(a.sin_port);
	/* Any local process may connect to the listener first: accept only
	 * our own connect (its address is c's local address). */
	p = wvv_accept_peer(lfd, &a);
	if (p < 0) {
		errno = -p;
		p = -1;
		goto fail;
	}
	{
		struct pollfd pc = { .fd = c, .events = POLLOUT };
		socklen_t elen = sizeof(err);

		err = 0;
		if (poll(&pc, 1, 1000) != 1 || getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &elen) ||
		    err) {
			errno = err ? err : ETIMEDOUT;
			goto fail;
		}
		/* Blocking again, as before (its sends say MSG_DONTWAIT). */
		if (fcntl(c, F_SETFL, fcntl(c, F_GETFL) & ~O_NONBLOCK))
			goto fail;
	}
	setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(p, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(lfd);
	*ctl = c;
	*peer = p;
	return 0;
fail:
	err = -errno;
	if (c >= 0)
		close(c);
	if (p >= 0)
		close(p);
	close(lfd);
	return err;
}

/* Claim a free slot for this thread and open its ring. */
static int thread_setup(struct wvv_thread *t)
{
	struct wvv_slot_state st;
	uint16_t lport = 0, rport = 0;
	uint64_t v;
	uint32_t s, start, n;
	int err;

	err = control_pair(&t->ctl, &t->peer, &lport, &rport);
	if (err)
		return err;
	n = pins.cfg.slots;
	start = (uint32_t)syscall(SYS_gettid) % (n ? n : 1);
	v = (uint64_t)t->ctl;
	err = -EBUSY;
	for (s = 0; s < n; s++) {
		uint32_t slot = (start + s) % n;

		if (bpf_map_update_elem(pins.ctl_fd, &slot, &v, BPF_NOEXIST) == 0) {
			t->slot = slot;
			err = 0;
			break;
		}
		if (errno != EEXIST) {
			err = -errno;
			break;
		}
	}
	if (err)
		goto fail;
	memset(&st, 0, sizeof(st));
	st.local_port = lport;
	st.remote_port = rport;
	if (bpf_map_update_elem(pins.slot_state_fd, &t->slot, &st, BPF_ANY)) {
		err = -errno;
		goto fail;
	}
	t->ring_fd = wvv_pin_open_ring(t->slot);
	if (t->ring_fd < 0) {
		err = t->ring_fd;
		goto fail;
	}
	t->rb = ring_buffer__new(t->ring_fd, on_record_counted, &t->recs, NULL);
	if (!t->rb) {
		err = -errno ? -errno : -ENOMEM;
		goto fail;
	}
	t->ring_pos_len = 2 * (size_t)sysconf(_SC_PAGESIZE);
	t->ring_pos = mmap(NULL, t->ring_pos_len, PROT_READ, MAP_SHARED, t->ring_fd, 0);
	if (t->ring_pos == MAP_FAILED) {
		t->ring_pos = NULL;
		err = -errno;
		goto fail;
	}
	/* Records a previous owner of the slot left behind are not ours. */
	ring_buffer__consume(t->rb);
	t->recs.n = 0;
	t->gen = atomic_load(&engine_gen);
	t->call_id = ((uint64_t)(uint32_t)syscall(SYS_gettid) << 32) ^ ((uint64_t)t->slot << 20);
	return 0;
fail:
	thread_release(t);
	return err;
}

static struct wvv_thread *thread_get(int *err)
{
	struct wvv_thread *t;

	pthread_once(&atfork_once, register_atfork);
	t = wvv_tls_get(&thread_tls, err);
	if (!t)
		return NULL;
	if (t->ctl >= 0 && t->gen == atomic_load(&engine_gen))
		return t;
	if (t->setup_failed && !wvv_retry_due(&t->retry_at)) {
		*err = -EBUSY; /* all slots were taken a moment ago */
		return NULL;
	}
	thread_release(t);
	pthread_mutex_lock(&engine_lock);
	*err = atomic_load(&engine_status) == 0 ? thread_setup(t) : -ENOENT;
	pthread_mutex_unlock(&engine_lock);
	t->setup_failed = *err != 0;
	if (*err)
		wvv_retry_later(&t->retry_at);
	return *err ? NULL : t;
}

int wvv_kernel_thread_usable(void)
{
	struct wvv_thread *t;
	int err;

	t = wvv_tls_get(&thread_tls, &err);
	/* A thread that found every slot taken uses the loop for a while. */
	return !(t && t->ctl < 0 && t->setup_failed && !wvv_retry_due(&t->retry_at));
}

/* Discard whatever refused frames left at the control peer. */
static void drain_peer(struct wvv_thread *t)
{
	char sink[4096];

	while (recv(t->peer, sink, sizeof(sink), MSG_DONTWAIT | MSG_TRUNC) > 0)
		;
}

/* ---- one call ------------------------------------------------------------ */

/* Open-addressing set of cookies, to cut segments without repeats. */
struct cookie_set {
	uint64_t *v;
	size_t mask;
};

static int cookie_set_init(struct cookie_set *s, size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n)
		cap <<= 1;
	s->v = calloc(cap, sizeof(*s->v));
	s->mask = cap - 1;
	return s->v ? 0 : -ENOMEM;
}

/* Insert; returns 1 if it was already there. Cookies are never 0. */
static int cookie_set_add(struct cookie_set *s, uint64_t c)
{
	size_t h = (size_t)(c * 0x9e3779b97f4a7c15ull) & s->mask;

	while (s->v[h]) {
		if (s->v[h] == c)
			return 1;
		h = (h + 1) & s->mask;
	}
	s->v[h] = c;
	return 0;
}

static void cookie_set_clear(struct cookie_set *s)
{
	memset(s->v, 0, (s->mask + 1) * sizeof(*s->v));
}

struct frame {
	size_t off, len;
	int iov_first, iov_cnt; /* into the call's slice pool */
};

struct target {
	int index;      /* into fds[] */
	uint64_t cookie;
	size_t done;    /* payload bytes delivered so far */
	int finished;   /* result stored */
	int deferred;   /* written in user space at the end of its segment */
};

struct call_state {
	struct wvv_call *c;
	struct wvv_thread *t;
	struct frame *frames;
	int nframes;
	struct iovec *slices;
	struct target *tg;
	int ntg;
	/* batch buffers */
	struct mmsghdr *msgs;
	struct wvv_frame_hdr *hdrs;
	struct iovec *iovs;
	int *msg_target;
	uint32_t batch;
	int call_started;
	int revalidated; /* the segment's cached cookies were re-checked */
	struct cookie_set *set;
	int refused;    /* some payload went to the control peer */
	int unknown;    /* targets whose stream state became unknown */
	int engine_gone;
};

static void finish(struct call_state *cs, struct target *g)
{
	if (g->finished)
		return;
	wvv_finish_target(cs->c, g->index, g->done);
	g->finished = 1;
}

static size_t frame_iov_max(const struct call_state *cs)
{
	int r, m = 0;

	for (r = 0; r < cs->nframes; r++)
		if (cs->frames[r].iov_cnt > m)
			m = cs->frames[r].iov_cnt;
	return (size_t)m + 1;
}

/* Cut [0, total) into frames; returns 0 or -ENOMEM. */
static int plan_frames(struct call_state *cs)
{
	const struct wvv_call *c = cs->c;
	size_t off = 0, covered;
	int cap = (int)(c->total / FRAME_PAYLOAD_MAX) + 2, pool_cap, used = 0;

	pool_cap = c->iovcnt + cap;
	cs->frames = calloc((size_t)cap, sizeof(*cs->frames));
	cs->slices = calloc((size_t)pool_cap, sizeof(*cs->slices));
	if (!cs->frames || !cs->slices)
		return -ENOMEM;
	cs->nframes = 0;
	while (off < c->total) {
		struct frame *f;
		int max = pool_cap - used, n;

		if (cs->nframes == cap) {
			void *p = realloc(cs->frames, (size_t)cap * 2 * sizeof(*cs->frames));

			if (!p)
				return -ENOMEM;
			cs->frames = p;
			cap *= 2;
		}
		if (max > FRAME_IOV_MAX)
			max = FRAME_IOV_MAX;
		if (max <= 0) {
			void *p = realloc(cs->slices, (size_t)pool_cap * 2 * sizeof(*cs->slices));

			if (!p)
				return -ENOMEM;
			cs->slices = p;
			pool_cap *= 2;
			continue;
		}
		n = wvv_iov_slice(c->iov, c->iovcnt, off, FRAME_PAYLOAD_MAX, cs->slices + used,
				  max, &covered);
		f = &cs->frames[cs->nframes++];
		f->off = off;
		f->len = covered;
		f->iov_first = used;
		f->iov_cnt = n;
		used += n;
		off += covered;
	}
	return 0;
}

static void fill_msg(struct call_state *cs, int k, struct target *g, const struct frame *f,
		     size_t iov_stride)
{
	struct wvv_frame_hdr *h = &cs->hdrs[k];
	struct iovec *v = &cs->iovs[(size_t)k * iov_stride];

	h->magic = WVV_FRAME_MAGIC;
	h->slot = cs->t->slot;
	h->call_id = cs->t->call_id;
	h->cookie = g->cookie;
	h->fd = (uint32_t)cs->c->fds[g->index];
	h->index = (uint32_t)g->index;
	h->len = (uint32_t)f->len;
	h->batch = cs->batch;
	h->flags = cs->call_started ? 0 : WVV_F_CALL_START;
	h->reserved = 0;
	cs->call_started = 1;
	v[0].iov_base = h;
	v[0].iov_len = HDR_LEN;
	memcpy(&v[1], cs->slices + f->iov_first, (size_t)f->iov_cnt * sizeof(*v));
	memset(&cs->msgs[k], 0, sizeof(cs->msgs[k]));
	cs->msgs[k].msg_hdr.msg_iov = v;
	cs->msgs[k].msg_hdr.msg_iovlen = (size_t)f->iov_cnt + 1;
}

/*
 * A frame of target g was refused by the program (or got no record).
 * Finish g in user space, after any earlier target of this segment that
 * turns out to be the same socket (possible when g's cached cookie was
 * stale), so that each socket still sees the targets' bytes in index order.
 */
static void resolve_refused(struct call_state *cs, struct target *seg, int nseg,
			    struct target *g, uint32_t verdict)
{
	uint64_t cookie;
	int i;

	if (verdict == WVV_V_STALE_FD || verdict == 0) {
		wvv_registry_forget(cs->c->fds[g->index]);
		if (wvv_registry_get(cs->c->fds[g->index], pins.targets_fd, cs->t->gen, &cookie) ==
		    WVV_TK_BPF) {
			for (i = 0; i < nseg && &seg[i] != g; i++)
				if (!seg[i].finished && seg[i].cookie == cookie)
					finish(cs, &seg[i]);
		}
	}
	finish(cs, g);
}

/*
 * Target g's frame was taken by the control socket but its status record
 * was read by someone else: whether the payload reached the target is
 * unknown. Report the bytes known delivered with EIO (see writevv(3)) and
 * send nothing more to that socket in this call, at any index.
 */
static void fail_unknown(struct call_state *cs, struct target *g)
{
	uint64_t cookie = g->cookie;
	int i;

	for (i = 0; i < cs->ntg; i++) {
		struct target *x = &cs->tg[i];

		if (x->finished || x->cookie != cookie)
			continue;
		cs->c->returns[x->index] = x->done;
		cs->c->errors[x->index] = EIO;
		x->finished = 1;
	}
	cs->unknown++;
}

/*
 * A stale cached cookie was found at seg[x]: fd numbers were reused since
 * they were registered. Re-check the rest of the segment now (one getsockopt
 * each) rather than discover them one refused batch at a time. A target
 * that now turns out to share its socket with an earlier one of the segment
 * is deferred to the segment's end, which keeps each socket's bytes in
 * index order.
 */
static void revalidate(struct call_state *cs, struct target *seg, int nseg, int x)
{
	int y;

	if (cs->revalidated)
		return;
	cs->revalidated = 1;
	for (y = x + 1; y < nseg; y++) {
		struct target *g = &seg[y];
		int fd = cs->c->fds[g->index];
		uint64_t now = 0;
		socklen_t len = sizeof(now);

		if (g->finished)
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &now, &len) == 0 && now == g->cookie)
			continue;
		wvv_registry_forget(fd);
		if (wvv_registry_get(fd, pins.targets_fd, cs->t->gen, &g->cookie) != WVV_TK_BPF)
			g->deferred = 1;
	}
	cookie_set_clear(cs->set);
	for (y = 0; y < nseg; y++)
		if (!seg[y].deferred && cookie_set_add(cs->set, seg[y].cookie))
			seg[y].deferred = 1;
	cookie_set_clear(cs->set);
}

/* Wait until the control socket can take more (after draining the peer). */
static int wait_ctl(struct call_state *cs)
{
	struct pollfd p = { .fd = cs->t->ctl, .events = POLLOUT };

	drain_peer(cs->t);
	return poll(&p, 1, 1000) < 0 ? -errno : 0;
}

/* Replace a control socket whose sk_msg state went bad (SK_DROP sticks). */
static int recycle_ctl(struct call_state *cs)
{
	thread_release(cs->t);
	pthread_mutex_lock(&engine_lock);
	int err = thread_setup(cs->t);
	pthread_mutex_unlock(&engine_lock);
	return err;
}

/*
 * Send frame r to every live target of seg[0..nseg) in index order, batch
 * by batch, and account what each target took.
 */
static int run_round(struct call_state *cs, struct target *seg, int nseg, int r)
{
	const struct frame *f = &cs->frames[r];
	size_t stride = frame_iov_max(cs);
	int q = 0, eacces_retry = 0, stalls = 0;

	while (q < nseg) {
		int k = 0, n, j, i, sent, tampered, resend;
		unsigned long produced;
		size_t ri = 0;

		for (i = q; i < nseg && k < WVV_BATCH_MAX; i++) {
			struct target *g = &seg[i];

			if (g->finished || g->deferred || g->done != f->off)
				continue;
			cs->msg_target[k] = i;
			fill_msg(cs, k, g, f, stride);
			k++;
		}
		if (k == 0)
			break;
		produced = ring_produced(cs->t);
		sent = sendmmsg(cs->t->ctl, cs->msgs, (unsigned int)k, MSG_DONTWAIT | MSG_NOSIGNAL);
		n = sent < 0 ? 0 : sent;
		if (n > 0)
			stalls = 0;
		cs->t->recs.n = 0;
		cs->t->recs.ring_bytes = 0;
		ring_buffer__consume(cs->t->rb);
		/* Only this thread's frames produce records on its ring, and it
		 * consumes them all: if the ring moved by anything but what we
		 * just read, someone else read (or wrote) our records, and a
		 * frame without its record may have been delivered or not. */
		tampered = ring_produced(cs->t) - produced != cs->t->recs.ring_bytes;
		cs->batch++;

		resend = -1;
		for (j = 0; j < n; j++) {
			struct target *g = &seg[cs->msg_target[j]];
			const struct wvv_record *rec = NULL;
			size_t took, x;

			/* Records come in frame order; skip anything not ours.
			 * A frame without a record leaves the later frames'
			 * records where they are. */
			for (x = ri; x < cs->t->recs.n; x++) {
				const struct wvv_record *y = &cs->t->recs.v[x];

				if (y->call_id == cs->t->call_id && y->batch == cs->batch - 1 &&
				    y->index == (uint32_t)g->index) {
					rec = y;
					ri = x + 1;
					break;
				}
			}
			if (!rec && tampered) {
				/* Never resend what may have been sent: the
				 * target's stream is in an unknown state. */
				fail_unknown(cs, g);
				continue;
			}
			if (!rec && cs->t->recs.n == 0) {
				/* No record for the whole batch: no frame of it
				 * was redirected (a redirect is always recorded
				 * first). Most likely no program on the control
				 * socket any more (unloaded): stop using the
				 * engine; engine_lost() probes again. */
				cs->refused = 1;
				cs->engine_gone = 1;
				return -ENODEV;
			}
			if (rec && rec->verdict == WVV_V_POISONED) {
				/* Refused only because an earlier frame of this
				 * batch was: nothing reached the target, send it
				 * again. */
				cs->refused = 1;
				if (resend < 0)
					resend = j;
				continue;
			}
			if (!rec || rec->verdict != WVV_V_REDIRECT) {
				/* Refused by the program, or passed to the control
				 * peer without it (after a pass to the peer that the
				 * control socket could not fully take, the kernel
				 * passes the next message without running the
				 * program). Later frames of the batch may still have
				 * been redirected: their records say so. */
				cs->refused = 1;
				resolve_refused(cs, seg, nseg, g, rec ? rec->verdict : 0);
				if (rec && rec->verdict == WVV_V_STALE_FD)
					revalidate(cs, seg, nseg, cs->msg_target[j]);
				continue;
			}
			took = cs->msgs[j].msg_len > HDR_LEN ? cs->msgs[j].msg_len - HDR_LEN : 0;
			g->done += took;
			if (took < f->len)
				finish(cs, g); /* full, closed or failing: writev semantics */
			else if (g->done == cs->c->total)
				finish(cs, g);
		}
		if (resend >= 0) {
			/* (targets between that were served now have moved past
			 * this frame, or are finished: the next batch skips them) */
			q = cs->msg_target[resend];
			continue;
		}
		if (n == k) {
			q = cs->msg_target[k - 1] + 1;
			continue;
		}
		/* Frame n was not taken at all. */
		q = cs->msg_target[n];
		if (n > 0)
			continue; /* sendmmsg hides the error: retry to see it */
		switch (errno) {
		case EAGAIN:
		case ENOBUFS:
		case ENOMEM:
			/* The control socket stays full for seconds: give the
			 * rest of the call to user space rather than spin. */
			if (++stalls > 5 || wait_ctl(cs))
				return -EIO;
			break;
		case EINTR:
			break;
		case EACCES:
			/* The redirect helper dropped the frame (target gone from
			 * the map): the drop verdict now sticks to the socket. */
			if (recycle_ctl(cs))
				return -EIO;
			cs->t->call_id++;
			wvv_registry_forget(cs->c->fds[seg[q].index]);
			if (eacces_retry++ || wvv_registry_get(cs->c->fds[seg[q].index],
							      pins.targets_fd, cs->t->gen,
							      &seg[q].cookie) != WVV_TK_BPF) {
				finish(cs, &seg[q]);
				q++;
			}
			break;
		default:
			/* e.g. EFAULT: let writev report it for this target. */
			finish(cs, &seg[q]);
			q++;
			break;
		}
	}
	return 0;
}

static int grow_batch_buffers(struct call_state *cs)
{
	size_t stride = frame_iov_max(cs), need;
	char *p;

	need = WVV_BATCH_MAX * (sizeof(struct mmsghdr) + sizeof(struct wvv_frame_hdr) + sizeof(int) +
				stride * sizeof(struct iovec));
	if (cs->t->scratch_len < need) {
		p = realloc(cs->t->scratch, need);
		if (!p)
			return -ENOMEM;
		cs->t->scratch = p;
		cs->t->scratch_len = need;
	}
	p = cs->t->scratch;
	cs->msgs = (struct mmsghdr *)p;
	p += WVV_BATCH_MAX * sizeof(struct mmsghdr);
	cs->iovs = (struct iovec *)p;
	p += WVV_BATCH_MAX * stride * sizeof(struct iovec);
	cs->hdrs = (struct wvv_frame_hdr *)p;
	p += WVV_BATCH_MAX * sizeof(struct wvv_frame_hdr);
	cs->msg_target = (int *)p;
	return 0;
}

/*
 * Does an iovec reach beyond user space (a kernel address, a length that
 * wraps)? writev refuses the whole call with EFAULT before writing a byte
 * (access_ok on every iovec); frames sent one by one would deliver those
 * before it. USER_END is where x86-64's user space ends with 4-level page
 * tables; an iovec above it on a larger address space only goes to writev,
 * which is always exact. (Where user space ends lower, e.g. arm64 with
 * 39-bit addresses, an iovec between that end and USER_END is not caught.)
 */
#define USER_END ((uintptr_t)1 << 47)
static bool beyond_user_space(const struct wvv_call *c)
{
	int i;

	for (i = 0; i < c->iovcnt; i++) {
		uintptr_t base = (uintptr_t)c->iov[i].iov_base;
		size_t len = c->iov[i].iov_len;

		if (len && (base >= USER_END || len > USER_END - base))
			return true;
	}
	return false;
}

int wvv_kernel_run(struct wvv_call *c)
{
	struct call_state cs;
	struct cookie_set set = { NULL, 0 };
	char *is_bpf = NULL;
	uint32_t gen;
	int err, i, start, r;

	if (c->total == 0)
		return -EINVAL; /* nothing to frame: writev's own answer is exact */
	if (c->total > KERNEL_TOTAL_MAX)
		return -E2BIG;
	if (beyond_user_space(c))
		return -EFAULT; /* writev refuses it whole, before writing anything */
	memset(&cs, 0, sizeof(cs));
	cs.c = c;
	cs.tg = calloc((size_t)c->fdcnt, sizeof(*cs.tg));
	is_bpf = calloc((size_t)c->fdcnt, 1);
	err = -ENOMEM;
	if (!cs.tg || !is_bpf)
		goto out;
	/* Which targets can the program serve? (Registers new ones.) */
	gen = atomic_load(&engine_gen);
	for (i = 0; i < c->fdcnt; i++) {
		uint64_t cookie = 0;

		if (wvv_registry_get(c->fds[i], pins.targets_fd, gen, &cookie) == WVV_TK_BPF) {
			cs.tg[cs.ntg].index = i;
			cs.tg[cs.ntg].cookie = cookie;
			cs.ntg++;
			is_bpf[i] = 1;
		}
	}
	err = -ENOENT;
	if (cs.ntg == 0)
		goto out; /* nothing for the program: no slot needed */
	cs.t = thread_get(&err);
	if (!cs.t)
		goto out;
	err = -EAGAIN;
	if (cs.t->gen != gen)
		goto out; /* reloaded while we classified: the loop takes this call */
	cs.t->call_id++;
	err = -ENOMEM;
	if (plan_frames(&cs) || grow_batch_buffers(&cs))
		goto out;
	if (cookie_set_init(&set, (size_t)cs.ntg))
		goto out;
	cs.set = &set;

	err = 0;
	/* From here on bytes may reach targets: every target gets its result
	 * from this call, in user space if the engine fails half way. */
	for (start = 0; start < cs.ntg;) {
		int end = start;

		while (end < cs.ntg && !cookie_set_add(&set, cs.tg[end].cookie))
			end++;
		cookie_set_clear(&set);
		cs.revalidated = 0;
		for (r = 0; r < cs.nframes && !err; r++)
			err = run_round(&cs, cs.tg + start, end - start, r);
		for (i = start; i < end; i++)
			finish(&cs, &cs.tg[i]);
		start = end;
	}
	for (i = 0; i < c->fdcnt; i++)
		if (!is_bpf[i])
			wvv_finish_target(c, i, 0);
	err = 0;
out:
	if (cs.refused && cs.t)
		drain_peer(cs.t);
	if (cs.t && cs.t->scratch_len > SCRATCH_KEEP) {
		/* IOV_MAX-sized frames need up to ~16 MiB; don't keep that. */
		free(cs.t->scratch);
		cs.t->scratch = NULL;
		cs.t->scratch_len = 0;
	}
	if (cs.engine_gone)
		engine_lost(cs.t);
	free(set.v);
	free(is_bpf);
	free(cs.tg);
	free(cs.frames);
	free(cs.slices);
	return err;
}
