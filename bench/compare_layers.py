#!/usr/bin/python3
"""Times each benchmark layer forward+backward in finch and in PyTorch, back to back, and prints
the ratio finch/torch (<= 1.0 means finch is at least as fast).

usage: bench/compare_layers.py [--build build] [--threads 1 2] [--iters 20] [--cases ...]
Alternates finch and torch runs `--rounds` times per case and reports the median of each side,
so drift on a shared machine hits both. Debian's python3-torch (1.13) is the peer.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

CASES = ["conv3x3", "dwconv3x3", "linear", "batchnorm", "layernorm", "softmax", "lstm_cell", "attention"]
HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["median_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--iters", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", nargs="+", default=CASES)
    ap.add_argument("--json", help="also write the table here")
    a = ap.parse_args()
    finch = os.path.join(a.build, "bin", "layers_vs_torch")
    rows = []
    print(f"{'case':<12}{'threads':>8}{'finch ms':>12}{'torch ms':>12}{'ratio':>8}")
    for case in a.cases:
        for t in a.threads:
            f, p = [], []
            for _ in range(a.rounds):
                f.append(run([finch, case, str(t), str(a.iters)]))
                p.append(run([sys.executable, os.path.join(HERE, "torch_layers.py"), case, str(t), str(a.iters)]))
            fm, pm = statistics.median(f), statistics.median(p)
            rows.append({"case": case, "threads": t, "finch_ms": fm, "torch_ms": pm, "ratio": fm / pm})
            print(f"{case:<12}{t:>8}{fm:>12.3f}{pm:>12.3f}{fm / pm:>8.2f}", flush=True)
    if a.json:
        with open(a.json + ".tmp", "w") as fh:
            json.dump(rows, fh, indent=2)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
