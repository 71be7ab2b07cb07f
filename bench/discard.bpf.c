// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * writevv-bench in-kernel discard receiver.
 *
 * An sk_skb stream verdict program attached to a sockmap that holds the
 * receiving ends of the benchmark connections. TCP has already accepted
 * (and will ACK) every skb the program sees; the program counts its bytes
 * per socket, stamps the arrival time and drops it, so no receiving thread
 * ever runs. The bytes cannot be compared with the pattern here: the
 * benchmark checks the per-socket byte counts instead and keeps a sample
 * of the sockets out of the map, drained and checked by threads.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "discard_shared.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Read by the benchmark through the skeleton's mmap()ed .bss. */
struct discard_sock socks_stat[DISCARD_MAX_SOCKS];
__u64 total_bytes;
__u64 unknown_skbs;

/* The receiving sockets, key = benchmark index. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, DISCARD_MAX_SOCKS);
	__type(key, __u32);
	__type(value, __u64);
} discard_map SEC(".maps");

/* Socket cookie -> benchmark index (filled by the benchmark). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DISCARD_MAX_SOCKS);
	__type(key, __u64);
	__type(value, __u32);
} discard_index SEC(".maps");

SEC("sk_skb/stream_verdict")
int discard_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	__u32 *idx = bpf_map_lookup_elem(&discard_index, &cookie);
	__u32 i;

	if (!idx) {
		__sync_fetch_and_add(&unknown_skbs, 1);
		return SK_DROP;
	}
	i = *idx;
	if (i >= DISCARD_MAX_SOCKS)
		return SK_DROP;
	__sync_fetch_and_add(&socks_stat[i].bytes, skb->len);
	socks_stat[i].last_ns = bpf_ktime_get_ns();
	__sync_fetch_and_add(&total_bytes, skb->len);
	return SK_DROP;
}
