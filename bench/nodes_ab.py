#!/usr/bin/env python3
"""Per-node times of one program, two builds alternating: old and new `bench_threads --profile`
in turn, one process each per round, and the median over the rounds of each node's one-thread
mean (µs) and of the whole one-thread run (ms), with old ÷ new (above 1 = the new build faster).

  python3 bench/nodes_ab.py OLD_BIN_DIR NEW_BIN_DIR PROGRAM [--rounds 7] [--iters 100] [--warmup 20]

Each BIN_DIR holds a bench_threads executable. The node table is bench_threads' own (the
runtime's per-node timer; its "1 thr us" column); node rows are keyed by (name, op), since a
model's pool and flatten can share one name. On a loaded machine every number is noisy: the
alternation makes the ratios, not the times, the thing to read.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys


def die(msg):
    print(f"nodes_ab: {msg}", file=sys.stderr)
    sys.exit(1)


def profile(bin_dir, program, iters, warmup):
    exe = os.path.join(bin_dir, "bench_threads")
    if not os.access(exe, os.X_OK):
        die(f"{exe}: expected an executable bench_threads, found none")
    r = subprocess.run([exe, program, "--profile", "--iters", str(iters), "--warmup", str(warmup), "--rounds", "1",
                        "--threads", "2"], capture_output=True, text=True)
    if r.returncode != 0:
        die(f"{exe} --profile {program} failed: {r.stderr.strip()}")
    nodes, total = {}, None
    for line in r.stdout.splitlines():
        m = re.search(r" 1 thr ([\d.]+) ms", line)
        if m and "per run" not in line:
            total = float(m.group(1))
        parts = line.split()
        if len(parts) == 4 and parts[0] != "node":
            try:
                nodes[(parts[0], parts[1])] = float(parts[2])
            except ValueError:
                pass
    if total is None or not nodes:
        die(f"{exe} --profile {program}: expected the 1-thread median and a node table, found:\n{r.stdout}")
    return nodes, total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("program")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=20)
    a = ap.parse_args()
    for name in ("rounds", "iters"):
        if getattr(a, name) < 1:
            die(f"--{name}: expected an integer >= 1, got {getattr(a, name)}")
    if a.warmup < 0:
        die(f"--warmup: expected an integer >= 0, got {a.warmup}")
    runs = {"old": [], "new": []}
    for _ in range(a.rounds):
        for k in ("old", "new"):
            runs[k].append(profile(getattr(a, k), a.program, a.iters, a.warmup))
    keys = [k for k in runs["old"][0][0] if all(k in n for n, _ in runs["old"] + runs["new"])]

    def med(k, key):
        return statistics.median(n[key] for n, _ in runs[k])

    rows = sorted(keys, key=lambda key: med("old", key) - med("new", key), reverse=True)
    print(f"{a.program}: median of {a.rounds} alternating rounds, 1 thread, µs per node")
    print(f"{'node':32s} {'op':22s} {'old':>9s} {'new':>9s} {'old/new':>8s}")
    for key in rows:
        o, n = med("old", key), med("new", key)
        print(f"{key[0]:32s} {key[1]:22s} {o:9.1f} {n:9.1f} {o / n if n else float('nan'):8.2f}")
    o = statistics.median(t for _, t in runs["old"])
    n = statistics.median(t for _, t in runs["new"])
    print(f"{'whole run (median, ms)':55s} {o:9.3f} {n:9.3f} {o / n:8.2f}")


if __name__ == "__main__":
    main()
