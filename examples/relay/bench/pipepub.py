# Publishes per second through pipelined POST /pub/ on one keep-alive
# connection, side by side for several relay binaries, interleaved runs,
# medians.  Each run: a fresh relay (no Redis), one SSE subscriber on the
# topic, then batches of B pipelined POSTs written at once, each batch's B
# answers read before the next batch (what a publisher that waits for its
# answers does).  Also the mean number of reads the client needed per batch
# (how many pieces the answers came in).
# usage: /usr/bin/python3 pipepub.py [-b B,...] [-s SECONDS] [-r RUNS] NAME=RELAY ...
import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time

ANSWER_END = b"\r\n\r\n"


def start(relay, work):
    log = open(os.path.join(work, "relay.log"), "w+")
    node = subprocess.Popen([relay, "--listen", "127.0.0.1:0", "--ingest", "127.0.0.1:0"],
                            stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        log.seek(0)
        for line in log:
            if "viewers on http://" in line:
                return node, int(line.split("viewers on http://")[1].split("/")[0].split(":")[1])
        time.sleep(0.02)
    node.kill()
    raise RuntimeError("the relay did not start")


def one_run(relay, batch, seconds, work):
    node, port = start(relay, work)
    try:
        sub = socket.create_connection(("127.0.0.1", port))
        sub.sendall(b"GET /sse/P HTTP/1.1\r\nHost: x\r\n\r\n")
        sub.recv(4096)
        pub = socket.create_connection(("127.0.0.1", port))
        req = (b"POST /pub/P HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
               b"Content-Length: 100\r\n\r\n" + b"m" * 100)
        msg = req * batch
        done = reads = batches = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            pub.sendall(msg)
            got, buf = 0, b""
            while got < batch:
                chunk = pub.recv(1 << 16)
                if not chunk:
                    raise RuntimeError("the relay closed the publishing connection")
                reads += 1
                buf += chunk
                got = buf.count(ANSWER_END)
            if b"204" not in buf or buf.count(b"HTTP/1.1 204") != batch:
                raise RuntimeError("unexpected answers: %r" % buf[:200])
            done += batch
            batches += 1
            # the subscriber's events are drained so that it never backs up
            sub.setblocking(False)
            try:
                while sub.recv(1 << 20):
                    pass
            except BlockingIOError:
                pass
            sub.setblocking(True)
        el = time.monotonic() - t0
        pub.close()
        sub.close()
        return done / el, reads / batches
    finally:
        node.terminate()
        node.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-b", "--batches", default="1,10,100")
    ap.add_argument("-s", "--seconds", type=float, default=2.0)
    ap.add_argument("-r", "--runs", type=int, default=5)
    ap.add_argument("relays", nargs="+", help="NAME=RELAY")
    a = ap.parse_args()
    relays = [r.split("=", 1) for r in a.relays]
    with tempfile.TemporaryDirectory() as work:
        for b in [int(x) for x in a.batches.split(",")]:
            res = {name: [] for name, _ in relays}
            for _ in range(a.runs):
                for name, path in relays:
                    res[name].append(one_run(path, b, a.seconds, work))
            for name, _ in relays:
                rate = statistics.median(x[0] for x in res[name])
                rd = statistics.median(x[1] for x in res[name])
                print("batch %4d  %-8s %10.0f publishes/s  %5.1f reads/batch  (runs: %s)" %
                      (b, name, rate, rd, " ".join("%.0f" % x[0] for x in res[name])),
                      flush=True)


if __name__ == "__main__":
    main()
