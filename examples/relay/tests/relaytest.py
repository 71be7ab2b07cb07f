# Shared helpers of the writevv-relay topic tests (run with /usr/bin/python3).
import asyncio
import hashlib
import json
import sys
import urllib.request

CHECKS = 0
FAILS = 0


def log(*a):
    print("[%s]" % NAME, *a, flush=True)


NAME = "relay"


def check(desc, cond, detail=""):
    global CHECKS, FAILS
    CHECKS += 1
    if cond:
        log("ok:", desc)
    else:
        FAILS += 1
        log("FAIL:", desc, detail)
    return cond


def finish():
    log("%d checks, %d failed" % (CHECKS, FAILS))
    sys.exit(1 if FAILS else 0)


def text_msg(i, tag="A"):
    """The i-th text message of a topic: several lines, some non-ASCII."""
    lines = ["%s-msg %d" % (tag, i)]
    for k in range(i % 4):
        lines.append("line %d.%d %s" % (i, k, "\u00e9\u20ac\U0001f600"[: (i + k) % 4]))
    if i % 7 == 3:
        lines.append("")  # an empty line inside the message
        lines.append("after empty")
    return "\n".join(lines).encode()


BIN_SIZES = [1, 100, 1000, 20000, 70000, 3]


def bin_msg(i):
    n = BIN_SIZES[i % len(BIN_SIZES)]
    return bytes(((i * 131 + j * 7) & 255) for j in range(n))


def sha(b):
    return hashlib.sha256(b).hexdigest()


def stats(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/stats" % port, timeout=5) as r:
        return json.loads(r.read())


async def wait_for(pred, timeout, what):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        try:
            v = await loop.run_in_executor(None, pred)
        except Exception:
            v = False
        if v:
            return True
        if loop.time() > end:
            check(what, False, "(timed out after %ss)" % timeout)
            return False
        await asyncio.sleep(0.1)


async def read_response(reader):
    """Status code and headers (lower-case names) of one HTTP response head."""
    line = await reader.readline()
    parts = line.decode("latin-1").split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers


class Publisher:
    """POST /pub/TOPIC on one kept-alive connection, optionally pipelined."""

    def __init__(self, port):
        self.port = port

    async def open(self):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)

    def request(self, topic, body, ctype):
        return (("POST /pub/%s HTTP/1.1\r\nHost: relay\r\nContent-Type: %s\r\n"
                 "Content-Length: %d\r\n\r\n") % (topic, ctype, len(body))).encode() + body

    async def post_many(self, topic, bodies, ctype):
        """Pipelined: all requests written, then every 204 read."""
        self.w.write(b"".join(self.request(topic, b, ctype) for b in bodies))
        await self.w.drain()
        codes = []
        for _ in bodies:
            st, h = await read_response(self.r)
            codes.append(st)
            if "content-length" in h and int(h["content-length"]):
                await self.r.readexactly(int(h["content-length"]))
        return codes

    async def close(self):
        self.w.close()
        try:
            await self.w.wait_closed()
        except Exception:
            pass


def parse_sse(data):
    """[(id, text)] of an event stream."""
    events = []
    for block in data.decode("utf-8").split("\n\n"):
        if not block.strip():
            continue
        eid, lines = None, []
        for line in block.split("\n"):
            if line.startswith("id: "):
                eid = int(line[4:])
            elif line.startswith("data: "):
                lines.append(line[6:])
            elif line == "data:":
                lines.append("")
        if lines:  # (a block of comments only, e.g. the relay's first, is no event)
            events.append((eid, "\n".join(lines)))
    return events
