# Protocol abuse while a topic streams to good subscribers: bad handshakes,
# RFC 6455 violations (each answered with its close code, then closed),
# clients that never read, a ping flood, slowloris headers.  Every good
# subscriber (Python websockets, Node ws, curl -N SSE) must still get every
# message.  The relay runs with --client-publish --max-message 64K
# --max-backlog 1M.
# usage: wsabuse.py PORT WORKDIR WSRECORD_JS
import asyncio
import base64
import json
import os
import socket
import struct
import subprocess
import sys

import zlib

import websockets

import relaytest as rt
from relaytest import check, log

rt.NAME = "wsabuse"
PORT = int(sys.argv[1])
W = sys.argv[2]
WSRECORD = sys.argv[3]
BASE = "127.0.0.1:%d" % PORT
MAX_MESSAGE = 64 * 1024
N = int(os.environ.get("RELAY_TEST_MESSAGES", "400"))
EXP = [rt.text_msg(i, "S") + b" " + b"p" * (8000 + (i % 9) * 1000) for i in range(1, N + 1)]
KEY = base64.b64encode(b"0123456789abcdef").decode()
ABUSE = 0


def frame(opcode, payload, fin=True, mask=True, rsv=0, length=None):
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(c ^ key[i & 3] for i, c in enumerate(payload))


async def handshake(path="/ws/S", headers=None, method="GET", version="1.1"):
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    h = {"Host": "x", "Upgrade": "websocket", "Connection": "Upgrade",
         "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13"}
    h.update(headers or {})
    req = "%s %s HTTP/%s\r\n" % (method, path, version) + \
        "".join("%s: %s\r\n" % (k, v) for k, v in h.items() if v is not None) + "\r\n"
    w.write(req.encode())
    await w.drain()
    status, hdr = await asyncio.wait_for(rt.read_response(r), 10)
    return status, hdr, r, w


async def read_frames_until_close(r, timeout=10):
    """(close code or None, saw EOF after it, frames before it)."""
    buf = b""
    frames = []
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        while len(buf) >= 2:
            b1 = buf[1] & 0x7F
            off = 2
            if b1 == 126:
                if len(buf) < 4:
                    break
                b1 = struct.unpack("!H", buf[2:4])[0]
                off = 4
            elif b1 == 127:
                if len(buf) < 10:
                    break
                b1 = struct.unpack("!Q", buf[2:10])[0]
                off = 10
            if len(buf) < off + b1:
                break
            op, payload = buf[0] & 0x0F, buf[off:off + b1]
            buf = buf[off + b1:]
            if op == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                try:
                    rest = await asyncio.wait_for(r.read(), max(0.1, end - loop.time()))
                    eof = True
                except (asyncio.TimeoutError, ConnectionError):
                    rest, eof = b"", False
                return code, eof and rest == b"", frames
            frames.append((op, payload))
        try:
            chunk = await asyncio.wait_for(r.read(65536), max(0.1, end - loop.time()))
        except (asyncio.TimeoutError, ConnectionError):
            return None, False, frames
        if not chunk:
            return None, True, frames
        buf += chunk


async def expect_close(desc, data, code, path="/ws/S", headers=None, pmd_accepted=True):
    global ABUSE
    ABUSE += 1
    status, hdr, r, w = await handshake(path, headers=headers)
    if not check("%s: handshake 101" % desc, status == 101, "(%s)" % status):
        return
    if headers and "Sec-WebSocket-Extensions" in headers:
        got = hdr.get("sec-websocket-extensions", "")
        if pmd_accepted:
            check("%s: permessage-deflate accepted (server and client no context takeover)" % desc,
                  got == "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                  "(%r)" % got)
        else:
            check("%s: the offer is declined" % desc, got == "", "(%r)" % got)
    w.write(data)
    await w.drain()
    got, eof, _ = await read_frames_until_close(r)
    check("%s: close %d, then the server closes" % (desc, code), got == code and eof,
          "(close %s, eof %s)" % (got, eof))
    w.close()


async def expect_status(desc, status_want, **kw):
    global ABUSE
    ABUSE += 1
    status, hdr, r, w = await handshake(**kw)
    rest = b""
    try:
        rest = await asyncio.wait_for(r.read(), 5)
        eof = True
    except asyncio.TimeoutError:
        eof = False
    w.close()
    check("%s: HTTP %d and closed" % (desc, status_want), status == status_want and eof,
          "(%s, eof %s)" % (status, eof))
    return hdr


async def good_ws(url):
    got = []
    async with websockets.connect(url, max_size=None) as ws:
        async for m in ws:
            if m == "END":
                break
            got.append(m)
    return got


async def never_reader(path, ws=True):
    """A subscriber that never reads: 4 KiB receive buffer."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", PORT))
    if ws:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, KEY)).encode())
    else:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    return s


def closed_by_server(s):
    """Read what is left: True once EOF or a reset arrives."""
    s.settimeout(10)
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


async def main():
    global ABUSE
    loop = asyncio.get_running_loop()
    # good subscribers on S: python ws x4, node ws x2, curl SSE x2
    goods = [asyncio.create_task(good_ws("ws://%s/ws/S" % BASE)) for _ in range(4)]
    env = dict(os.environ, NODE_PATH="/usr/share/nodejs:" + os.environ.get("NODE_PATH", ""))
    node = subprocess.Popen(["node", WSRECORD, os.path.join(W, "node")] +
                            ["ws://%s/ws/S" % BASE] * 2, env=env)
    sses = []
    for k in range(2):
        f = open(os.path.join(W, "sse%d.out" % k), "wb")
        sses.append(subprocess.Popen(["curl", "-sS", "-N", "--max-time", "150",
                                      "http://%s/sse/S" % BASE], stdout=f))
    # subscribers that never read: two WebSocket, one SSE, one stream
    stuck = [await never_reader("/ws/S"), await never_reader("/ws/S"),
             await never_reader("/sse/S", ws=False), await never_reader("/stream/S", ws=False)]
    ABUSE += len(stuck)
    want = 4 + 2 + 2 + len(stuck)
    await rt.wait_for(lambda: rt.stats(PORT)["topics"].get("S", {}).get("subscribers") == want,
                      30, "all %d subscribers of S joined" % want)

    # The publisher streams all along, paced, in pipelined bursts.
    async def publish():
        p = rt.Publisher(PORT)
        await p.open()
        codes = []
        for s in range(0, N, 10):
            codes += await p.post_many("S", EXP[s:s + 10], "text/plain")
            await asyncio.sleep(0.05)
        await p.close()
        return codes
    pub = asyncio.create_task(publish())

    # Slowloris: one header byte a second never completes the head: 408.
    async def slowloris():
        r, w = await asyncio.open_connection("127.0.0.1", PORT)
        w.write(b"GET /ws/S HTTP/1.1\r\nHost: x\r\n")
        await w.drain()
        data = b""
        try:
            for _ in range(30):
                w.write(b"X")
                await w.drain()
                try:
                    data += await asyncio.wait_for(r.read(4096), 1)
                except asyncio.TimeoutError:
                    continue
                if data:
                    break
        except ConnectionError:
            pass
        w.close()
        return data
    slow = asyncio.create_task(slowloris())
    ABUSE += 1

    # Bad handshakes.
    await expect_status("missing Sec-WebSocket-Key", 400, headers={"Sec-WebSocket-Key": None})
    hdr = await expect_status("wrong version (8)", 426, headers={"Sec-WebSocket-Version": "8"})
    check("426 says Sec-WebSocket-Version: 13", hdr.get("sec-websocket-version") == "13")
    await expect_status("no Upgrade header", 426, headers={"Upgrade": None})
    await expect_status("Connection without upgrade", 400, headers={"Connection": "keep-alive"})
    await expect_status("key not 16 bytes", 400, headers={"Sec-WebSocket-Key": "c2hvcnQ="})
    await expect_status("POST to /ws/", 405, method="POST")
    await expect_status("bad topic name", 400, path="/ws/a%20b")
    await expect_status("topic name of 129 chars", 400, path="/ws/" + "x" * 129)
    await expect_status("HTTP/1.0 upgrade", 400, version="1.0")

    # Frames that break RFC 6455.
    big = b"x" * (MAX_MESSAGE + 1)
    await expect_close("unmasked client frame", frame(1, b"hi", mask=False), 1002)
    await expect_close("reserved opcode 0x3", frame(3, b"hi"), 1002)
    await expect_close("reserved control opcode 0xB", frame(0xB, b""), 1002)
    await expect_close("RSV1 bit without an extension", frame(1, b"hi", rsv=4), 1002)
    await expect_close("RSV3 bit", frame(2, b"hi", rsv=1), 1002)
    await expect_close("fragmented ping", frame(9, b"p", fin=False), 1002)
    await expect_close("ping with 126-byte payload", frame(9, b"p" * 126), 1002)
    await expect_close("continuation without a message", frame(0, b"x"), 1002)
    await expect_close("new text inside a fragmented message",
                       frame(1, b"a", fin=False) + frame(1, b"b"), 1002)
    await expect_close("64-bit length with the top bit", frame(2, b"", length=1 << 63), 1002)
    await expect_close("frame over --max-message", frame(2, big), 1009)
    await expect_close("fragments over --max-message",
                       frame(2, big[:40000], fin=False) + frame(0, big[40000:]), 1009)
    await expect_close("invalid UTF-8 text", frame(1, b"ok \xff\xfe"), 1007)
    await expect_close("overlong UTF-8", frame(1, b"\xc0\xaf"), 1007)
    await expect_close("UTF-16 surrogate in UTF-8", frame(1, b"\xed\xa0\x80"), 1007)
    await expect_close("invalid UTF-8 split over fragments",
                       frame(1, b"\xe2\x82", fin=False) + frame(0, b"\x28"), 1007)
    await expect_close("close with a 1-byte body", frame(8, b"\x03"), 1002)
    await expect_close("close with reserved code 1005", frame(8, struct.pack("!H", 1005)), 1002)
    await expect_close("close with code 999", frame(8, struct.pack("!H", 999)), 1002)
    await expect_close("close reason not UTF-8", frame(8, struct.pack("!H", 1000) + b"\xff"), 1007)
    await expect_close("close 1000 is echoed", frame(8, struct.pack("!H", 1000) + b"bye"), 1000)
    await expect_close("close 4000 (application) is echoed", frame(8, struct.pack("!H", 4000)), 4000)

    # permessage-deflate (the relay runs with --ws-deflate): compressed frames
    # that break RFC 7692 or the bounds.
    def deflate(b):
        c = zlib.compressobj(wbits=-15)
        out = c.compress(b) + c.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]
    pmd = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
    await expect_close("deflate: not deflate data", frame(1, b"\xff\xfe\xfd\xfc", rsv=4), 1007,
                       headers=pmd)
    await expect_close("deflate: inflates over --max-message (a %d-byte bomb)"
                       % len(deflate(bytes(MAX_MESSAGE * 4))),
                       frame(2, deflate(bytes(MAX_MESSAGE * 4)), rsv=4), 1009, headers=pmd)
    await expect_close("deflate: compressed text not UTF-8", frame(1, deflate(b"ok \xc0\xaf"), rsv=4),
                       1007, headers=pmd)
    await expect_close("deflate: RSV1 on a continuation", frame(1, b"a", fin=False) +
                       frame(0, deflate(b"b"), rsv=4), 1002, headers=pmd)
    await expect_close("deflate: RSV1 on a ping", frame(9, b"p", rsv=4), 1002, headers=pmd)
    await expect_close("deflate: a server window below 15 bits is refused, so RSV1 is an error",
                       frame(1, deflate(b"x"), rsv=4), 1002,
                       headers={"Sec-WebSocket-Extensions": "permessage-deflate; server_max_window_bits=10"},
                       pmd_accepted=False)

    # Ping: a pong with the same payload; a multi-byte UTF-8 char split over
    # fragments is valid; a fragmented masked message with a ping in between
    # publishes one message (--client-publish) to topic D's subscriber.
    d_sub = asyncio.create_task(good_ws("ws://%s/ws/D" % BASE))
    await rt.wait_for(lambda: rt.stats(PORT)["topics"].get("D", {}).get("subscribers") == 1,
                      10, "D subscriber joined")
    status, _, r, w = await handshake("/ws/D")
    msg = "fragmented \u20ac message".encode()
    w.write(frame(9, b"hello") + frame(1, msg[:12], fin=False) + frame(9, b"again") +
            frame(0, msg[12:], fin=False) + frame(0, b"", fin=True) + frame(2, b"\x00\x01\x02"))
    w.write(frame(1, b"END"))
    await w.drain()
    pongs = []
    buf = b""
    while len(pongs) < 2:
        try:
            chunk = await asyncio.wait_for(r.read(4096), 5)
        except asyncio.TimeoutError:
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 2 and len(buf) >= 2 + (buf[1] & 0x7F):
            n = buf[1] & 0x7F
            if buf[0] == 0x8A:
                pongs.append(buf[2:2 + n])
            buf = buf[2 + n:]
    check("pings answered by pongs with their payloads", pongs == [b"hello", b"again"], "(%s)" % pongs)
    w.write(frame(8, struct.pack("!H", 1000)))
    await w.drain()
    w.close()
    try:
        dgot = await asyncio.wait_for(d_sub, 10)
    except Exception as e:
        dgot = repr(e)
    check("client-published fragmented text (with a ping inside) and binary reach D's subscriber",
          dgot == [msg.decode(), b"\x00\x01\x02"], "(%r)" % (dgot,))

    # A ping flood from a client that never reads: dropped at the backlog bound.
    ABUSE += 1
    drops_before = rt.stats(PORT)["message_drops"]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", PORT))
    s.sendall(("GET /ws/E HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % KEY).encode())
    ping = frame(9, b"x" * 125)
    s.settimeout(0.5)
    sent = 0
    try:
        for _ in range(40000):
            s.sendall(ping)
            sent += 1
    except (socket.timeout, ConnectionError, BrokenPipeError):
        pass
    # Only read once the drop was counted: reading earlier would drain the pongs.
    def flood_dropped():
        st = rt.stats(PORT)
        return st["message_drops"] > drops_before and \
            st["topics"].get("E", {}).get("subscribers", 0) == 0
    await rt.wait_for(flood_dropped,
                      60, "ping flood without reading: dropped at the backlog bound")
    check("ping flood without reading: the server closes it (after %d pings)" % sent,
          closed_by_server(s))
    s.close()

    codes = await pub
    check("publisher: %d POSTs answered 204" % N, codes == [204] * N, "(%s)" % sorted(set(codes)))
    endp = rt.Publisher(PORT)
    await endp.open()
    await endp.post_many("S", [b"END"], "text/plain")
    await endp.close()

    for k, s in enumerate(stuck):
        check("never-reading subscriber %d was closed" % k, closed_by_server(s))
        s.close()
    data = await slow
    check("slowloris headers: answered 408 Request Timeout", data.startswith(b"HTTP/1.1 408"), "(%r)" % data[:40])

    for k, t in enumerate(goods):
        try:
            g = await asyncio.wait_for(t, 60)
        except Exception as e:
            g = repr(e)
        check("good python ws subscriber %d: all %d messages, text, in order" % (k, N),
              g == [m.decode() for m in EXP], "(got %s)" % (len(g) if isinstance(g, list) else g))
    try:
        node_rc = await loop.run_in_executor(None, lambda: node.wait(60))
    except Exception:
        node.kill()
        node_rc = -1
    check("node ws exits 0", node_rc == 0)
    for n in range(2):
        rows = [json.loads(line) for line in open(os.path.join(W, "node.%d.jsonl" % n))]
        msgs = [(r["t"], r["h"]) for r in rows if "h" in r]
        check("good node ws subscriber %d: all %d messages, text, in order" % (n, N),
              msgs == [("t", rt.sha(m)) for m in EXP] + [("t", rt.sha(b"END"))], "(got %d)" % len(msgs))

    def sse_done():
        return all(open(os.path.join(W, "sse%d.out" % k), "rb").read().endswith(b"data: END\n\n")
                   for k in range(2))
    await rt.wait_for(sse_done, 30, "SSE subscribers got END")
    for p in sses:
        p.terminate()
        p.wait()
    for k in range(2):
        ev = rt.parse_sse(open(os.path.join(W, "sse%d.out" % k), "rb").read())
        check("good SSE subscriber %d: all %d events in order" % (k, N),
              [e[1].encode() for e in ev] == EXP + [b"END"] and
              [e[0] for e in ev] == list(range(1, N + 2)), "(got %d)" % len(ev))
    st = rt.stats(PORT)
    log("stats:", json.dumps({k: st[k] for k in ("messages", "deliveries", "message_drops",
                                                  "websocket_errors", "http_errors")}))
    check("drops counted: the %d never-readers and the ping flood" % len(stuck),
          st["message_drops"] >= len(stuck) + 1, "(%s)" % st["message_drops"])
    check("WebSocket protocol errors counted", st["websocket_errors"] >= 20, "(%s)" % st["websocket_errors"])
    log("summary: %d abuse cases; 8 good subscribers checked %d messages each" % (ABUSE, N))


asyncio.run(main())
rt.finish()
