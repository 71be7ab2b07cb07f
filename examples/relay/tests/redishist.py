# Two relay nodes A and B on one Redis (started by redishist.sh on a private
# port, both with --history 300).
# Phase 1: topic H is published on A while no client of B uses it (B has no
# topic H at all); then, while both nodes publish more on H, five SSE clients
# arrive at B one after the other, each with a Last-Event-ID from the middle
# of what A's SSE subscriber got: each gets exactly the rest (history fetched
# from Redis, then live), in order, no duplicate, same ids as on A.
# Phase 2: a Last-Event-ID older than the history: B (fetching from Redis)
# replays from the oldest kept message, exactly as A does from its own
# history: the same 300 events on both.
# Phase 3: SCRIPT FLUSH while idle (the next publish gets NOSCRIPT and goes
# on), then SCRIPT FLUSH several times while both nodes publish: every
# subscriber on both nodes gets each publisher's messages once, in order.
# Phase 4: Redis restarted (scripts and history gone): publishing goes on,
# and a client that resumes on B gets exactly what was published since.
# usage: redishist.py PORT_A PORT_B REDIS_PORT WORKDIR REDIS_CTL
import asyncio
import subprocess
import sys

import relaytest as rt
from relaytest import check, log

rt.NAME = "redishist"
PA, PB, RPORT = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
W, REDIS_CTL = sys.argv[4], sys.argv[5]
HISTORY = 300
END = b"END"


def redis_cli(*args):
    return subprocess.run(["redis-cli", "-p", str(RPORT)] + list(args), check=True,
                          capture_output=True, text=True).stdout.strip()


def rstat(port):
    return rt.stats(port)["redis"]


class Sse:
    """GET /sse/TOPIC (Last-Event-ID if given), its events until END."""

    def __init__(self, port, topic, last_id=None):
        self.port, self.topic, self.last_id = port, topic, last_id
        self.buf = b""
        self.status = 0

    async def open(self):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)
        self.w.write(("GET /sse/%s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (
            self.topic, "" if self.last_id is None else "Last-Event-ID: %d\r\n" % self.last_id))
            .encode())
        await self.w.drain()
        self.status, _ = await rt.read_response(self.r)

    def events(self):
        return rt.parse_sse(self.buf[:self.buf.rfind(b"\n\n") + 2]) if b"\n\n" in self.buf else []

    async def read_until(self, pred, timeout=30):
        try:
            while not pred(self.events()):
                chunk = await asyncio.wait_for(self.r.read(65536), timeout)
                if not chunk:
                    break
                self.buf += chunk
        except asyncio.TimeoutError:
            pass
        return self.events()

    async def until_end(self, timeout=30):
        ev = await self.read_until(lambda ev: any(e[1] == END.decode() for e in ev), timeout)
        self.w.close()
        return ev


def has_end(ev):
    return any(e[1] == END.decode() for e in ev)


async def post(port, topic, bodies, ctype="text/plain", batch=10, pause=0):
    p = rt.Publisher(port)
    await p.open()
    codes = []
    for s in range(0, len(bodies), batch):
        codes += await p.post_many(topic, bodies[s:s + batch], ctype)
        if pause:
            await asyncio.sleep(pause)
    await p.close()
    return codes


def nsubs(port, topic):
    return rt.stats(port)["topics"].get(topic, {}).get("subscribers", 0)


async def open_sse(port, topic, last_id=None):
    """An Sse, once the node counts it (it does from the answer's head on; a
    closed SSE client leaves the count at once, so a count taken before could
    be off by one just left) and is connected to Redis."""
    c = Sse(port, topic, last_id)
    await c.open()
    await rt.wait_for(lambda: nsubs(port, topic) >= 1 and rstat(port)["connected"], 30,
                      "the SSE client of %s on :%d" % (topic, port))
    return c


def all_subscribed(port):
    """Redis confirmed a SUBSCRIBE for each of the node's topics in use."""
    return rstat(port)["channels"] == sum(1 for v in rt.stats(port)["topics"].values()
                                          if v["subscribers"])


def same_tail(who, got, ref, last_id, want_n=None):
    """got must be ref's events after last_id, up to END, exactly."""
    want = [e for e in ref if e[0] > last_id]
    if want_n is not None:
        want = want[:want_n]
    return check("%s: exactly the %d events after id %d, in order, no duplicate, same ids"
                 % (who, len(want), last_id), got == want and len(want) > 0,
                 "(got %d, first %s, want first %s; dup ids %d)" % (
                     len(got), got[:1], want[:1], len(got) - len({e[0] for e in got})))


async def phase1():
    log("phase 1: topic H published on A alone, resumed on B from Redis's history")
    ref = await open_sse(PA, "H")
    text = [rt.text_msg(i, "H") for i in range(1, 41)]
    # binary ones in between: ids count them, the history keeps only text
    for i in range(0, 40, 8):
        c = await post(PA, "H", text[i:i + 8])
        c += await post(PA, "H", [rt.bin_msg(i)], "application/octet-stream")
        check("H: POSTs on A answered 204 (%d..%d)" % (i + 1, i + 8), c == [204] * 9)
    check("B has no topic H (no client of B used it)", "H" not in rt.stats(PB)["topics"])
    ev = await ref.read_until(lambda ev: len(ev) >= 40)
    check("A's SSE subscriber got the 40 text messages", [e[1].encode() for e in ev] == text)
    ids = [e[0] for e in ev]
    # Live traffic on H from both nodes while the resuming clients arrive at
    # B: the seam between fetched and live messages is crossed while
    # messages flow (all within the history: 40 + 200 + 1 < 300).
    more_a = [("a%d " % i).encode() + b"x" * (i % 50) for i in range(100)]
    more_b = [("b%d " % i).encode() + b"y" * (i % 70) for i in range(100)]
    pubs = asyncio.gather(post(PA, "H", more_a, batch=5, pause=0.03),
                          post(PB, "H", more_b, batch=5, pause=0.03))
    clients = []
    for k, n in enumerate((12, 3, 20, 30, 36)):
        c = Sse(PB, "H", ids[n - 1])
        await c.open()
        clients.append((ids[n - 1], c))
        await asyncio.sleep(0.05 * k)
    codes = await pubs
    check("H: the 200 concurrent POSTs answered 204", codes == [[204] * 100] * 2)
    check("H: END posted", await post(PA, "H", [END]) == [204])
    full = await ref.until_end()
    for k, (last, c) in enumerate(clients):
        got = await c.until_end()
        same_tail("B's resuming client %d (Last-Event-ID %d)" % (k + 1, last), got, full, last)
        check("B's resuming client %d: 200" % (k + 1), c.status == 200)
    a = [e[1] for e in full if e[1][0] == "a"]
    b = [e[1] for e in full if e[1][0] == "b"]
    check("A's subscriber: each live publisher in order, once (100 + 100)",
          a == [m.decode() for m in more_a] and b == [m.decode() for m in more_b])
    st = rstat(PB)
    log("node B redis stats: %s" % st)
    check("B fetched history from Redis for its resumes (%d fetches, %d messages)"
          % (st["history_fetches"], st["history_fetched"]),
          st["history_fetches"] >= 1 and st["history_fetched"] >= 28)
    return full[-1][0]


async def phase2():
    log("phase 2: a Last-Event-ID older than the history (%d)" % HISTORY)
    ref = await open_sse(PA, "O")
    n = HISTORY + 50
    bodies = [("o%d" % i).encode() for i in range(1, n + 1)]
    check("O: %d POSTs on A answered 204" % n, await post(PA, "O", bodies, batch=50) == [204] * n)
    check("O: END posted", await post(PA, "O", [END]) == [204])
    # ref stays: A keeps its subscription and serves its resume itself
    full = await ref.read_until(has_end)
    check("A's subscriber of O got all %d" % (n + 1), len(full) == n + 1)
    xlen = int(redis_cli("XLEN", "writevv:hist:O"))
    check("Redis keeps at least the last %d text messages of O (MAXLEN ~: %d)" % (HISTORY, xlen),
          HISTORY <= xlen <= n + 1)
    # full[i] has id i+1; the oldest kept is the (n + 1 - HISTORY + 1)-th
    on_a, on_b = Sse(PA, "O", 5), Sse(PB, "O", 5)
    await on_a.open()
    await on_b.open()
    ga = await on_a.read_until(lambda ev: has_end(ev))
    gb = await on_b.read_until(lambda ev: has_end(ev))
    for c in (on_a, on_b, ref):
        c.w.close()
    want = full[-HISTORY:]
    check("A replays its own history from its oldest kept message (%d events from id %s)"
          % (len(ga), ga[0][0] if ga else None), ga == want)
    check("B replays Redis's history the same way (%d events from id %s)"
          % (len(gb), gb[0][0] if gb else None), gb == want)


async def phase3():
    log("phase 3: SCRIPT FLUSH")
    subs = [await open_sse(PA, "F"), await open_sse(PB, "F")]
    before = rstat(PA)["noscript"]
    check("SCRIPT FLUSH (idle)", redis_cli("SCRIPT", "FLUSH") == "OK")
    first = [("pA %d" % i).encode() for i in range(1, 11)]
    check("F: 10 POSTs on A after the flush answered 204", await post(PA, "F", first) == [204] * 10)
    await rt.wait_for(lambda: rstat(PA)["noscript"] > before, 10,
                      "A got NOSCRIPT for the publish after the flush")
    n = 600
    pa = [("pA %d" % i).encode() for i in range(11, n + 1)]
    pb = [("pB %d" % i).encode() for i in range(1, n + 1)]

    async def flusher():
        for _ in range(6):
            await asyncio.sleep(0.05)
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: redis_cli("SCRIPT", "FLUSH"))
    res = await asyncio.gather(post(PA, "F", pa, batch=5), post(PB, "F", pb, batch=5), flusher())
    check("F: every POST during the flushes answered 204", res[0] == [204] * len(pa) and
          res[1] == [204] * len(pb))
    check("F: END posted", await post(PA, "F", [END]) == [204])
    orders = []
    for k, s in enumerate(subs):
        ev = await s.until_end()
        ta = [e[1] for e in ev if e[1].startswith("pA ")]
        tb = [e[1] for e in ev if e[1].startswith("pB ")]
        ids = [e[0] for e in ev]
        check("F subscriber on %s: A's %d and B's %d messages once each, in order"
              % ("AB"[k], n, n),
              ta == ["pA %d" % i for i in range(1, n + 1)] and
              tb == ["pB %d" % i for i in range(1, n + 1)],
              "(got %d + %d)" % (len(ta), len(tb)))
        check("F subscriber on %s: ids increasing" % "AB"[k], ids == sorted(set(ids)))
        orders.append(ev)
    check("both nodes' subscribers saw the same order, same ids", orders[0] == orders[1])
    sa, sb = rstat(PA), rstat(PB)
    log("NOSCRIPT replies: A %d, B %d" % (sa["noscript"], sb["noscript"]))
    check("no publish script error besides NOSCRIPT", sa["errors"] == 0 and sb["errors"] == 0,
          "(A %d, B %d)" % (sa["errors"], sb["errors"]))


async def phase4(last_h):
    log("phase 4: Redis restarted")
    ref = await open_sse(PA, "H", last_h)
    subprocess.run(["bash", REDIS_CTL, "stop"], check=True)
    await rt.wait_for(lambda: not rstat(PA)["connected"] and not rstat(PB)["connected"], 20,
                      "both nodes noticed Redis is gone")
    subprocess.run(["bash", REDIS_CTL, "start"], check=True)
    await rt.wait_for(lambda: rstat(PA)["connected"] and all_subscribed(PA) and
                      rstat(PB)["connected"], 30, "both nodes reconnected, A resubscribed")
    bodies = [("r%d" % i).encode() for i in range(1, 21)]
    check("H: 20 POSTs on A after the restart answered 204",
          await post(PA, "H", bodies) == [204] * 20)
    check("H: END posted", await post(PA, "H", [END]) == [204])
    full = await ref.until_end()
    check("A's subscriber got the 20 (ids above the ones before the restart: %s)"
          % [e[0] for e in full[:1]], [e[1] for e in full] == [b.decode() for b in bodies] +
          ["END"] and all(e[0] > last_h for e in full))
    back = Sse(PB, "H", last_h)
    await back.open()
    got = await back.until_end()
    same_tail("B after the restart (Last-Event-ID %d)" % last_h, got, full, last_h)


async def main():
    last_h = await phase1()
    await phase2()
    await phase3()
    await phase4(last_h)


asyncio.run(main())
rt.finish()
