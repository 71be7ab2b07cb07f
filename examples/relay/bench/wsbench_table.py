#!/usr/bin/python3
"""wsbench.sh's table: medians over the repetitions of every run's JSON
(OUT/rREP-SUBS-SERVER.json, written by writevv-relay-loadgen ws)."""
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]
csv = open(sys.argv[2], "w") if len(sys.argv) > 2 else None  # every phase of every run
if csv:
    csv.write("rep,subscribers,server,kind,size,rate,published,pub_rate,expected,delivered_in_time,"
              "gaps,dups,verify_fail,p50_us,p99_us,seconds,server_cpu_s,client_cpu_s,"
              "deliveries_per_core_s,ok,sustained\n")
runs = {}  # (subs, server) -> [json]
for f in sorted(glob.glob(os.path.join(out, "r*-*-*.json"))):
    m = re.match(r"r(\d+)-(\d+)-(.+)\.json$", os.path.basename(f))
    try:
        j = json.load(open(f))
    except (ValueError, OSError):
        j = None
    runs.setdefault((int(m.group(2)), m.group(3)), []).append(j)
    for p in (j or {}).get("phases", []) if csv else []:
        csv.write(",".join(str(x) for x in [m.group(1), m.group(2), m.group(3)] + [
            p[k] for k in ("kind", "size", "rate", "published", "pub_rate", "expected",
                           "delivered_in_time", "gaps", "dups", "verify_fail", "p50_us", "p99_us",
                           "seconds", "server_cpu_s", "client_cpu_s", "deliveries_per_core_s",
                           "ok", "sustained")]) + "\n")

ORDER = ["relay-default", "relay-userland", "uws", "node"]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, scale=1.0, nd=0):
    return "-" if x is None else f"{x * scale:,.{nd}f}"


print("| subscribers | size | server | fixed rate msg/s | deliveries/s per core | p50 ms | p99 ms"
      " | max rate msg/s | deliveries/s | deliveries/s per core | p50 ms | p99 ms | runs ok |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for subs in sorted({k[0] for k in runs}):
    sizes = {p["size"] for (s, _), js in runs.items() if s == subs for j in js if j
             for p in j["phases"]}
    for size in sorted(sizes):
        for srv in sorted({k[1] for k in runs if k[0] == subs},
                          key=lambda x: ORDER.index(x) if x in ORDER else 99):
            fixed, best, ok, total = [], [], 0, 0
            for j in runs[(subs, srv)]:
                total += 1
                if not j:
                    continue
                f = [p for p in j["phases"] if p["size"] == size and p["kind"] == "fixed"]
                b = [p for p in j["max"] if p["size"] == size]
                if f:
                    fixed.append(f[0])
                    # verified: every message to every subscriber, in order, intact, in time
                    ok += f[0]["ok"] and j["connected"] == subs
                best.append(b[0] if b else None)
            fb = [b for b in best if b]
            print(f"| {subs} | {size} | {srv} | {fmt(med([p['rate'] for p in fixed]))} | "
                  f"{fmt(med([p['deliveries_per_core_s'] for p in fixed]))} | "
                  f"{fmt(med([p['p50_us'] for p in fixed]), 1e-3, 1)} | "
                  f"{fmt(med([p['p99_us'] for p in fixed]), 1e-3, 1)} | "
                  f"{fmt(med([b['rate'] if b else 0 for b in best]))} | "
                  f"{fmt(med([b['deliveries_per_s'] for b in fb]))} | "
                  f"{fmt(med([b['deliveries_per_core_s'] for b in fb]))} | "
                  f"{fmt(med([b['p50_us'] for b in fb]), 1e-3, 1)} | "
                  f"{fmt(med([b['p99_us'] for b in fb]), 1e-3, 1)} | {ok}/{total} |")
