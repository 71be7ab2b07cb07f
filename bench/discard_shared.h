/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared between bench/discard.bpf.c and the benchmark. */
#ifndef WVV_BENCH_DISCARD_SHARED_H
#define WVV_BENCH_DISCARD_SHARED_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define DISCARD_MAX_SOCKS 32768

struct discard_sock {
	__u64 bytes;   /* bytes dropped on this socket since it was added */
	__u64 last_ns; /* bpf_ktime_get_ns() of the latest skb */
};

#endif
