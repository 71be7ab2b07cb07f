/* SPDX-License-Identifier: MIT */
/* writevv-bench: what connections.c, receivers.c, sock_util.c, netns.c and
 * discard.c share. */
#ifndef WVV_BENCH_NET_INTERNAL_H
#define WVV_BENCH_NET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct conns;

/* The loaded discard program (discard.c), NULL before discard_load(). */
extern struct discard_bpf *dskel;
#define DISCARD_MAX DISCARD_MAX_SOCKS

/* The private network namespace's descriptor, ours, and the receivers'
 * address in it (netns.c; -1 and "" before veth_up()). */
extern int ns_fd, self_ns_fd;
extern char addr_b[20];

/* futex(2) on a word shared with the receiver process (sock_util.c). */
long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts);

/* Socket options every benchmark socket gets (sock_util.c). */
int setopt_int(int fd, int level, int opt, int v);
int tune_socket(int fd);
/* Whole reads and writes on the control pipe, 0 or -1 (sock_util.c). */
int xread(int fd, void *buf, size_t len);
int xwrite(int fd, const void *buf, size_t len);
/* The receiver process of c (receivers.c): ctl is its control pipe. */
void __attribute__((noreturn)) rx_child(struct conns *c, int ctl);

#endif
