/* SPDX-License-Identifier: MIT */
/* Which descriptors the BPF engine can serve, and their registration cache. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include <bpf/bpf.h>

#include "registry.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

#define CHUNK_BITS 12
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define NCHUNKS 1024u /* fds below 4M are cached */

#define COOKIE_USER UINT64_MAX

/* How long a "user space" verdict is trusted: the fd number may be reused
 * for a TCP connection the program could serve. */
#define USER_TTL_S 1

struct reg_entry {
	_Atomic uint64_t cookie; /* 0: unknown, COOKIE_USER: user space */
	_Atomic uint32_t gen;
	_Atomic uint32_t user_until; /* coarse monotonic seconds, for COOKIE_USER */
};

static uint32_t coarse_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)ts.tv_sec;
}

static _Atomic(struct reg_entry *) chunks[NCHUNKS];

static struct reg_entry *entry_of(int fd, int create)
{
	unsigned int c = (unsigned int)fd >> CHUNK_BITS;
	struct reg_entry *chunk, *expected = NULL;

	if (fd < 0 || c >= NCHUNKS)
		return NULL;
	chunk = atomic_load_explicit(&chunks[c], memory_order_acquire);
	if (chunk || !create)
		return chunk ? &chunk[fd & (CHUNK_SIZE - 1)] : NULL;
	chunk = calloc(CHUNK_SIZE, sizeof(*chunk));
	if (!chunk)
		return NULL;
	if (!atomic_compare_exchange_strong(&chunks[c], &expected, chunk)) {
		free(chunk);
		chunk = expected;
	}
	return &chunk[fd & (CHUNK_SIZE - 1)];
}

enum wvv_target_kind wvv_classify(const struct wvv_sock_facts *f)
{
	if (!f->is_socket || f->type != SOCK_STREAM || f->protocol != IPPROTO_TCP)
		return WVV_TK_USER;
	if (f->domain != AF_INET && f->domain != AF_INET6)
		return WVV_TK_USER;
	if (f->listening || f->has_ulp)
		return WVV_TK_USER;
	/* Only connected streams can be redirected to (TCP_ESTABLISHED = 1,
	 * TCP_CLOSE_WAIT = 8; other states get writev's own errors). */
	if (f->tcp_state != 1 && f->tcp_state != 8)
		return WVV_TK_USER;
	return WVV_TK_BPF;
}

int wvv_classification_lasts(const struct wvv_sock_facts *f)
{
	/* A connecting or closed TCP socket may become another kind; a bad fd
	 * may be opened later. Everything else keeps its kind until close. */
	if (!f->is_socket)
		return 0;
	if (f->type == SOCK_STREAM && f->protocol == IPPROTO_TCP && !f->listening &&
	    f->tcp_state != 1 && f->tcp_state != 8)
		return 0;
	return 1;
}

static void probe_facts(int fd, struct wvv_sock_facts *f, uint64_t *cookie)
{
	socklen_t len;
	char ulp[16] = "";
	struct tcp_info ti;

	memset(f, 0, sizeof(*f));
	len = sizeof(*cookie);
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len))
		return;
	f->is_socket = 1;
	len = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_TYPE, &f->type, &len);
	len = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &f->protocol, &len);
	len = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &f->domain, &len);
	len = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &f->listening, &len);
	if (f->type != SOCK_STREAM || f->protocol != IPPROTO_TCP)
		return;
	len = sizeof(ulp);
	if (!getsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, &len) && len > 0 && ulp[0])
		f->has_ulp = 1;
	len = sizeof(ti);
	if (!getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		f->tcp_state = ti.tcpi_state;
}

enum wvv_target_kind wvv_registry_get(int fd, int targets_fd, uint32_t gen, uint64_t *cookie)
{
	/* A chunk is made only for a socket worth caching: numbers that are
	 * not open (any int a caller passes) cost nothing. */
	struct reg_entry *e = entry_of(fd, 0);
	struct wvv_sock_facts f;
	uint64_t c = 0, v;
	enum wvv_target_kind kind;

	if (e && atomic_load_explicit(&e->gen, memory_order_acquire) == gen) {
		c = atomic_load_explicit(&e->cookie, memory_order_relaxed);
		if (c == COOKIE_USER && coarse_now_s() < atomic_load(&e->user_until))
			return WVV_TK_USER;
		if (c && c != COOKIE_USER) {
			*cookie = c;
			return WVV_TK_BPF;
		}
	}
	c = 0;
	probe_facts(fd, &f, &c);
	kind = wvv_classify(&f);
	if (kind == WVV_TK_BPF) {
		v = (uint64_t)fd;
		if (bpf_map_update_elem(targets_fd, &c, &v, BPF_ANY))
			kind = WVV_TK_USER; /* e.g. a socket type the kernel refuses */
	}
	if ((kind == WVV_TK_BPF || wvv_classification_lasts(&f)) && (e || (e = entry_of(fd, 1)))) {
		if (kind != WVV_TK_BPF)
			atomic_store(&e->user_until, coarse_now_s() + USER_TTL_S + 1);
		atomic_store_explicit(&e->cookie, kind == WVV_TK_BPF ? c : COOKIE_USER,
				      memory_order_relaxed);
		atomic_store_explicit(&e->gen, gen, memory_order_release);
	}
	*cookie = c;
	return kind;
}

void wvv_registry_forget(int fd)
{
	struct reg_entry *e = entry_of(fd, 0);

	if (e)
		atomic_store(&e->cookie, 0);
}
