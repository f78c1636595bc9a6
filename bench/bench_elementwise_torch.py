#!/usr/bin/python3
# PyTorch side of bench_elementwise: the same ops, shapes and thread counts, median of timed
# repeats in microseconds (the minimum too: on a shared machine it is the least noisy). Usage: /usr/bin/python3 bench/bench_elementwise_torch.py [threads...]
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


def main():
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
    for threads in [int(t) for t in sys.argv[1:]] or [1, 2]:
        torch.set_num_threads(threads)
        for name, fn in cases.items():
            med, best = bench(fn)
            print(f"torch {name}/{threads} median {med:.1f} us min {best:.1f} us", flush=True)


if __name__ == "__main__":
    main()
