# Publishes per second through POST /pub/ on one relay node with --redis,
# side by side for several relay binaries (e.g. before and after a change to
# the publish script), interleaved runs, medians.  Each run: a fresh
# redis-server on a private port, one node, one SSE subscriber (so every
# message comes back through Redis), N pipelined POSTs on one connection.
# Two rates: POSTs answered (204: handed to Redis) and messages delivered
# to the subscriber (through Redis and back); and Redis's time per script
# call (INFO commandstats).
# usage: /usr/bin/python3 redispub.py [-n N] [-r RUNS] NAME=RELAY[,ARGS...] ...
#   e.g. old=/tmp/old/writevv-relay new=build/.../writevv-relay
#        new-h0=build/.../writevv-relay,--history,0
import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import relaytest as rt  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


async def one_run(relay, args, n, batch, work):
    rport = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", work],
                             stdout=subprocess.DEVNULL)
    node = None
    try:
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(rport), "ping"],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        log = open(os.path.join(work, "relay.log"), "w+")
        node = subprocess.Popen([relay, "--listen", "127.0.0.1:0", "--ingest", "127.0.0.1:0",
                                 "--redis", "127.0.0.1:%d" % rport] + args,
                                stdout=log, stderr=subprocess.STDOUT)
        port = None
        for _ in range(100):
            log.seek(0)
            for line in log:
                if "viewers on http://" in line:
                    port = int(line.split("viewers on http://")[1].split("/")[0].split(":")[1])
            if port:
                break
            time.sleep(0.05)
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET /sse/P HTTP/1.1\r\nHost: x\r\n\r\n")
        await w.drain()
        await rt.read_response(r)
        while rt.stats(port)["redis"]["channels"] != 1:
            await asyncio.sleep(0.05)
        body = b"m" * 100
        p = rt.Publisher(port)
        await p.open()

        async def sub():
            got, prev = 0, b""
            while got < n:
                chunk = await r.read(1 << 20)
                if not chunk:
                    raise RuntimeError("the subscriber was closed after %d events" % got)
                # an event's end may straddle two reads (events start with
                # "id:"); the comment the relay may send first is no event
                buf = prev + chunk
                got += buf.count(b"\n\n") - buf.count(b": subscribed\n\n")
                prev = chunk[-1:]
            return time.monotonic()
        t_sub = asyncio.create_task(sub())
        t0 = time.monotonic()
        codes = []
        for s in range(0, n, batch):
            codes += await p.post_many("P", [body] * min(batch, n - s), "text/plain")
        t_post = time.monotonic()
        t_end = await asyncio.wait_for(t_sub, 60)
        assert codes == [204] * n, "not all 204"
        await p.close()
        w.close()
        # Redis's own time per script call (EVAL or EVALSHA, whichever ran)
        info = subprocess.run(["redis-cli", "-p", str(rport), "INFO", "commandstats"],
                              capture_output=True, text=True).stdout
        usec = 0.0
        for line in info.splitlines():
            if line.startswith(("cmdstat_eval:", "cmdstat_evalsha:")):
                f = dict(kv.split("=") for kv in line.split(":", 1)[1].split(","))
                if int(f["calls"]) >= n:
                    usec = float(f["usec_per_call"])
        return n / (t_post - t0), n / (t_end - t0), usec
    finally:
        if node:
            node.terminate()
            node.wait()
        redis.kill()
        redis.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=40000)
    ap.add_argument("-r", "--runs", type=int, default=5)
    ap.add_argument("-b", "--batch", type=int, default=1000)
    ap.add_argument("relays", nargs="+")
    a = ap.parse_args()
    confs = []
    for spec in a.relays:
        name, _, rest = spec.partition("=")
        parts = rest.split(",")
        confs.append((name, parts[0], parts[1:]))
    res = {c[0]: [] for c in confs}
    with tempfile.TemporaryDirectory() as work:
        for run in range(a.runs):
            for name, relay, args in confs:
                res[name].append(asyncio.run(one_run(relay, args, a.n, a.batch, work)))
                print("run %d %-10s posts/s %8.0f  delivered/s %8.0f  redis us/call %5.2f"
                      % ((run + 1, name) + res[name][-1]), flush=True)
    print("medians of %d runs, %d messages of 100 B each, pipelined by %d:" % (a.runs, a.n, a.batch))
    for name, _, _ in confs:
        print("  %-10s posts/s %8.0f  delivered/s %8.0f  redis us/call %5.2f" % (
            (name,) + tuple(statistics.median(x[i] for x in res[name]) for i in range(3))))


main()
