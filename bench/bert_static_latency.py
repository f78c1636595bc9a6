"""Latency of BERT programs side by side: `finch bench` (batch 1, the program's declared sequence,
random ids, full mask) on each program in turn, round after round, so load drifts hit them
alike; the median over rounds of each round's median, ratios against the first program, and the
file sizes.
  python3 bench/bert_static_latency.py --finch build/bin/finch --threads 1 2 --rounds 5 --iters 10 \
      fp32=mini-fp32.finch dynamic=mini-int8.finch static=mini-static.finch
Prints a Markdown table (one row per thread count)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def bench(finch, path, threads, iters, warmup):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [finch, "bench", path, "--threads", str(threads), "--iters", str(iters), "--warmup", str(warmup),
               "--json", f.name]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
        return json.load(open(f.name))["latency_ms_median"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--finch", default="build/bin/finch")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("programs", nargs="+", metavar="NAME=PROGRAM")
    a = p.parse_args()
    if a.rounds < 1 or a.iters < 1 or a.warmup < 0 or any(t < 1 for t in a.threads):
        sys.exit("bert_static_latency: expected --rounds, --iters and --threads >= 1 and --warmup >= 0")
    progs = []
    for s in a.programs:
        name, sep, path = s.partition("=")
        if not sep or not os.path.isfile(path):
            sys.exit(f"bert_static_latency: expected NAME=PROGRAM with an existing file, found '{s}'")
        progs.append((name, path))
    names = [n for n, _ in progs]
    print("| threads | " + " | ".join(f"{n} ms" for n in names) + " | " +
          " | ".join(f"{n} ÷ {names[0]}" for n in names[1:]) + (f" | {names[-1]} ÷ {names[-2]}" if len(names) > 2 else "") + " |")
    print("|---" * (1 + 2 * len(names) - 1 + (1 if len(names) > 2 else 0)) + "|")
    for t in a.threads:
        res = {n: [] for n in names}
        for _ in range(a.rounds):
            for n, path in progs:
                res[n].append(bench(a.finch, path, t, a.iters, a.warmup))
        med = {n: statistics.median(v) for n, v in res.items()}
        row = [f"{med[n]:.1f}" for n in names] + [f"{med[n] / med[names[0]]:.2f}" for n in names[1:]]
        if len(names) > 2:
            row.append(f"{med[names[-1]] / med[names[-2]]:.2f}")
        print(f"| {t} | " + " | ".join(row) + " |")
    print()
    print("| program | bytes | ÷ " + names[0] + " |\n|---|---|---|")
    base = os.path.getsize(progs[0][1])
    for n, path in progs:
        print(f"| {n} | {os.path.getsize(path)} | {os.path.getsize(path) / base:.3f} |")


if __name__ == "__main__":
    main()
