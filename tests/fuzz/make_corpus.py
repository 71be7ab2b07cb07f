#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of fuzz_writevv (tests/fuzz/corpus/): hand-made
inputs covering each mode, fault, descriptor kind, hostile number and iovec
shape. The layout is the one fuzz_writevv.c decodes:

  byte 0: calls - 1;  per call: mode, fault, fault slot, fdcnt selector,
  one byte per fd, iovcnt selector, 5 bytes per iovec (shape, len16, off16).
"""
import os
import struct
import sys

MODES = ["default", "iouring", "sendfile", "zerocopy", "kernel", "userland"]
FAULTS = {"none": 0, "reset": 5, "fill": 6, "shutdown": 7, "peer-shut-rd": 8, "close": 9}
SLOTS = ["tcp-blk", "tcp-blk-small", "tcp-nb-small", "tcp-nb", "unix-blk", "unix-nb",
         "unix-dgram", "pipe-blk", "pipe-nb", "file", "file-append", "devnull", "eventfd",
         "udp", "udp-unconn", "tcp-listen", "rdonly", "dir", "epoll", "tcp-blk2"]
S = {n: i for i, n in enumerate(SLOTS)}
HOSTILE = ["-1", "-2", "INT_MIN", "INT_MAX", "INT_MAX-1", "nofile", "nofile+1", "closed",
           "2^20", "2^26", "999"]


def hostile(name):
    return 224 + HOSTILE.index(name)


def iov_normal(length, off=0):
    """An iovec in the payload area: the length class follows from length."""
    if length < 64:
        cls, l16 = 0, length
    elif length < 4096:
        cls, l16 = 1, length
    elif length < 65536:
        cls, l16 = 2, length
    else:
        cls, l16 = 3, length // 4
    return struct.pack("<BHH", cls * 12, l16, off)


def iov_shape(shape, length=100, off=0):
    return struct.pack("<BHH", shape, length, off)


IOV_NULL0 = iov_shape(6)
IOV_NULL_LEN = iov_shape(7, 50)
IOV_GUARD_RUN_IN = iov_shape(8, 3000, 1000)   # 1000 readable bytes, then PROT_NONE
IOV_GUARD = iov_shape(9, 500, 10)             # starts in the PROT_NONE page
IOV_UNMAPPED = iov_shape(10, 700, 16)         # below mmap_min_addr
IOV_KERNEL = iov_shape(203, 100, 3)           # a kernel address
IOV_SSIZE_MAX = iov_shape(155, 0, 0)          # length SSIZE_MAX over PROT_NONE
IOV_ZERO = iov_shape(11, 0, 40)               # valid base, length 0


def call(mode, fds, iovs, fault="none", fault_slot=0, fdcnt_sel=None, iovcnt_sel=None):
    m = MODES.index(mode)
    fd_bytes = bytes(S[f] if isinstance(f, str) else f for f in fds)
    fc = len(fds) - 1 if fdcnt_sel is None else fdcnt_sel
    ic = len(iovs) if iovcnt_sel is None else iovcnt_sel
    return (bytes([m, FAULTS[fault], S[fault_slot] if isinstance(fault_slot, str) else fault_slot,
                   fc]) + fd_bytes + bytes([ic]) + b"".join(iovs))


def inp(*calls):
    return bytes([len(calls) - 1]) + b"".join(calls)


def seeds():
    every_kind = SLOTS[:]
    two = [iov_normal(100, 1), iov_normal(3000, 7)]
    for mode in MODES:
        yield f"{mode}-stream-basic", inp(call(mode, ["tcp-blk", "tcp-nb", "unix-blk", "pipe-blk"], two))
        yield f"{mode}-every-kind", inp(call(mode, every_kind, two))
        yield f"{mode}-large-dups", inp(call(mode, ["tcp-blk", "tcp-blk", "tcp-blk-small", "tcp-blk2",
                                                  "tcp-nb-small", "unix-nb", "pipe-nb"],
                                            [iov_normal(200000, 3), iov_normal(60000, 9)]))
        yield f"{mode}-small-many", inp(call(mode, ["tcp-blk"] * 3 + ["tcp-blk2"] * 3 + ["udp", "unix-dgram"],
                                             [iov_normal(10), iov_normal(0), iov_normal(20, 5)]))
    # faults before a call, then the same slot again in a second call
    for fault, slots in (("reset", ["tcp-blk", "tcp-nb", "unix-blk", "pipe-blk", "pipe-nb", "unix-dgram"]),
                         ("fill", ["tcp-nb-small", "tcp-nb", "unix-nb", "pipe-nb", "unix-dgram"]),
                         ("shutdown", ["tcp-blk", "tcp-nb", "unix-blk", "unix-dgram"]),
                         ("peer-shut-rd", ["unix-blk", "unix-nb", "unix-dgram"]),
                         ("close", ["tcp-blk", "pipe-blk", "file", "eventfd"])):
        for i, slot in enumerate(slots):
            mode = MODES[i % len(MODES)]
            yield f"fault-{fault}-{slot}", inp(
                call(mode, [slot, "tcp-blk2", slot], two, fault=fault, fault_slot=slot),
                call(MODES[(i + 1) % len(MODES)], [slot, slot], [iov_normal(5000)]))
    # hostile descriptor numbers among good ones
    for i, h in enumerate(HOSTILE):
        yield f"hostile-fd-{h}", inp(call(MODES[i % len(MODES)], ["tcp-blk", hostile(h), "pipe-blk", hostile(h)], two))
    # iovec shapes
    for i, (name, v) in enumerate((("null-len0", IOV_NULL0), ("null-len", IOV_NULL_LEN),
                                   ("guard-run-in", IOV_GUARD_RUN_IN), ("guard", IOV_GUARD),
                                   ("unmapped", IOV_UNMAPPED), ("kernel-address", IOV_KERNEL),
                                   ("ssize-max", IOV_SSIZE_MAX), ("zero-len", IOV_ZERO))):
        mode = MODES[i % len(MODES)]
        yield f"iov-{name}", inp(call(mode, ["tcp-blk", "tcp-nb", "pipe-nb", "file", "devnull", "udp"],
                                      [iov_normal(300), v, iov_normal(40)]))
        yield f"iov-{name}-first-zerocopy", inp(call("zerocopy", ["tcp-blk", "unix-blk", "devnull"], [v, iov_normal(64)]))
    # a kernel address after 256 KiB of good iovecs: writev writes nothing (EFAULT)
    yield "iov-kernel-address-after-frames", inp(call("kernel", ["tcp-blk", "tcp-blk2"],
                                                      [iov_normal(65535)] * 4 + [IOV_KERNEL]))
    # one iovec of SSIZE_MAX bytes: EFAULT, but MAX_RW_COUNT from /dev/null (6.18), EMSGSIZE from UDP
    for mode in ("iouring", "kernel", "zerocopy"):
        yield f"iov-ssize-max-alone-{mode}", inp(call(mode, ["devnull", "tcp-blk", "pipe-nb", "udp", "devnull"],
                                                      [IOV_SSIZE_MAX]))
    yield "iov-overlap", inp(call("default", ["tcp-blk", "file"],
                                  [iov_normal(4000, 0), iov_normal(4000, 100), iov_normal(4000, 0)]))
    yield "iov-max-one-byte", inp(call("iouring", ["tcp-blk", "pipe-blk", "udp"], [], iovcnt_sel=16))
    yield "iov-max-plus-one", inp(call("default", ["tcp-blk"], [], iovcnt_sel=17))
    yield "iovcnt-negative", inp(call("sendfile", ["tcp-blk"], [], iovcnt_sel=18 + 24 * 6))
    yield "iov-null-count", inp(call("zerocopy", ["tcp-blk"], [], iovcnt_sel=19))
    yield "iov-total-overflow", inp(call("default", ["devnull"], [IOV_SSIZE_MAX, IOV_SSIZE_MAX, iov_normal(10)]))
    yield "fdcnt-zero", inp(call("iouring", [], [iov_normal(10)], fdcnt_sel=248))
    yield "fdcnt-negative", inp(call("userland", [], [iov_normal(10)], fdcnt_sel=250))
    yield "fds-null", inp(call("kernel", [], [iov_normal(10)], fdcnt_sel=254))
    yield "iovcnt-zero", inp(call("kernel", ["tcp-blk", "tcp-listen", "udp-unconn", "rdonly"], []))
    yield "mode-switches", inp(*(call(m, ["tcp-blk", "tcp-blk2", "unix-blk"], two) for m in
                                 ("kernel", "zerocopy", "sendfile", "default")))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    os.makedirs(out, exist_ok=True)
    n = 0
    for name, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        n += 1
    print(f"{n} seeds in {out}")


if __name__ == "__main__":
    main()
