#!/usr/bin/env python3
"""A/B of two finch builds' thread scaling: `finch bench` at each thread count, the builds
alternating inside every round, median of each run's median across rounds.

  python3 bench/threads_ab.py --old /tmp/finch-old --new build/bin/finch --rounds 3 \
      /tmp/p/resnet20-fp32.finch /tmp/p/resnet20-int8.finch

Prints one table row per program and thread count: old ms, new ms, new/old, and each build's
1-thread/N-thread speed-up. The machine is shared: the load average is printed before and after.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

MEDIAN = re.compile(r"median ([0-9.]+) ms")


def bench(binary, program, threads, iters, warmup):
    cmd = [binary, "bench", program, "--threads", str(threads), "--iters", str(iters), "--warmup", str(warmup)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = MEDIAN.search(out)
    if not m:
        sys.exit(f"threads_ab: '{' '.join(cmd)}' printed no median: {out!r}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("programs", nargs="+")
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    if a.rounds < 1 or a.iters < 1 or a.warmup < 0 or any(t < 1 for t in threads):
        sys.exit("threads_ab: --rounds and --iters must be at least 1, --warmup at least 0, threads at least 1")
    print(f"load average before: {os.getloadavg()}", flush=True)
    res = {}
    for r in range(a.rounds):
        for p in a.programs:
            for t in threads:
                # Alternate which build goes first so a drift in load does not favour one.
                order = [("old", a.old), ("new", a.new)] if r % 2 == 0 else [("new", a.new), ("old", a.old)]
                for name, binary in order:
                    res.setdefault((p, t, name), []).append(bench(binary, p, t, a.iters, a.warmup))
    print(f"load average after: {os.getloadavg()}")
    print("| program | threads | old ms | new ms | new/old | old 1thr/Nthr | new 1thr/Nthr |")
    print("|---|---|---|---|---|---|---|")
    for p in a.programs:
        med = {(t, n): statistics.median(res[(p, t, n)]) for t in threads for n in ("old", "new")}
        for t in threads:
            o, n = med[(t, "old")], med[(t, "new")]
            so, sn = med[(threads[0], "old")] / o, med[(threads[0], "new")] / n
            print(f"| {os.path.basename(p)} | {t} | {o:.3f} | {n:.3f} | {n / o:.2f} | {so:.2f} | {sn:.2f} |")


if __name__ == "__main__":
    main()
