# Two relay nodes on one Redis (started by redis.sh on a private port):
# subscribers on both nodes (Python websockets, Node ws, curl -N SSE), one
# publisher per node.  Phase 1: every subscriber gets every message of both
# publishers, each publisher's in order, once.  Phase 2: Redis is killed;
# both nodes say so; node 1's publisher still reaches node 1's subscribers
# (and, Redis pub/sub keeping nothing, not node 2's).  Phase 3: Redis is
# back on the same port; the nodes reconnect and resubscribe; everything
# flows both ways again.  Phase 4: an SSE client of node 1 leaves after
# some messages, both nodes publish more, and it comes back to node 2 with
# node 1's Last-Event-ID: it gets exactly the messages it missed.
# Every message has the same SSE id on both nodes, and every subscriber on
# both nodes sees the messages both nodes got in the same order (the two
# publishers run concurrently: the order is Redis's).
# usage: redis.py PORT1 PORT2 WORKDIR WSRECORD_JS REDIS_CTL
import asyncio
import json
import os
import subprocess
import sys

import websockets

import relaytest as rt
from relaytest import check, log

rt.NAME = "redis"
P1, P2 = int(sys.argv[1]), int(sys.argv[2])
W, WSRECORD, REDIS_CTL = sys.argv[3], sys.argv[4], sys.argv[5]
K = int(os.environ.get("RELAY_TEST_MESSAGES", "150"))
# Phase 4: node 1 publishes 1..K4A alone, then both publish K4A+1..K4
# while the resuming client is away (fewer than --history, 64).
K4A, K4 = 10, 30


def msg(pub, phase, i):
    return ("p%d %d %d %s" % (pub, phase, i, "z" * ((pub * 13 + phase * 7 + i) % 300))).encode()


async def ws_sub(port):
    got = []
    async with websockets.connect("ws://127.0.0.1:%d/ws/R" % port, max_size=None) as ws:
        async for m in ws:
            if m == "END":
                break
            got.append(m)
    return got


def redis_stat(port):
    return rt.stats(port)["redis"]


async def publish(port, pub, phase, first=1, last=K):
    p = rt.Publisher(port)
    await p.open()
    codes = []
    for s in range(first, last + 1, 10):
        codes += await p.post_many("R", [msg(pub, phase, i) for i in range(s, min(s + 10, last + 1))],
                                   "text/plain")
    await p.close()
    return codes


def expected(node):
    """Per publisher: the (phase, i) a subscriber of this node must get, in order."""
    e = {1: [(1, i) for i in range(1, K + 1)], 2: [(1, i) for i in range(1, K + 1)]}
    if node == 1:
        e[1] += [(2, i) for i in range(1, K + 1)]
    for pub in (1, 2):
        e[pub] += [(3, i) for i in range(1, K + 1)]
    e[1] += [(4, i) for i in range(1, K4 + 1)]
    e[2] += [(4, i) for i in range(K4A + 1, K4 + 1)]
    return e


# Every subscriber's messages of the phases both nodes got, in its order.
orders = {}


def note_order(who, texts):
    orders[who] = [t for t in texts if t.split(" ")[1] != "2"]


async def sse_client(port, last_id, until):
    """GET /sse/R (with Last-Event-ID if given); the events until until(events) holds."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(("GET /sse/R HTTP/1.1\r\nHost: x\r\n%s\r\n"
             % ("Last-Event-ID: %d\r\n" % last_id if last_id is not None else "")).encode())
    await w.drain()
    status, hdr = await rt.read_response(r)
    buf = b""
    ev = []
    try:
        while not until(ev):
            chunk = await asyncio.wait_for(r.read(65536), 30)
            if not chunk:
                break
            buf += chunk
            ev = rt.parse_sse(buf[:buf.rfind(b"\n\n") + 2]) if b"\n\n" in buf else []
    except asyncio.TimeoutError:
        pass
    w.close()
    return status, ev


def check_sub(who, node, texts):
    seqs = {1: [], 2: []}
    bad = 0
    for t in texts:
        parts = t.split(" ")
        pub, phase, i = int(parts[0][1:]), int(parts[1]), int(parts[2])
        if t.encode() != msg(pub, phase, i):
            bad += 1
        seqs[pub].append((phase, i))
    note_order("%s (node %d)" % (who, node), texts)
    exp = expected(node)
    check("%s (node %d): each publisher's messages in order, exactly once, content ok "
          "(%d + %d)" % (who, node, len(exp[1]), len(exp[2])),
          bad == 0 and seqs == exp,
          "(bad %d, got %d + %d)" % (bad, len(seqs[1]), len(seqs[2])))


async def back_from_redis(n, phase):
    """A 204 says handed to Redis, not back from it: the next phase starts
    once both nodes have had the n messages so far from Redis (else Redis
    may be stopped with some still on the way, or order a node's last ones
    after the next phase's first)."""
    for port in (P1, P2):
        await rt.wait_for(lambda: redis_stat(port)["received"] >= n, 30,
                          "node :%d got phase %d back from Redis" % (port, phase))


async def main():
    loop = asyncio.get_running_loop()
    ctl = lambda cmd: subprocess.run(["bash", REDIS_CTL, cmd], check=True)
    subs = [(n, asyncio.create_task(ws_sub(port))) for n, port in ((1, P1), (1, P1), (2, P2), (2, P2))]
    env = dict(os.environ, NODE_PATH="/usr/share/nodejs:" + os.environ.get("NODE_PATH", ""))
    node = subprocess.Popen(["node", WSRECORD, os.path.join(W, "node"),
                             "ws://127.0.0.1:%d/ws/R" % P1, "ws://127.0.0.1:%d/ws/R" % P2], env=env)
    sses = []
    for n, port in ((1, P1), (2, P2)):
        f = open(os.path.join(W, "sse%d.out" % n), "wb")
        sses.append((n, subprocess.Popen(["curl", "-sS", "-N", "--max-time", "150",
                                          "http://127.0.0.1:%d/sse/R" % port], stdout=f)))
    for port in (P1, P2):
        await rt.wait_for(lambda: rt.stats(port)["topics"].get("R", {}).get("subscribers") == 4
                          and redis_stat(port)["channels"] == 1, 30,
                          "4 subscribers on node :%d, subscribed on Redis" % port)

    log("phase 1: both nodes publish")
    c = await asyncio.gather(publish(P1, 1, 1), publish(P2, 2, 1))
    check("phase 1: every POST 204", all(x == [204] * K for x in c))
    await back_from_redis(2 * K, 1)

    log("phase 2: Redis stopped")
    ctl("stop")
    for port in (P1, P2):
        await rt.wait_for(lambda: not redis_stat(port)["connected"], 20,
                          "node :%d noticed Redis is gone" % port)
    c = await publish(P1, 1, 2)
    check("phase 2: node 1 still answers its publisher 204", c == [204] * K)
    check("phase 2: node 1 counted them local-only", redis_stat(P1)["local_only"] >= K)

    log("phase 3: Redis restarted")
    ctl("start")
    for port in (P1, P2):
        await rt.wait_for(lambda: redis_stat(port)["connected"] and redis_stat(port)["channels"] == 1,
                          30, "node :%d reconnected and resubscribed" % port)
    c = await asyncio.gather(publish(P1, 1, 3), publish(P2, 2, 3))
    check("phase 3: every POST 204", all(x == [204] * K for x in c))
    await back_from_redis(4 * K, 3)

    log("phase 4: an SSE client leaves node 1 and resumes on node 2")
    last4a = msg(1, 4, K4A).decode()
    away = asyncio.create_task(sse_client(P1, None, lambda ev: any(e[1] == last4a for e in ev)))
    await rt.wait_for(lambda: rt.stats(P1)["topics"]["R"]["subscribers"] == 5, 30,
                      "the SSE client on node 1")
    c = await publish(P1, 1, 4, 1, K4A)
    st, ev_away = await away
    check("phase 4: node 1's SSE client got message %d" % K4A,
          st == 200 and ev_away and ev_away[-1][1] == last4a)
    last_id = ev_away[-1][0] if ev_away else 0
    c += sum(await asyncio.gather(publish(P1, 1, 4, K4A + 1, K4), publish(P2, 2, 4, K4A + 1, K4)),
             [])
    check("phase 4: every POST 204", c == [204] * (K4 + K4 - K4A))
    missed = 2 * (K4 - K4A)
    await rt.wait_for(lambda: len([e for e in rt.parse_sse(open(os.path.join(W, "sse2.out"), "rb").read())
                                   if e[0] > last_id]) >= missed, 30,
                      "node 2's SSE subscriber got phase 4")
    st, ev_back = await sse_client(P2, last_id, lambda ev: len(ev) >= missed)
    endp = rt.Publisher(P1)
    await endp.open()
    await endp.post_many("R", [b"END"], "text/plain")
    await endp.close()

    for k, (n, t) in enumerate(subs):
        try:
            got = await asyncio.wait_for(t, 60)
        except Exception as e:
            check("python ws %d finished" % k, False, repr(e))
            continue
        check_sub("python ws %d" % k, n, got)
    try:
        rc = await loop.run_in_executor(None, lambda: node.wait(60))
    except Exception:
        node.kill()
        rc = -1
    check("node ws exits 0", rc == 0)
    hmap = {rt.sha(msg(pub, ph, i)): msg(pub, ph, i).decode()
            for pub in (1, 2) for ph in (1, 2, 3, 4) for i in range(1, K + 1)}
    for n in range(2):
        rows = [json.loads(line) for line in open(os.path.join(W, "node.%d.jsonl" % n))]
        hs = [r["h"] for r in rows if "h" in r]
        ok_end = hs and hs[-1] == rt.sha(b"END")
        texts = [hmap.get(h, "p9 9 9") for h in hs[:-1]]
        check("node ws on node %d ended with END" % (n + 1), bool(ok_end))
        check_sub("node ws", n + 1, texts)

    def sse_done():
        return all(open(os.path.join(W, "sse%d.out" % n), "rb").read().endswith(b"data: END\n\n")
                   for n in (1, 2))
    await rt.wait_for(sse_done, 30, "SSE subscribers got END")
    evs = {}
    for n, p in sses:
        p.terminate()
        p.wait()
        ev = evs[n] = rt.parse_sse(open(os.path.join(W, "sse%d.out" % n), "rb").read())
        ids = [e[0] for e in ev]
        if n == 1:  # it got everything, phase 2's local-only messages included
            check("SSE ids on node 1: 1..%d, no gap" % len(ev), ids == list(range(1, len(ev) + 1)))
        else:
            check("SSE ids on node 2: increasing", ids == sorted(set(ids)))
        check_sub("curl -N SSE", n, [e[1] for e in ev[:-1]])
    id1 = {e[1]: e[0] for e in evs[1]}
    both = [e for e in evs[2] if e[1] in id1]
    check("every message both nodes got has the same SSE id on both (%d messages)" % len(both),
          len(both) == len(evs[2]) and all(id1[e[1]] == e[0] for e in both),
          "(first differences: %s)" % [(e[0], id1.get(e[1]), e[1][:12]) for e in evs[2]
                                         if id1.get(e[1]) != e[0]][:3])
    want_back = [e for e in evs[1] if e[0] > last_id][:missed]
    check("SSE client back on node 2 with node 1's Last-Event-ID %d: exactly the %d missed "
          "messages, same ids, in order" % (last_id, missed),
          st == 200 and ev_back == want_back and len(want_back) == missed and
          all(e[1].split(" ")[1] == "4" for e in want_back),
          "(got %d: %s...; want %s...)" % (len(ev_back), ev_back[:2], want_back[:2]))
    ref = orders.get("python ws 0 (node 1)")
    check("all %d subscribers on both nodes saw the same order (%d messages each, two "
          "concurrent publishers)" % (len(orders), len(ref or [])),
          ref is not None and all(o == ref for o in orders.values()),
          "(differ: %s)" % [w for w, o in orders.items() if o != ref])
    for port in (P1, P2):
        st = redis_stat(port)
        log("node :%d redis stats: %s" % (port, json.dumps(st)))
    check("node 1 delivered its own messages as Redis brought them back",
          redis_stat(P1)["own"] >= 2 * K + K4)
    log("summary: 7 subscribers on 2 nodes checked %d messages of 2 publishers over 4 phases"
        % (5 * K + 2 * K4 - K4A))


asyncio.run(main())
rt.finish()
