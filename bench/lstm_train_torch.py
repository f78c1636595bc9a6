#!/usr/bin/python3
"""PyTorch side of bench/lstm_train.cc: nn.LSTM / nn.GRU training throughput (forward +
backward, sequences/s), same shapes and flags. Runs under Debian's torch 1.13 (/usr/bin/python3)
or the peers venv's torch 2.x (/work/peers-venv/bin/python).

Usage: lstm_train_torch.py [--mode lstm|gru] [--threads N] [--batch B] [--steps T] [--input IN]
                           [--hidden H] [--layers L] [--bidirectional] [--iters K] [--warmup W]
Prints one JSON line like the finch program. Debian's torch runs its GEMMs on the system
OpenBLAS, which torch.set_num_threads does not govern, so OPENBLAS_NUM_THREADS is set to the
thread count before torch loads.
"""
import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--mode", choices=["lstm", "gru"], default="lstm")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--steps", type=int, default=100)
ap.add_argument("--input", type=int, default=32)
ap.add_argument("--hidden", type=int, default=128)
ap.add_argument("--layers", type=int, default=1)
ap.add_argument("--bidirectional", action="store_true")
ap.add_argument("--iters", type=int, default=20)
ap.add_argument("--warmup", type=int, default=3)
a = ap.parse_args()
for k in ("threads", "batch", "steps", "input", "hidden", "layers", "iters"):
    if getattr(a, k) < 1:
        sys.exit(f"lstm_train_torch.py: expected --{k} >= 1, found {getattr(a, k)}")
os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
os.environ["OMP_NUM_THREADS"] = str(a.threads)
import torch  # noqa: E402

torch.set_num_threads(a.threads)
torch.manual_seed(1)
cls = torch.nn.LSTM if a.mode == "lstm" else torch.nn.GRU
m = cls(a.input, a.hidden, num_layers=a.layers, bidirectional=a.bidirectional)
x = torch.randn(a.steps, a.batch, a.input)
gout = torch.randn(a.steps, a.batch, (2 if a.bidirectional else 1) * a.hidden)
ms = []
for it in range(a.warmup + a.iters):
    t0 = time.perf_counter()
    m.zero_grad(set_to_none=True)
    out, _ = m(x)
    out.backward(gout)
    t1 = time.perf_counter()
    if it >= a.warmup:
        ms.append((t1 - t0) * 1e3)
ms.sort()
med = ms[len(ms) // 2]
print(json.dumps({"impl": "torch " + torch.__version__, "mode": a.mode, "threads": a.threads,
                  "ms_per_iter": round(med, 3), "seq_per_s": round(a.batch * 1e3 / med, 1)}))
