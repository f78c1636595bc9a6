#!/usr/bin/python3
"""Writes tests/golden/data/conv_goldens.safetensors: conv2d and depthwise conv forward and
backward numbers from PyTorch (f64), read by tests/ops/test_conv.cc without Python.

Cases (prefix.x, .w, .b, .dy inputs; .y, .dx, .dw, .db results):
  grouped: x [2, 4, 9, 8], w [6, 2, 3, 3], groups 2, stride 2, padding 1, dilation 2
  dw:      x [2, 5, 7, 9], w [5, 1, 3, 3], groups 5, stride 1, padding 1 (depthwise)
  dw2:     x [1, 3, 8, 7], w [6, 1, 3, 3], groups 3, stride 2, padding 1 (multiplier 2)
  wino:    x [2, 8, 7, 6], w [9, 8, 3, 3], stride 1, padding 1 (finch's Winograd path in F32)
Run: /usr/bin/python3 tests/golden/make_conv_goldens.py
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402


def save_safetensors(path, tensors):
    golden_io.save({k: v.to(torch.float64) for k, v in tensors.items()}, path)

def case(prefix, out, x_shape, w_shape, stride, padding, dilation, groups, gen):
    x = torch.randn(*x_shape, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(*w_shape, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(w_shape[0], generator=gen, dtype=torch.float64, requires_grad=True)
    y = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    dy = torch.randn(*y.shape, generator=gen, dtype=torch.float64)
    y.backward(dy)
    for k, v in dict(x=x, w=w, b=b, dy=dy, y=y, dx=x.grad, dw=w.grad, db=b.grad).items():
        out[f"{prefix}.{k}"] = v


def main():
    gen = torch.Generator().manual_seed(20240607)
    out = {}
    case("grouped", out, (2, 4, 9, 8), (6, 2, 3, 3), 2, 1, 2, 2, gen)
    case("dw", out, (2, 5, 7, 9), (5, 1, 3, 3), 1, 1, 1, 5, gen)
    case("dw2", out, (1, 3, 8, 7), (6, 1, 3, 3), 2, 1, 1, 3, gen)
    case("wino", out, (2, 8, 7, 6), (9, 8, 3, 3), 1, 1, 1, 1, gen)
    here = os.path.dirname(os.path.abspath(__file__))
    os.makedirs(os.path.join(here, "data"), exist_ok=True)
    save_safetensors(os.path.join(here, "data", "conv_goldens.safetensors"), out)


if __name__ == "__main__":
    main()
