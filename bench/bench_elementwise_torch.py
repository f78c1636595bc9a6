#!/usr/bin/python3
# PyTorch side of bench_elementwise: the same ops, shapes and thread counts, timed per call;
# prints the median and the minimum in microseconds (on a shared machine the minimum is the
# least noisy). With --vs BIN it alternates with `BIN --min-of=30` for R rounds and prints the
# finch/torch ratio of the best times:
#   /usr/bin/python3 bench/bench_elementwise_torch.py --vs build/bin/bench_elementwise --rounds 4
# Plain use: /usr/bin/python3 bench/bench_elementwise_torch.py [threads...]
import argparse
import collections
import re
import subprocess
import sys
import time

import torch

N = (64, 64, 32, 32)


def bench(fn, min_time=0.5):
    fn()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1e6, times[0] * 1e6


def run_torch(thread_counts):
    torch.manual_seed(0)
    a, b, g = torch.randn(N), torch.randn(N), torch.randn(N)
    c = torch.randn(1, 64, 1, 1)
    yr = torch.relu(a)
    ys = torch.sigmoid(a)
    aten = torch.ops.aten
    cases = {
        "add_same": lambda: torch.add(a, b),
        "mul_same": lambda: torch.mul(a, b),
        "add_channel": lambda: torch.add(a, c),
        "mul_channel": lambda: torch.mul(a, c),
        "relu_fwd": lambda: torch.relu(a),
        "relu_bwd": lambda: aten.threshold_backward(g, yr, 0),
        "gelu_fwd": lambda: torch.nn.functional.gelu(a),
        "gelu_bwd": lambda: aten.gelu_backward(g, a),
        "sigmoid_fwd": lambda: torch.sigmoid(a),
        "sigmoid_bwd": lambda: aten.sigmoid_backward(g, ys),
        "sum_to_channel": lambda: g.sum(dim=(0, 2, 3), keepdim=True),
    }
    best = {}
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for name, fn in cases.items():
            med, low = bench(fn)
            best[f"{name}/{threads}"] = low
            print(f"torch {name}/{threads} median {med:.1f} us min {low:.1f} us", flush=True)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("threads", nargs="*", type=int, default=[1, 2])
    ap.add_argument("--vs", help="path to bench_elementwise: alternate with it and print ratios")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not args.vs:
        run_torch(args.threads)
        return
    fin, tor = collections.defaultdict(list), collections.defaultdict(list)
    for _ in range(args.rounds):
        out = subprocess.run([args.vs, "--min-of=30"], capture_output=True, text=True, check=True).stdout
        for m in re.finditer(r"finch (\S+) min (\S+) us", out):
            fin[m.group(1)].append(float(m.group(2)))
        for k, v in run_torch([1, 2]).items():
            tor[k].append(v)
    print(f"\n{'case':22s} {'finch us':>10s} {'torch us':>10s} {'ratio':>6s}")
    for k in fin:
        f, t = min(fin[k]), min(tor[k])
        print(f"{k:22s} {f:10.0f} {t:10.0f} {f / t:6.2f}")


if __name__ == "__main__":
    sys.exit(main())
