#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Markdown tables from a writevv-bench --csv file (used for BENCHMARKS.md).

usage: bench/csv2md.py results.csv [recv ...]
"""
import csv
import sys

ENGINES = ["loop", "uring", "memfd", "sendzc", "wvv-kernel", "wvv-user", "wvv-uring", "wvv-sendfile",
           "wvv-zerocopy", "wvv-default"]


def size(b):
    b = int(b)
    if b >= 1024 and b % 1024 == 0:
        return "%d KiB" % (b // 1024)
    return "%d B" % b


def f(v, fmt):
    return fmt % float(v) if v not in ("", None) else "-"


def ratio_table(cells, engines, grid, recv, title, note, loop_col, ratio_col):
    print("\n**Grid, receivers `%s`: %s** %s\n" % (recv, title, note))
    print("| targets | payload | loop ns | " + " | ".join(e for e in engines if e != "loop") + " |")
    print("|---:|---:|---:|" + "---:|" * (len(engines) - 1))
    for key in grid:
        c = cells[key]
        loop = c.get("loop")
        out = ["%d" % key[2], size(key[3]), f(loop[loop_col], "%.0f") if loop and loop["status"] == "ok" else "-"]
        for e in engines:
            if e == "loop":
                continue
            r = c.get(e)
            out.append(f(r[ratio_col], "%.2f") if r and r["status"] == "ok" else "n/a")
        print("| " + " | ".join(out) + " |")


def pair_table(cells, engines, grid, title, cell):
    """One row a grid cell, one column an engine: cell(row) of each engine that ran ("n/a": None)."""
    print(title)
    print("| targets | payload | " + " | ".join(engines) + " |")
    print("|---:|---:|" + "---:|" * len(engines))
    for key in grid:
        c = cells[key]
        out = ["%d" % key[2], size(key[3])]
        for e in engines:
            r = c.get(e)
            v = cell(r) if r and r["status"] == "ok" else None
            out.append(v if v is not None else "n/a")
        print("| " + " | ".join(out) + " |")


def main():
    rows = list(csv.DictReader(open(sys.argv[1])))
    recvs = sys.argv[2:] or sorted({r["recv"] for r in rows}, key=["drain", "discard", "nic", "nic-discard"].index)
    cells = {}
    for r in rows:
        cells.setdefault((r["recv"], r["workload"], int(r["targets"]), int(r["payload"])), {})[r["engine"]] = r
    engines = [e for e in ENGINES if any(e in c for c in cells.values())]

    for recv in recvs:
        # writevvtest
        for key, c in cells.items():
            if key[0] != recv or key[1] != "writevvtest":
                continue
            loop = c.get("loop")
            print("\n**writevvtest, receivers `%s`** (%d targets x 4 x 974 B, %s calls per repetition, open loop)\n"
                  % (recv, key[2], loop["open_calls"] if loop else "?"))
            print("| engine | CPU ns / target-write | loop / engine | MB/s delivered | retrans+TLP |")
            print("|---|---:|---:|---:|---:|")
            for e in engines:
                r = c.get(e)
                if not r:
                    continue
                if r["status"] != "ok":
                    print("| %s | %s | | | |" % (e, r["why"]))
                    continue
                print("| %s | %s | %s | %s | %s |" % (e, f(r["cpu_open_ns"], "%.0f"), f(r["ratio_open"], "%.2fx"),
                                                    f(r["mbps_open"], "%.0f"), r["retrans"]))
            k, u = c.get("wvv-kernel"), c.get("wvv-user")
            if k and u and k["status"] == "ok" and u["status"] == "ok":
                print("\nkernel vs userland (wvv-user CPU / wvv-kernel CPU): **%.2fx** (FreeBSD original: 6.23x)"
                      % (float(u["cpu_open_ns"]) / float(k["cpu_open_ns"])))

        grid = sorted(k for k in cells if k[0] == recv and k[1] == "grid")
        if not grid:
            continue
        ratio_table(cells, engines, grid, recv, "open-loop sender CPU ratio loop/engine",
                    "(> 1: the engine used less CPU than the writev loop; loop column: its ns per target-write)",
                    "cpu_open_ns", "ratio_open")
        ratio_table(cells, engines, grid, recv, "closed-loop sender CPU ratio loop/engine",
                    "(one call at a time, each delivered everywhere before the next)",
                    "cpu_closed_ns", "ratio_closed")

        pair_table(cells, engines, grid,
                   "\n**Grid, receivers `%s`: delivery latency p50 / p99 in us** "
                   "(closed loop: call start to the last byte at each receiver)\n" % recv,
                   lambda r: "%s / %s" % (f(r["lat_p50_us"], "%.0f"), f(r["lat_p99_us"], "%.0f"))
                   if r["lat_p50_us"] else None)
        pair_table(cells, engines, grid,
                   "\n**Grid, receivers `%s`: delivered MB/s (open loop) and TCP segments per target-write "
                   "(closed loop)**\n" % recv,
                   lambda r: "%s / %s" % (f(r["mbps_open"], "%.0f"), f(r["segs_closed"], "%.2f")))


if __name__ == "__main__":
    main()
