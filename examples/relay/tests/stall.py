# A WebSocket subscriber that stops reading while it is ready: the write that
# finds its socket full is partial, the rest goes to its backlog, and the
# backlog must go out as soon as the socket has room again -- with nothing
# more published (a relay that only wrote it at the next publish would leave
# the subscriber short forever).  Meanwhile a reading subscriber gets
# everything at once (the stalled one never delays it).
import base64
import os
import socket
import struct
import sys
import time

import relaytest as rt

rt.NAME = "stall"
PORT = int(sys.argv[1])
TOPIC = "stall"
COUNT, SIZE = 300, 4096          # 1.2 MB: under the default --max-backlog (4 MiB)
DEADLINE_S = 30                  # liveness only: the backlog goes out at once when it works


def msg(i):
    return struct.pack("<I", i) + bytes(((i * 31 + j) & 255) for j in range(SIZE - 4))


def ws_connect(rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: small window
    s.connect(("127.0.0.1", PORT))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws/%s HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (TOPIC, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(1)
        if not b:
            raise RuntimeError("closed during the handshake")
        head += b
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError("handshake refused: %r" % head[:80])
    return s


class Reader:
    """Server frames of one subscriber, parsed as they come."""

    def __init__(self, s):
        self.s, self.buf, self.msgs = s, b"", []

    def pump(self, timeout):
        self.s.settimeout(timeout)
        try:
            b = self.s.recv(1 << 20)
        except (socket.timeout, BlockingIOError):
            return True
        if not b:
            return False
        self.buf += b
        while len(self.buf) >= 2:
            l7, h = self.buf[1] & 0x7F, 2
            if l7 == 126:
                if len(self.buf) < 4:
                    break
                n, h = struct.unpack(">H", self.buf[2:4])[0], 4
            elif l7 == 127:
                if len(self.buf) < 10:
                    break
                n, h = struct.unpack(">Q", self.buf[2:10])[0], 10
            else:
                n = l7
            if len(self.buf) < h + n:
                break
            self.msgs.append((self.buf[0], self.buf[h:h + n]))
            self.buf = self.buf[h + n:]
        return True

    def read_until(self, count, deadline):
        while len(self.msgs) < count and time.monotonic() < deadline:
            if not self.pump(0.2):
                break
        return len(self.msgs)


def check_all(name, r):
    ok = len(r.msgs) == COUNT and all(op == 0x82 and m == msg(i) for i, (op, m) in
                                       enumerate(r.msgs))
    rt.check("%s: all %d messages, in order, intact" % (name, COUNT), ok,
             "(got %d, %d bytes of a frame pending)" % (len(r.msgs), len(r.buf)))


def main():
    stalled = ws_connect(rcvbuf=4096)
    fast = Reader(ws_connect())
    rt.check("both subscribed", rt.stats(PORT)["topics"].get(TOPIC, {}).get("websocket") == 2)
    pub = socket.create_connection(("127.0.0.1", PORT))
    pubf = pub.makefile("rb")
    for i in range(COUNT):
        body = msg(i)
        pub.sendall(("POST /pub/%s HTTP/1.1\r\nHost: relay\r\nContent-Type: "
                     "application/octet-stream\r\nContent-Length: %d\r\n\r\n"
                     % (TOPIC, len(body))).encode() + body)
        status = pubf.readline()
        while pubf.readline() not in (b"\r\n", b""):
            pass
        if not status.startswith(b"HTTP/1.1 204"):
            rt.check("publish %d answered 204" % i, False, status)
            break
        fast.pump(0.001)
    deadline = time.monotonic() + DEADLINE_S
    fast.read_until(COUNT, deadline)
    check_all("the reading subscriber", fast)
    st = rt.stats(PORT)["topics"][TOPIC]
    rt.check("the stalled subscriber was not dropped", st["drops"] == 0 and st["websocket"] == 2,
             st)
    # Nothing more is published from here on: its backlog must go out anyway.
    r = Reader(stalled)
    r.read_until(COUNT, time.monotonic() + DEADLINE_S)
    check_all("the subscriber that stalled, once it reads again", r)
    for s in (stalled, fast.s, pub):
        s.close()
    rt.finish()


main()
