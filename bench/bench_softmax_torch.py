#!/usr/bin/python3
"""PyTorch 1.13 side of bench/bench_softmax.cc: same shapes, same thread counts; prints
microseconds per call (the minimum over repeated timing runs: the machines are shared and noisy,
and the minimum is the least disturbed). With --finch-json FILE (the output of
bench_softmax --benchmark_format=json --benchmark_repetitions=N) it prints finch/torch ratios.

  build/bin/bench_softmax --benchmark_repetitions=7 --benchmark_format=json > /tmp/f.json
  /usr/bin/python3 bench/bench_softmax_torch.py --finch-json /tmp/f.json 1 2
"""
import json
import sys
import timeit

import torch


def bench(fn, min_time=0.3):
    fn()
    n, t = 1, 0.0
    while t < 0.05:
        n *= 2
        t = timeit.timeit(fn, number=n)
    reps = max(3, int(min_time / t))
    return min(timeit.timeit(fn, number=n) / n for _ in range(reps)) * 1e6


def finch_times(path):
    """Minimum real time (us) per benchmark name over the repetitions in a gbench JSON file."""
    out = {}
    for b in json.load(open(path))["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b.get("time_unit", "ns")]
        t = b["real_time"] * scale
        out[b["run_name"]] = min(out.get(b["run_name"], t), t)
    return out


def main():
    args = sys.argv[1:]
    finch = {}
    if args and args[0] == "--finch-json":
        finch = finch_times(args[1])
        args = args[2:]
    threads = [int(a) for a in args] or [1, 2]
    results = []

    def report(name, us):
        results.append((name, us))
        f = finch.get(name)
        extra = f"   finch {f:10.2f} us   ratio {f / us:5.2f}" if f else ""
        print(f"{name:36s} torch {us:10.2f} us{extra}", flush=True)

    torch.manual_seed(42)
    cases = [("attn_3072x128", (3072, 128), -1, False), ("cls_64x1000", (64, 1000), -1, False),
             ("log_cls_64x1000", (64, 1000), -1, True), ("dim1_32x128x96", (32, 128, 96), 1, False)]
    for nt in threads:
        torch.set_num_threads(nt)
        for name, shape, dim, log in cases:
            x = torch.randn(shape)
            dy = torch.randn(shape)
            if log:
                y = torch.log_softmax(x, dim)
                fwd = lambda: torch.log_softmax(x, dim)
                bwd = lambda: torch._log_softmax_backward_data(dy, y, dim, torch.float32)
            else:
                y = torch.softmax(x, dim)
                fwd = lambda: torch.softmax(x, dim)
                bwd = lambda: torch._softmax_backward_data(dy, y, dim, torch.float32)
            report(f"softmax_fwd/{name}/{nt}", bench(fwd))
            report(f"softmax_bwd/{name}/{nt}", bench(bwd))
        x = torch.randn(64, 64, 32, 32)
        report(f"sum_nhw/{nt}", bench(lambda: x.sum((0, 2, 3))))
        x = torch.randn(3072, 768)
        report(f"sum_last/{nt}", bench(lambda: x.sum(-1)))


if __name__ == "__main__":
    main()
