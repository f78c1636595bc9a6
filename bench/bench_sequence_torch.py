#!/usr/bin/python3
"""PyTorch 1.13 side of bench/bench_sequence.cc (same shapes, same thread counts).

torch 1.13 has no scaled_dot_product_attention, so attention is composed as
softmax(q @ kᵀ · scale + mask) @ v with an additive key padding mask (0 / -inf).
Usage: /usr/bin/python3 bench/bench_sequence_torch.py
"""
import math
import time

import torch


def bench(fn, min_time=1.0):
    for _ in range(3):
        fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt > min_time and n >= 5:
            return dt / n


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
    for threads in (1, 2):
        torch.set_num_threads(threads)
        print(f"threads={threads}")
        print(f"  lstm train  B=64 H=256   {bench(lstm_train(64, 256)) * 1e6:9.1f} us")
        print(f"  lstm infer  B=1  H=128   {bench(lstm_infer(1, 128)) * 1e6:9.1f} us")
        print(f"  lstm infer  B=64 H=256   {bench(lstm_infer(64, 256)) * 1e6:9.1f} us")
        print(f"  attn train  8x12x128x64  {bench(attention(8, 12, 128, 64, True)) * 1e3:9.2f} ms")
        print(f"  attn infer  8x12x128x64  {bench(attention(8, 12, 128, 64, False)) * 1e3:9.2f} ms")
