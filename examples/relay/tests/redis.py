# Two relay nodes on one Redis (started by redis.sh on a private port):
# subscribers on both nodes (Python websockets, Node ws, curl -N SSE), one
# publisher per node.  Phase 1: every subscriber gets every message of both
# publishers, each publisher's in order, once.  Phase 2: Redis is killed;
# both nodes say so; node 1's publisher still reaches node 1's subscribers
# (and, Redis pub/sub keeping nothing, not node 2's).  Phase 3: Redis is
# back on the same port; the nodes reconnect and resubscribe; everything
# flows both ways again.
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


async def publish(port, pub, phase):
    p = rt.Publisher(port)
    await p.open()
    codes = []
    for s in range(1, K + 1, 10):
        codes += await p.post_many("R", [msg(pub, phase, i) for i in range(s, min(s + 10, K + 1))],
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
    return e


def check_sub(who, node, texts):
    seqs = {1: [], 2: []}
    bad = 0
    for t in texts:
        parts = t.split(" ")
        pub, phase, i = int(parts[0][1:]), int(parts[1]), int(parts[2])
        if t.encode() != msg(pub, phase, i):
            bad += 1
        seqs[pub].append((phase, i))
    exp = expected(node)
    check("%s (node %d): each publisher's messages in order, exactly once, content ok "
          "(%d + %d)" % (who, node, len(exp[1]), len(exp[2])),
          bad == 0 and seqs == exp,
          "(bad %d, got %d + %d)" % (bad, len(seqs[1]), len(seqs[2])))


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
            for pub in (1, 2) for ph in (1, 2, 3) for i in range(1, K + 1)}
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
    for n, p in sses:
        p.terminate()
        p.wait()
        ev = rt.parse_sse(open(os.path.join(W, "sse%d.out" % n), "rb").read())
        check("SSE ids on node %d: 1..%d, no gap" % (n, len(ev)),
              [e[0] for e in ev] == list(range(1, len(ev) + 1)))
        check_sub("curl -N SSE", n, [e[1] for e in ev[:-1]])
    for port in (P1, P2):
        st = redis_stat(port)
        log("node :%d redis stats: %s" % (port, json.dumps(st)))
    check("node 1 skipped its own messages coming back from Redis",
          redis_stat(P1)["skipped_own"] >= 2 * K)
    log("summary: 7 subscribers on 2 nodes checked %d messages of 2 publishers over 3 phases"
        % (5 * K))


asyncio.run(main())
rt.finish()
