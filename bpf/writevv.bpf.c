// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * writevv fan-out: an SK_MSG verdict program on the control sockmap.
 *
 * Each sendmsg on a control socket carries one frame: a wvv_frame_hdr and
 * its payload. The program checks the frame, checks that the sender really
 * holds the target socket at the fd it names (so no process can reach a
 * socket it does not own, and a reused fd number never gets another
 * socket's data), removes the header and redirects the payload to the
 * target's egress. Every well-formed frame from a slot's owner gets a
 * status record in that slot's ring buffer, and a frame is redirected only
 * if its record was committed: a frame without a record was not delivered.
 * Refused frames are passed to the control peer, which discards them:
 * SK_DROP would leave the drop verdict stuck on the control socket. (A
 * target missing from the map still makes the redirect helper drop; the
 * library sees EACCES and replaces its control socket.)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "writevv_frame.h"

#define TCP_ESTABLISHED_STATE 1
#define TCP_CLOSE_WAIT_STATE 8
#define SEND_SHUTDOWN_BIT 2

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Control sockets, key = slot. Claiming a slot = inserting with BPF_NOEXIST;
 * closing the socket frees it. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, WVV_SLOTS_DEFAULT);
	__type(key, __u32);
	__type(value, __u64);
} wvv_ctl SEC(".maps");

/* Target sockets, key = socket cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, WVV_TARGETS_DEFAULT);
	__type(key, __u64);
	__type(value, __u64);
} wvv_targets SEC(".maps");

struct ring_inner {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, WVV_RING_BYTES);
};

/* One status ring per slot; the loader creates and pins the inner rings. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, WVV_SLOTS_DEFAULT);
	__type(key, __u32);
	__array(values, struct ring_inner);
} wvv_rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WVV_SLOTS_DEFAULT);
	__type(key, __u32);
	__type(value, struct wvv_slot_state);
} wvv_slot_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wvv_stats);
} wvv_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wvv_config);
} wvv_config SEC(".maps");

/*
 * Does the current task hold, at 'fd', a socket whose cookie is 'cookie'?
 * Reads the caller's descriptor table; the back-pointers socket->file and
 * sock->sk_socket make sure private_data really is a socket.
 */
static __always_inline struct sock *fd_socket(__u32 fd, __u64 cookie)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fdarr;
	struct file *file = NULL;
	struct socket *sock;
	struct sock *sk;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fdarr = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fdarr[fd]) || !file)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, file) != file)
		return NULL;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, sk_socket) != sock)
		return NULL;
	if ((__u64)BPF_CORE_READ(sk, __sk_common.skc_cookie.counter) != cookie)
		return NULL;
	return sk;
}

static __always_inline bool sk_writable(struct sock *sk)
{
	unsigned char state = BPF_CORE_READ(sk, __sk_common.skc_state);

	if (state != TCP_ESTABLISHED_STATE && state != TCP_CLOSE_WAIT_STATE)
		return false;
	if (BPF_CORE_READ(sk, sk_err))
		return false;
	return !(BPF_CORE_READ(sk, sk_shutdown) & SEND_SHUTDOWN_BIT);
}


/* remote_port is a be16 that kernels since 5.x hand over in the upper half
 * of the word (older ones in the lower half): accept either. */
static __always_inline bool is_slot_owner(const struct wvv_slot_state *st,
					  const struct sk_msg_md *msg)
{
	__u32 rp = msg->remote_port;

	if (st->local_port != msg->local_port)
		return false;
	return st->remote_port == bpf_ntohs((__u16)(rp >> 16)) ||
	       st->remote_port == bpf_ntohs((__u16)(rp & 0xffff));
}

/* Payloads up to this size are redirected as one scatterlist element. */
#define WVV_LINEAR_MAX 4096

SEC("sk_msg")
int writevv_fanout(struct sk_msg_md *msg)
{
	struct wvv_frame_hdr hdr;
	struct wvv_slot_state *st;
	struct wvv_record *rec;
	struct wvv_stats *cnt;
	__u32 zero = 0, verdict;
	void *ring, *data, *end;

	cnt = bpf_map_lookup_elem(&wvv_stats, &zero);
	if (!cnt)
		return SK_PASS;

	if (msg->size < sizeof(hdr) || bpf_msg_pull_data(msg, 0, sizeof(hdr), 0))
		goto bad_unrecorded;
	data = msg->data;
	end = msg->data_end;
	if (data + sizeof(hdr) > end)
		goto bad_unrecorded;
	__builtin_memcpy(&hdr, data, sizeof(hdr));
	if (hdr.magic != WVV_FRAME_MAGIC)
		goto bad_unrecorded;

	ring = bpf_map_lookup_elem(&wvv_rings, &hdr.slot);
	st = bpf_map_lookup_elem(&wvv_slot_state, &hdr.slot);
	if (!ring || !st)
		goto bad_unrecorded;
	/* sk_msg programs cannot release socket references, so the slot's
	 * owner is recognised by its control connection's ports, which the
	 * library stores when it claims the slot. */
	if (!is_slot_owner(st, msg))
		goto bad_unrecorded;

	if (st->call_id != hdr.call_id || st->batch != hdr.batch) {
		st->call_id = hdr.call_id;
		st->batch = hdr.batch;
		st->poisoned = 0;
	}
	if (hdr.flags & WVV_F_CALL_START)
		__sync_fetch_and_add(&cnt->calls, 1);
	__sync_fetch_and_add(&cnt->frames, 1);

	if (st->poisoned) {
		verdict = WVV_V_POISONED;
	} else if (hdr.len != msg->size - sizeof(hdr)) {
		verdict = WVV_V_BAD_FRAME;
		__sync_fetch_and_add(&cnt->bad_frames, 1);
	} else {
		struct sock *sk = fd_socket(hdr.fd, hdr.cookie);

		if (!sk) {
			verdict = WVV_V_STALE_FD;
			__sync_fetch_and_add(&cnt->stale_fd, 1);
		} else if (!sk_writable(sk)) {
			verdict = WVV_V_NOT_WRITABLE;
			__sync_fetch_and_add(&cnt->not_writable, 1);
		} else {
			verdict = WVV_V_REDIRECT;
		}
	}

	/* The header leaves before the record is written, so that a record
	 * saying REDIRECT always means "this payload, and nothing else, went
	 * to the target". If the header cannot be removed, the frame is
	 * refused whole (to the control peer): a target never gets it. */
	if (verdict == WVV_V_REDIRECT && bpf_msg_pop_data(msg, 0, sizeof(hdr), 0)) {
		verdict = WVV_V_BAD_FRAME;
		__sync_fetch_and_add(&cnt->bad_frames, 1);
	}

	rec = bpf_ringbuf_reserve(ring, sizeof(*rec), 0);
	if (!rec) {
		__sync_fetch_and_add(&cnt->ring_full, 1);
		verdict = WVV_V_RING_FULL;
	} else {
		rec->call_id = hdr.call_id;
		rec->index = hdr.index;
		rec->len = hdr.len;
		rec->batch = hdr.batch;
		rec->verdict = verdict;
		bpf_ringbuf_submit(rec, 0);
	}

	if (verdict == WVV_V_REDIRECT) {
		/* A payload that straddles two scatterlist elements (its frame
		 * crossed a page-frag boundary, ~1 frame in 23 at 1400 B) is
		 * pushed element by element without MSG_MORE, so a TCP_NODELAY
		 * target sends it as two segments. Small ones are made one
		 * element (a no-op when they already are; a copy of at most a
		 * page when not). Larger ones span elements anyway. A failed
		 * pull leaves the payload as it was (only its segmentation
		 * differs), so it is counted and the payload still goes. */
		if (hdr.len <= WVV_LINEAR_MAX && bpf_msg_pull_data(msg, 0, hdr.len, 0))
			__sync_fetch_and_add(&cnt->pull_failures, 1);
		__sync_fetch_and_add(&cnt->bytes, hdr.len);
		return bpf_msg_redirect_hash(msg, &wvv_targets, &hdr.cookie, 0);
	}
	/* Refused (the header may still be on it: the control peer discards
	 * whatever it gets). */
	/* Keep the call's order: after one refusal, refuse the rest of the
	 * batch; the library resumes from the refused frame. */
	st->poisoned = 1;
	__sync_fetch_and_add(&cnt->redirect_failures, 1);
	return SK_PASS;

bad_unrecorded:
	__sync_fetch_and_add(&cnt->bad_frames, 1);
	__sync_fetch_and_add(&cnt->redirect_failures, 1);
	return SK_PASS;
}
