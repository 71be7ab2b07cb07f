/* SPDX-License-Identifier: MIT */
/*
 * writevv-bench: the in-kernel discard receiver (bench/discard.bpf.c).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.h"
#include "discard_shared.h"
#include "discard.skel.h"
#include "net_internal.h"

/* ---- the discard program --------------------------------------------------*/
struct discard_bpf *dskel;

bool discard_loaded(void)
{
	return dskel != NULL;
}

int discard_load(char *why, size_t len)
{
	int err;

	if (dskel)
		return 0;
	dskel = discard_bpf__open_and_load();
	if (!dskel) {
		snprintf(why, len, "loading bench/discard.bpf.c failed: %s", strerror(errno));
		return -1;
	}
	err = bpf_prog_attach(bpf_program__fd(dskel->progs.discard_verdict),
			      bpf_map__fd(dskel->maps.discard_map), BPF_SK_SKB_STREAM_VERDICT, 0);
	if (err) {
		snprintf(why, len, "attaching the sk_skb stream verdict failed: %s", strerror(errno));
		discard_bpf__destroy(dskel);
		dskel = NULL;
		return -1;
	}
	return 0;
}

