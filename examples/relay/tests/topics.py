# Topic fan-out with real clients: Python websockets and Node ws WebSocket
# subscribers, curl -N SSE and stream subscribers, keep-alive and pipelined
# POST publishers on three topics at once.  Every subscriber's messages are
# checked: content, type, order, no gap, no duplicate.
# usage: topics.py PORT WORKDIR WSRECORD_JS
import asyncio
import json
import os
import re
import subprocess
import sys

import websockets

import relaytest as rt
from relaytest import check, log

rt.NAME = "topics"
PORT = int(sys.argv[1])
W = sys.argv[2]
WSRECORD = sys.argv[3]
BASE = "127.0.0.1:%d" % PORT

DEFLATE = os.environ.get("TOPICS_DEFLATE") == "1"
N_TEXT = int(os.environ.get("RELAY_TEST_MESSAGES", "400"))  # topic A, text
N_BIN = N_TEXT // 4                                             # topic B, binary
N_PUBS, N_PER_PUB = 4, N_TEXT // 4                              # topic C, concurrent
PY_WS_A, PY_WS_B, PY_WS_C = 6, 2, 3
SSE_A, STREAM_B = 3, 2

EXP_A = [rt.text_msg(i, "A") for i in range(1, N_TEXT + 1)]
EXP_B = [rt.bin_msg(i) for i in range(1, N_BIN + 1)]


def c_msg(p, i):
    return ("C %d %d %s" % (p, i, "x" * ((p * 31 + i) % 200))).encode()


async def ws_sub(url, ready):
    """(list of (is_text, bytes), close code) until the text message END."""
    got = []
    async with websockets.connect(url, max_size=None) as ws:
        ready.set_result(True) if not ready.done() else None
        async for m in ws:
            if isinstance(m, str):
                if m == "END":
                    break
                got.append((True, m.encode()))
            else:
                got.append((False, m))
    return got


def check_text_seq(who, got, expected):
    texts = [b for is_text, b in got if is_text]
    check("%s: %d messages, all text frames" % (who, len(expected)),
          len(got) == len(expected) and len(texts) == len(got),
          "(got %d, %d text)" % (len(got), len(texts)))
    bad = [k for k, (a, b) in enumerate(zip([b for _, b in got], expected)) if a != b]
    check("%s: every message's content in order" % who, not bad and len(got) == len(expected),
          "(first mismatch at %s)" % (bad[:1],))


def check_c(who, got):
    seen = {p: [] for p in range(N_PUBS)}
    bad = 0
    for is_text, b in got:
        parts = b.split(b" ", 3)
        p, i = int(parts[1]), int(parts[2])
        if not is_text or b != c_msg(p, i):
            bad += 1
        seen[p].append(i)
    ok = all(seen[p] == list(range(1, N_PER_PUB + 1)) for p in range(N_PUBS))
    check("%s: %d publishers x %d messages, each publisher's in order, no gap, no duplicate"
          % (who, N_PUBS, N_PER_PUB), ok and bad == 0,
          "(bad %d, counts %s)" % (bad, [len(v) for v in seen.values()]))


async def read_to_eof(r):
    data = b""
    while True:
        chunk = await r.read(1 << 16)
        if not chunk:
            return data
        data += chunk


async def pipelined_answers(loop):
    """Answers to pipelined requests (held while the next request is there
    already, sent together): all of them, in order, whatever comes next."""
    qsub_ready = loop.create_future()
    qsub = asyncio.create_task(ws_sub("ws://%s/ws/Q" % BASE, qsub_ready))
    await rt.wait_for(lambda: rt.stats(PORT)["topics"].get("Q", {}).get("subscribers") == 1,
                      10, "Q subscriber joined")
    post = lambda body, extra=b"": (b"POST /pub/Q HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                                    + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    # One write: two POSTs, a chunked one, one with Expect: 100-continue, a 404.
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    w.write(post(b"q1") + post(b"q2") +
            b"POST /pub/Q HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nq3\r\n0\r\n\r\n" +
            post(b"q4", b"Expect: 100-continue\r\n") +
            b"GET /no-such-page HTTP/1.1\r\nHost: x\r\n\r\n")
    await w.drain()
    data = await asyncio.wait_for(read_to_eof(r), 10)
    w.close()
    codes = [int(c) for c in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]
    check("pipelined POST, POST, chunked POST, Expect POST, GET 404 in one write: "
          "204 204 204 100 204 404, in order", codes == [204, 204, 204, 100, 204, 404],
          "(got %s)" % codes)
    # Three POSTs and the head of a fourth whose body comes later: the three
    # answers are not held for it.
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    w.write(post(b"q5") + post(b"q6") + post(b"q7") +
            b"POST /pub/Q HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 2\r\n\r\n")
    await w.drain()
    first = []
    try:
        for _ in range(3):
            first.append((await asyncio.wait_for(rt.read_response(r), 10))[0])
    except asyncio.TimeoutError:
        pass
    w.write(b"q8" + post(b"END", b"Connection: close\r\n"))
    await w.drain()
    rest = [int(c) for c in re.findall(rb"HTTP/1\.1 (\d{3}) ",
                                       await asyncio.wait_for(read_to_eof(r), 10))]
    w.close()
    check("pipelined: 3 answers before the 4th request's body is sent, then 204 204",
          first == [204] * 3 and rest == [204, 204], "(got %s then %s)" % (first, rest))
    got = await asyncio.wait_for(qsub, 10)
    check("pipelined: the subscriber got q1..q8 in order",
          [b for _, b in got] == [b"q%d" % i for i in range(1, 9)], "(got %s)" % got)


async def gone_subscribers():
    """Subscribers whose clients end (curl -N killed, a WebSocket's TCP close
    without a close frame) leave /stats at once, with no message to the topic."""
    procs = [subprocess.Popen(["curl", "-sS", "-N", "--max-time", "60", url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for url in ["http://%s/sse/E" % BASE] * 2 + ["http://%s/stream/E" % BASE] * 2 +
             ["http://%s/" % BASE]]
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    w.write(b"GET /ws/E HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    await w.drain()
    status, _ = await rt.read_response(r)
    check("gone: raw WebSocket subscriber upgraded", status == 101)

    def counts():
        st = rt.stats(PORT)
        e = st["topics"].get("E", {})
        return (e.get("sse", 0), e.get("stream", 0), e.get("websocket", 0), st["viewers"])
    await rt.wait_for(lambda: counts() == (2, 2, 1, 1), 10, "E subscribers and a viewer joined")
    check("gone: /stats counts 2 SSE, 2 stream, 1 WebSocket on E and 1 viewer",
          counts() == (2, 2, 1, 1), "(%s)" % (counts(),))
    for k, p in enumerate(procs):
        p.kill() if k % 2 else p.terminate()
        p.wait()
    w.close()
    await rt.wait_for(lambda: counts() == (0, 0, 0, 0), 10, "gone subscribers left")
    check("gone: curl -N clients killed, a WebSocket TCP-closed: /stats counts 0 on E and "
          "0 viewers", counts() == (0, 0, 0, 0), "(%s)" % (counts(),))


async def main():
    loop = asyncio.get_running_loop()
    procs = []
    # curl -N subscribers
    for k in range(SSE_A):
        f = open(os.path.join(W, "sse%d.out" % k), "wb")
        procs.append(("sse", k, subprocess.Popen(
            ["curl", "-sS", "-N", "--max-time", "100", "http://%s/sse/A" % BASE], stdout=f)))
    for k in range(STREAM_B):
        f = open(os.path.join(W, "stream%d.out" % k), "wb")
        procs.append(("stream", k, subprocess.Popen(
            ["curl", "-sS", "-N", "--max-time", "100", "http://%s/stream/B" % BASE], stdout=f)))
    # node ws subscribers: 2 on A, 1 on B, 1 on C
    node_urls = ["ws://%s/ws/A" % BASE] * 2 + ["ws://%s/ws/B" % BASE, "ws://%s/ws/C" % BASE]
    env = dict(os.environ, NODE_PATH="/usr/share/nodejs:/usr/lib/nodejs:" +
               os.environ.get("NODE_PATH", ""))
    node = subprocess.Popen(["node", WSRECORD, os.path.join(W, "node")] + node_urls, env=env)
    # python websockets subscribers
    tasks = []
    for topic, n in (("A", PY_WS_A), ("B", PY_WS_B), ("C", PY_WS_C)):
        for k in range(n):
            fut = loop.create_future()
            tasks.append((topic, k, asyncio.create_task(ws_sub("ws://%s/ws/%s" % (BASE, topic), fut))))
    n_a = PY_WS_A + 2 + SSE_A
    n_b = PY_WS_B + 1 + STREAM_B
    n_c = PY_WS_C + 1

    def all_joined():
        t = rt.stats(PORT)["topics"]
        return (t.get("A", {}).get("subscribers") == n_a and
                t.get("B", {}).get("subscribers") == n_b and
                t.get("C", {}).get("subscribers") == n_c)
    if not await rt.wait_for(all_joined, 30, "all subscribers joined"):
        log(json.dumps(rt.stats(PORT).get("topics")))
        return
    st = rt.stats(PORT)
    if DEFLATE:
        check("stats: every WebSocket subscriber of A negotiated permessage-deflate",
              st["topics"]["A"]["websocket_deflate"] == PY_WS_A + 2,
              "(%s)" % st["topics"]["A"]["websocket_deflate"])
    check("stats: subscribers total %d" % (n_a + n_b + n_c),
          st["subscribers"] == n_a + n_b + n_c, "(%s)" % st["subscribers"])
    check("stats: per-topic kinds (A: %d ws + %d sse)" % (PY_WS_A + 2, SSE_A),
          st["topics"]["A"]["websocket"] == PY_WS_A + 2 and st["topics"]["A"]["sse"] == SSE_A)

    # Publishers: A text, kept alive, in pipelined bursts of up to 8;
    # B binary; C four publishers at once.
    async def pub_a():
        p = rt.Publisher(PORT)
        await p.open()
        codes = []
        for s in range(0, N_TEXT, 8):
            codes += await p.post_many("A", EXP_A[s:s + 8], "text/plain; charset=utf-8")
        await p.close()
        return codes

    async def pub_b():
        p = rt.Publisher(PORT)
        await p.open()
        codes = []
        for s in range(0, N_BIN, 3):
            codes += await p.post_many("B", EXP_B[s:s + 3], "application/octet-stream")
        await p.close()
        return codes

    async def pub_c(pid):
        p = rt.Publisher(PORT)
        await p.open()
        codes = []
        for s in range(1, N_PER_PUB + 1, 5):
            codes += await p.post_many("C", [c_msg(pid, i) for i in range(s, min(s + 5, N_PER_PUB + 1))],
                                       "text/plain")
        await p.close()
        return codes

    results = await asyncio.gather(pub_a(), pub_b(), *[pub_c(p) for p in range(N_PUBS)])
    allcodes = [c for r in results for c in r]
    check("every POST answered 204 (%d)" % len(allcodes),
          len(allcodes) == N_TEXT + N_BIN + N_PUBS * N_PER_PUB and set(allcodes) == {204},
          "(%s)" % sorted(set(allcodes)))
    end = rt.Publisher(PORT)
    await end.open()
    for topic in "ABC":
        await end.post_many(topic, [b"END"], "text/plain")
    await end.close()

    # Collect everyone.
    got = {}
    for topic, k, t in tasks:
        try:
            got[(topic, k)] = await asyncio.wait_for(t, 60)
        except Exception as e:
            check("python ws %s#%d finished" % (topic, k), False, repr(e))
            got[(topic, k)] = []
    for k in range(PY_WS_A):
        check_text_seq("python ws A#%d" % k, got[("A", k)], EXP_A)
    for k in range(PY_WS_B):
        g = got[("B", k)]
        check("python ws B#%d: %d binary frames, every byte in order" % (k, N_BIN),
              [b for _, b in g] == EXP_B and not any(t for t, _ in g),
              "(got %d)" % len(g))
    for k in range(PY_WS_C):
        check_c("python ws C#%d" % k, got[("C", k)])
    try:
        node_rc = await loop.run_in_executor(None, lambda: node.wait(60))
    except Exception:
        node.kill()
        node_rc = -1
    check("node ws client exits 0", node_rc == 0, "(rc %s)" % node_rc)
    exp_hash = {"A": [("t", rt.sha(m)) for m in EXP_A], "B": [("b", rt.sha(m)) for m in EXP_B]}
    for n, url in enumerate(node_urls):
        topic = url.rsplit("/", 1)[1]
        rows = [json.loads(line) for line in open(os.path.join(W, "node.%d.jsonl" % n))]
        msgs = [r for r in rows if "h" in r]
        closes = [r["close"] for r in rows if "close" in r]
        if not msgs or msgs[-1]["t"] != "t" or msgs[-1]["h"] != rt.sha(b"END"):
            check("node ws %s#%d: ended with END" % (topic, n), False)
            continue
        msgs = msgs[:-1]
        if topic == "C":
            # Node recorded hashes: check the per-publisher order via a map
            hmap = {rt.sha(c_msg(p, i)): (p, i) for p in range(N_PUBS) for i in range(1, N_PER_PUB + 1)}
            seqs = {p: [] for p in range(N_PUBS)}
            unknown = 0
            for r in msgs:
                if r["h"] in hmap and r["t"] == "t":
                    p, i = hmap[r["h"]]
                    seqs[p].append(i)
                else:
                    unknown += 1
            check("node ws C#%d: each publisher's messages in order, no gap, no duplicate" % n,
                  unknown == 0 and all(seqs[p] == list(range(1, N_PER_PUB + 1)) for p in seqs))
        else:
            check("node ws %s#%d: %d messages, type, content and order" % (topic, n, len(exp_hash[topic])),
                  [(r["t"], r["h"]) for r in msgs] == exp_hash[topic], "(got %d)" % len(msgs))
        check("node ws %s#%d: closed 1000 (echoed)" % (topic, n), closes == [1000], "(%s)" % closes)

    # curl subscribers: wait until they have everything, then stop them.
    exp_stream = b"".join(EXP_B) + b"END"
    def curl_done():
        return all(os.path.getsize(os.path.join(W, "stream%d.out" % k)) >= len(exp_stream)
                   for k in range(STREAM_B)) and \
            all(open(os.path.join(W, "sse%d.out" % k), "rb").read().endswith(b"data: END\n\n")
                for k in range(SSE_A))
    await rt.wait_for(curl_done, 30, "curl subscribers got everything")
    for _, _, p in procs:
        p.terminate()
        p.wait()
    for k in range(STREAM_B):
        data = open(os.path.join(W, "stream%d.out" % k), "rb").read()
        check("curl -N /stream/B#%d: the %d messages' bytes back to back (%d bytes)"
              % (k, N_BIN + 1, len(exp_stream)), data == exp_stream, "(got %d bytes)" % len(data))
    for k in range(SSE_A):
        ev = rt.parse_sse(open(os.path.join(W, "sse%d.out" % k), "rb").read())
        ids = [e[0] for e in ev]
        check("curl -N /sse/A#%d: %d events, ids 1..%d, data lines = message lines"
              % (k, N_TEXT + 1, N_TEXT + 1),
              ids == list(range(1, N_TEXT + 2)) and
              [e[1].encode() for e in ev] == EXP_A + [b"END"], "(got %d events)" % len(ev))

    # SSE resume: Last-Event-ID within the history gets exactly the rest.
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    last = N_TEXT - 10
    w.write(("GET /sse/A HTTP/1.1\r\nHost: x\r\nLast-Event-ID: %d\r\n\r\n" % last).encode())
    await w.drain()
    status, hdr = await rt.read_response(r)
    check("SSE with Last-Event-ID: 200 text/event-stream",
          status == 200 and hdr.get("content-type") == "text/event-stream")
    buf = b""
    try:
        while not buf.endswith(b"data: END\n\n"):
            chunk = await asyncio.wait_for(r.read(65536), 10)
            if not chunk:
                break
            buf += chunk
    except asyncio.TimeoutError:
        pass
    w.close()
    ev = rt.parse_sse(buf)
    check("SSE resume after id %d: ids %d..%d, the same messages" % (last, last + 1, N_TEXT + 1),
          [e[0] for e in ev] == list(range(last + 1, N_TEXT + 2)) and
          [e[1].encode() for e in ev] == EXP_A[last:] + [b"END"], "(ids %s)" % [e[0] for e in ev][:5])

    if DEFLATE:
        # A client publishes compressed messages (--client-publish); two
        # deflate subscribers and one without compression check them.
        msgs = [("t", "compressible %d " % i + "abc" * (i * 1000)) for i in range(20)] + \
               [("b", bytes((i * j) & 255 for j in range(5000))) for i in range(10)] + \
               [("t", "big " + "0123456789" * 100000)]  # 1 MB, compresses to ~2 KB
        async def dsub(compress):
            got = []
            async with websockets.connect("ws://%s/ws/D" % BASE, max_size=None,
                                          compression=compress) as ws:
                async for m in ws:
                    if m == "END":
                        break
                    got.append(m)
            return got
        dsubs = [asyncio.create_task(dsub("deflate")), asyncio.create_task(dsub("deflate")),
                 asyncio.create_task(dsub(None))]
        await rt.wait_for(lambda: rt.stats(PORT)["topics"].get("D", {}).get("subscribers") == 3,
                          20, "D subscribers joined")
        async with websockets.connect("ws://%s/ws/D" % BASE, max_size=None) as pub:
            for kind, m in msgs:
                await pub.send(m)
            await pub.send("END")
            await asyncio.sleep(0.2)
        want = [m for _, m in msgs]
        for k, t in enumerate(dsubs):
            try:
                got = await asyncio.wait_for(t, 30)
            except Exception as e:
                got = repr(e)
            check("deflate: client-published compressed messages (up to 1 MB) reach D#%d (%s) intact"
                  % (k, "deflate" if k < 2 else "no compression"), got == want,
                  "(got %s)" % (len(got) if isinstance(got, list) else got))

    # 300 tiny POSTs pipelined in one write (many requests in one read).
    psub_ready = loop.create_future()
    psub = asyncio.create_task(ws_sub("ws://%s/ws/P" % BASE, psub_ready))
    await rt.wait_for(lambda: rt.stats(PORT)["topics"].get("P", {}).get("subscribers") == 1,
                      10, "P subscriber joined")
    pp = rt.Publisher(PORT)
    await pp.open()
    tiny = [b"%d" % i for i in range(300)] + [b"END"]
    codes = await pp.post_many("P", tiny, "text/plain")
    await pp.close()
    pgot = await asyncio.wait_for(psub, 20)
    check("300 pipelined POSTs in one write: 300 x 204, all messages in order",
          codes == [204] * 301 and [b for _, b in pgot] == tiny[:-1], "(got %d)" % len(pgot))

    st = rt.stats(PORT)
    log("stats:", json.dumps({k: st[k] for k in ("messages", "deliveries", "message_writevv_calls",
                                                  "message_drops", "sender_cpu_ns_per_message", "engine")}))
    check("stats: no drops", st["message_drops"] == 0)
    total_msgs = N_TEXT + N_BIN + N_PUBS * N_PER_PUB + 3 + (32 if DEFLATE else 0) + 301
    check("stats: %d messages" % total_msgs, st["messages"] == total_msgs, "(%s)" % st["messages"])
    check("stats: fewer writevv calls than deliveries (coalesced, one call per topic and kind)",
          st["message_writevv_calls"] < st["deliveries"])
    check("stats: engine is named", isinstance(st["engine"], str) and st["engine"] != "unknown")
    await pipelined_answers(loop)
    await gone_subscribers()
    nsubs = PY_WS_A + PY_WS_B + PY_WS_C + len(node_urls) + SSE_A + STREAM_B
    log("summary: %d subscribers checked every message (%d text on A, %d binary on B, %d on C)"
        % (nsubs, N_TEXT, N_BIN, N_PUBS * N_PER_PUB))


asyncio.run(main())
rt.finish()
