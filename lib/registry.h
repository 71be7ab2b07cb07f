/* SPDX-License-Identifier: MIT */
#ifndef WRITEVV_REGISTRY_H
#define WRITEVV_REGISTRY_H

#include <stdint.h>

enum wvv_target_kind {
	WVV_TK_USER = 0, /* written with writev/sendmsg in user space */
	WVV_TK_BPF = 1,  /* registered in the targets map under its cookie */
};

/*
 * Kind of fd for map generation 'gen', registering it on first use (one
 * map update per socket, not per call). Never fails: anything the BPF path
 * cannot serve is WVV_TK_USER. The cache can go stale when an fd number is
 * reused: for numbers cached as BPF targets the program detects it
 * (STALE_FD) and the caller then calls wvv_registry_forget(); "user space"
 * verdicts expire after a second, so a number reused for a TCP connection
 * gets the fast path back.
 */
enum wvv_target_kind wvv_registry_get(int fd, int targets_fd, uint32_t gen, uint64_t *cookie);
void wvv_registry_forget(int fd);

/* Pure classification rule, exposed for unit tests. */
struct wvv_sock_facts {
	int is_socket, type, protocol, domain, listening, tcp_state;
	int has_ulp; /* kTLS or any other TCP upper-layer protocol */
};
enum wvv_target_kind wvv_classify(const struct wvv_sock_facts *f);
/* May the classification be cached (is it a lasting property of the fd)? */
int wvv_classification_lasts(const struct wvv_sock_facts *f);

#endif
