#!/usr/bin/python3
"""PyTorch 1.13 side of bench/bench_sequence.cc (same shapes, same thread counts).

torch 1.13 has no scaled_dot_product_attention, so attention is composed as
softmax(q @ kᵀ · scale + mask) @ v with an additive key padding mask (0 / -inf).
Usage: /usr/bin/python3 bench/bench_sequence_torch.py THREADS
Debian's torch calls the same pthread OpenBLAS as finch, and torch.set_num_threads does not
reach it, so OPENBLAS_NUM_THREADS is set to THREADS as well (before torch loads): otherwise
"1 thread" torch runs its gemms on every core.
"""
import math
import os
import sys
import time

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 1
os.environ["OPENBLAS_NUM_THREADS"] = str(THREADS)
import torch  # noqa: E402


def bench(fn, min_time=0.3, rounds=5):
    """Best of `rounds` mean times (the machines are shared and noisy; the min is the signal)."""
    for _ in range(3):
        fn()
    best, best_cpu = float("inf"), float("inf")
    for _ in range(rounds):
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt > min_time and n >= 3:
                break
        best = min(best, dt / n)
        best_cpu = min(best_cpu, (time.process_time() - c0) / n)
    return best, best_cpu


def lstm_train(B, H):
    cell = torch.nn.LSTMCell(H, H)
    x, h, c = (torch.randn(B, H, requires_grad=True) for _ in range(3))
    gh, gc = torch.randn(B, H), torch.randn(B, H)
    params = [x, h, c] + list(cell.parameters())

    def step():
        for p in params:
            p.grad = None
        h1, c1 = cell(x, (h, c))
        torch.autograd.backward([h1, c1], [gh, gc])
    return step


def lstm_infer(B, H):
    cell = torch.nn.LSTMCell(H, H)
    x, h, c = (torch.randn(B, H) for _ in range(3))

    def step():
        with torch.no_grad():
            cell(x, (h, c))
    return step


def attention(B, heads, L, D, train):
    q, k, v = (torch.randn(B, heads, L, D, requires_grad=train) for _ in range(3))
    valid = torch.arange(L)[None, :] < torch.tensor([L - 8 * b for b in range(B)])[:, None]
    mask = torch.zeros(B, 1, 1, L).masked_fill(~valid[:, None, None, :], float("-inf"))
    dout = torch.randn(B, heads, L, D)
    scale = 1.0 / math.sqrt(D)

    def fwd():
        return torch.softmax(q @ k.transpose(-2, -1) * scale + mask, dim=-1) @ v

    def step():
        if train:
            for t in (q, k, v):
                t.grad = None
            fwd().backward(dout)
        else:
            with torch.no_grad():
                fwd()
    return step


if __name__ == "__main__":
    print("torch", torch.__version__)
    for threads in (THREADS,):
        torch.set_num_threads(threads)
        print(f"threads={threads}")
        for name, fn in [("lstm train  B=64 H=256 ", lstm_train(64, 256)),
                         ("lstm infer  B=1  H=128 ", lstm_infer(1, 128)),
                         ("lstm infer  B=64 H=256 ", lstm_infer(64, 256)),
                         ("attn train  8x12x128x64", attention(8, 12, 128, 64, True)),
                         ("attn infer  8x12x128x64", attention(8, 12, 128, 64, False))]:
            wall, cpu = bench(fn)
            print(f"  {name}  wall {wall * 1e6:10.1f} us   cpu {cpu * 1e6:10.1f} us")
