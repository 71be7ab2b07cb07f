/* SPDX-License-Identifier: MIT */
/*
 * The fuzz target's descriptor pools: two identical sets ("twins") of real
 * descriptors, one for writevv and one for the plain writev loop, each slot
 * at a fixed descriptor number (so that a slot closed and re-created gets
 * the same number back and nothing else ever takes it), and what each
 * slot's receiver got.
 */
#ifndef WVV_FUZZ_POOL_H
#define WVV_FUZZ_POOL_H

#include <pthread.h>
#include <stddef.h>

enum slot_kind {
	S_TCP_BLK,       /* loopback TCP, blocking, drained while the call runs */
	S_TCP_BLK_SMALL, /* the same with a small SO_SNDBUF: many partial sends */
	S_TCP_NB_SMALL,  /* nonblocking, small SO_SNDBUF, read only after the call */
	S_TCP_NB,        /* nonblocking, default buffers, read only after the call */
	S_UNIX_BLK,      /* UNIX stream socketpair, blocking, drained */
	S_UNIX_NB,       /* UNIX stream, nonblocking, read after the call */
	S_UNIX_DGRAM,    /* UNIX datagram socketpair, nonblocking, read after */
	S_PIPE_BLK,      /* pipe, blocking, drained */
	S_PIPE_NB,       /* pipe, nonblocking, read after */
	S_FILE,          /* regular file (O_TMPFILE) */
	S_FILE_APPEND,   /* regular file with O_APPEND */
	S_DEVNULL,       /* /dev/null */
	S_EVENTFD,       /* nonblocking eventfd */
	S_UDP,           /* connected UDP to a loopback receiver */
	S_UDP_UNCONN,    /* UDP socket without a peer: EDESTADDRREQ */
	S_TCP_LISTEN,    /* listening TCP socket */
	S_RDONLY,        /* a file opened O_RDONLY: EBADF */
	S_DIR,           /* a directory: EBADF */
	S_EPOLL,         /* an epoll instance: EINVAL */
	S_TCP_BLK2,      /* a second blocking TCP pair (the same kind twice in a call) */
	NSLOTS
};

struct slot {
	enum slot_kind kind;
	int rx;               /* receiving end (-1: none) */
	int broken;           /* reset, shut down or closed: re-create after the input */
	int tx_closed;
	unsigned char *got;   /* what the receiver read during this call */
	size_t got_len, got_cap;
	int rx_eof;
	unsigned char *want;  /* what it should have read (filler + payload prefixes) */
	size_t want_len, want_cap;
	size_t file_checked;  /* regular files: bytes already compared */
	unsigned long long counter; /* eventfd: value read after the call */
	unsigned datagrams;   /* UDP: datagrams read during this call */
};

struct pool {
	int base; /* slot k's descriptor is base + k */
	struct slot s[NSLOTS];
};

extern struct pool pools[2];
extern pthread_mutex_t pool_lock; /* got/rx of drained slots, shared with the drain thread */

void pool_init(void);
void pool_open_slot(int p, int k);
void pool_close_slot(int p, int k);
/* Re-create broken slots, empty every receiver and file, forget got/want. */
void pool_restore(void);
/* Slot kinds whose receiver is drained by the background thread. */
int slot_drained(enum slot_kind k);
/* Nonblocking stream targets: how much a write takes depends on timing
 * and on how the bytes were queued (page references or copies). */
int slot_flow_relaxed(enum slot_kind k);
/* Kinds whose delivered bytes can be read back (sockets, pipes, files). */
int slot_has_receiver(enum slot_kind k);
const char *slot_name(enum slot_kind k);

void want_append(struct slot *s, const void *buf, size_t len);
/* Read what slot k of pool p received after a call that was told to
 * deliver s->want_len bytes to it (waiting for them until 'deadline', one
 * for all the slots of a call: a few seconds from pool_collect_deadline()). */
long long pool_collect_deadline(void);
void pool_collect(int p, int k, unsigned successes, long long deadline);

#endif
