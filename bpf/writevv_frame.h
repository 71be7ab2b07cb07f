/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The contract between libwritevv and writevv.bpf.c: frame header, status
 * record, per-slot state, counters and the pinned layout. Shared verbatim by
 * the BPF program and user space; bump WVV_ABI_VERSION on any change.
 */
#ifndef WRITEVV_FRAME_H
#define WRITEVV_FRAME_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define WVV_ABI_VERSION 2

/* "WVV1": first word of every frame. */
#define WVV_FRAME_MAGIC 0x31565657u

/*
 * A frame must reach the verdict program as one sk_msg, so it must fit in
 * MAX_MSG_FRAGS (17) scatterlist elements even when the page allocator only
 * hands out order-0 pages: 16 full pages is always enough.
 */
#define WVV_FRAME_BYTES_MAX (16u * 4096u)

/*
 * Pinned layout under the pin directory (default below, or $WRITEVV_PIN_DIR):
 *   prog            the SK_MSG program, attached to wvv_ctl
 *   wvv_ctl wvv_targets wvv_rings wvv_slot_state wvv_stats wvv_config
 *   rings/<slot>    the status ring buffer of each slot (inner maps of wvv_rings)
 *   u/<uid>/        a load of its own, as above, for each account of the
 *                   group given to `writevv-loader load --group` (the
 *                   library of a process with that effective uid uses it)
 * Sizes: the loader can change slots and targets.
 */
#define WVV_PIN_DIR_DEFAULT "/sys/fs/bpf/writevv"
#define WVV_PIN_PROG "prog"
#define WVV_PIN_CTL "wvv_ctl"
#define WVV_PIN_TARGETS "wvv_targets"
#define WVV_PIN_RINGS "wvv_rings"
#define WVV_PIN_SLOT_STATE "wvv_slot_state"
#define WVV_PIN_STATS "wvv_stats"
#define WVV_PIN_CONFIG "wvv_config"
#define WVV_PIN_RING_DIR "rings"
#define WVV_PIN_ACCOUNT_DIR "u"
#define WVV_SLOTS_DEFAULT 128          /* concurrent control sockets */
#define WVV_TARGETS_DEFAULT 65536      /* registered target sockets */
#define WVV_RING_BYTES (256u * 1024u)  /* status ring per slot */
/* Frames per sendmmsg batch; the ring holds a batch's records many times. */
#define WVV_BATCH_MAX 1024

/* Frame flags */
#define WVV_F_CALL_START 0x1u  /* first frame of a writevv call */

struct wvv_frame_hdr {
	__u32 magic;
	__u32 slot;      /* control slot of the sending thread */
	__u64 call_id;
	__u64 cookie;    /* SO_COOKIE of the target socket = key in the targets map */
	__u32 fd;        /* the caller's descriptor for that socket */
	__u32 index;     /* position of the target in fds[] */
	__u32 len;       /* payload bytes following this header */
	__u32 batch;     /* sendmmsg batch number within the call */
	__u32 flags;
	__u32 reserved;
};

/* Verdicts reported per frame. Anything but REDIRECT means the payload was
 * not delivered to the target (it went to the control peer and is dropped). */
enum wvv_verdict {
	WVV_V_REDIRECT = 1,     /* handed to the target socket */
	WVV_V_BAD_FRAME = 2,    /* length or header inconsistent */
	WVV_V_STALE_FD = 3,     /* fd no longer refers to the registered socket */
	/* 4 is unused: a socket missing from the map cannot be seen before
	 * the redirect (sk_msg programs cannot release a looked-up socket);
	 * the redirect then drops and the library sees EACCES. */
	WVV_V_NOT_WRITABLE = 5, /* target not established, shut down or in error */
	WVV_V_POISONED = 6,     /* an earlier frame of this batch was refused */
	WVV_V_RING_FULL = 7,    /* (never recorded: counted in stats only) */
};

struct wvv_record {
	__u64 call_id;
	__u32 index;
	__u32 len;
	__u32 batch;
	__u32 verdict;
};

/* Per-slot state. The library writes the ports of its control connection
 * (host order) when it claims the slot; the program keeps the rest, reset
 * at each new (call, batch). */
struct wvv_slot_state {
	__u64 call_id;
	__u32 batch;
	__u32 poisoned;
	__u32 local_port;
	__u32 remote_port;
};

/* Per-CPU counters (map wvv_stats, one entry; atomic adds, since sk_msg
 * programs run in preemptible process context). bytes counts payloads
 * handed to the redirect helper. */
struct wvv_stats {
	__u64 calls;
	__u64 frames;
	__u64 bytes;
	__u64 redirect_failures; /* frames not redirected, any reason */
	__u64 stale_fd;
	__u64 not_writable;
	__u64 bad_frames;
	__u64 ring_full;
	__u64 pull_failures;     /* payload not made one element (sent anyway) */
};

/* Map wvv_config, one entry, written by the loader. */
struct wvv_config {
	__u32 abi_version;
	__u32 slots;
	__u32 ring_bytes;
	__u32 frame_bytes_max;
	__u64 object_hash; /* FNV-1a of the BPF object: which build is loaded */
};

#endif /* WRITEVV_FRAME_H */
