#!/usr/bin/python3
"""PyTorch side of bench/compare_layers.py: forward+backward time of one layer, as JSON.

usage: torch_layers.py CASE THREADS ITERS   ->  {"case": ..., "median_ms": ...}
The cases and their sizes are the ones bench/layers_vs_torch.cc times in finch.
"""
import json
import os
import statistics
import sys
import time

# Debian's torch runs its GEMMs on the system OpenBLAS, which torch.set_num_threads does not
# govern: pin it before torch loads it, or "1 thread" would use every core.
if len(sys.argv) > 2:
    os.environ["OPENBLAS_NUM_THREADS"] = sys.argv[2]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def case_tensors(name):
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    if name == "conv3x3":  # conv 3x3 64->64 on 64x64x32x32
        x, w, b = r(64, 64, 32, 32), r(64, 64, 3, 3) * 0.05, r(64)
        return [x, w, b], lambda x, w, b: F.conv2d(x, w, b, padding=1)
    if name == "dwconv3x3":  # depthwise 3x3 on 64x144x32x32
        x, w, b = r(64, 144, 32, 32), r(144, 1, 3, 3) * 0.3, r(144)
        return [x, w, b], lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=144)
    if name == "linear":  # 1024 -> 1024 on 256 rows
        x, w, b = r(256, 1024), r(1024, 1024) * 0.03, r(1024)
        return [x, w, b], F.linear
    if name == "batchnorm":  # training-mode batch norm on 64x64x32x32
        x, w, b = r(64, 64, 32, 32), r(64), r(64)
        rm, rv = torch.zeros(64), torch.ones(64)
        return [x, w, b], lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=True)
    if name == "layernorm":  # layer norm over 768 on 2048 rows
        x, w, b = r(2048, 768), r(768), r(768)
        return [x, w, b], lambda x, w, b: F.layer_norm(x, (768,), w, b)
    if name == "softmax":  # attention-shaped rows: 8*12*128 rows of 128
        return [r(8 * 12 * 128, 128)], lambda x: F.softmax(x, -1)
    if name == "lstm_cell":  # batch 64, input 256, hidden 256
        x, h, c = r(64, 256), r(64, 256), r(64, 256)
        wih, whh, bih, bhh = r(1024, 256) * 0.06, r(1024, 256) * 0.06, r(1024), r(1024)
        return [x, h, c, wih, whh, bih, bhh], lambda *a: torch._VF.lstm_cell(a[0], (a[1], a[2]), *a[3:])
    if name == "attention":  # B=8, 12 heads, L=128, D=64, key padding mask
        q, k, v = r(8, 12, 128, 64), r(8, 12, 128, 64), r(8, 12, 128, 64)
        keep = torch.ones(8, 1, 1, 128, dtype=torch.bool)
        keep[1::2, ..., 100:] = False
        bias = torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))

        def attn(q, k, v):
            s = q @ k.transpose(-1, -2) * (64 ** -0.5) + bias
            return torch.softmax(s, -1) @ v
        return [q, k, v], attn
    raise SystemExit(f"unknown case {name}")


def main():
    name, threads, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    inputs, fn = case_tensors(name)
    for t in inputs:
        t.requires_grad_(True)
    out = fn(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    grads = [torch.randn_like(o) for o in outs]

    def step():
        for t in inputs:
            t.grad = None
        out = fn(*inputs)
        outs = out if isinstance(out, tuple) else (out,)
        torch.autograd.backward(outs, grads)

    for _ in range(3):
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({"case": name, "threads": threads, "median_ms": statistics.median(times)}))


if __name__ == "__main__":
    main()
