#!/usr/bin/python3
"""Golden numbers from PyTorch for finch's masked batch norm (autograd/masked_batch_norm.h):
a padded batch normalized in training mode must give, at its valid steps, what torch's
BatchNorm1d gives on the unpadded sequences (their steps side by side: torch.cat over time, which
is the batch of packed steps), with the same gradients and running statistics.

Writes tests/golden/data/masked_batch_norm.safetensors: for each case <c> (one with affine
weights, one without, both with running statistics):
  <c>.x [N, C, T] the padded input (padding filled with large values: they must not matter),
  <c>.lengths I64 [N], <c>.weight, <c>.bias [C] (affine case), <c>.running_mean_in/_var_in [C],
  <c>.dy [N, C, T] (0 at padding), <c>.y, <c>.dx [N, C, T] (torch's on the valid steps, 0 at
  padding), <c>.dweight, <c>.dbias [C], <c>.running_mean, <c>.running_var [C] after the forward.
Inputs are float32 values stored as F64; torch computes in float64.
Run: python3 tests/golden/make_masked_bn_goldens.py with any torch (the checked-in file was made by
PyPI's torch 2.15 in /work/venvs/peers: Debian's python3-torch was not installed that day).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402


def rnd(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape, dtype=torch.float32) * scale + shift).double()


def case(name, lengths, C, affine, out):
    N, T = len(lengths), max(lengths) + 2  # two steps of padding even for the longest
    x = rnd(N, C, T, scale=2.0, shift=0.7)
    dy = rnd(N, C, T)
    for b, L in enumerate(lengths):
        x[b, :, L:] = 1e3 * (b + 1)  # padding: large, so counting it would show
        dy[b, :, L:] = 0
    rm, rv = rnd(C, scale=0.1), rnd(C, scale=0.1).abs() + 1.0
    bn = torch.nn.BatchNorm1d(C, eps=1e-5, momentum=0.1, affine=affine).double()
    with torch.no_grad():
        if affine:
            bn.weight.copy_(rnd(C, shift=1.0))
            bn.bias.copy_(rnd(C))
        bn.running_mean.copy_(rm)
        bn.running_var.copy_(rv)
    xl = x.clone().requires_grad_(True)
    packed = torch.cat([xl[b:b + 1, :, :L] for b, L in enumerate(lengths)], dim=2)  # [1, C, ΣL]
    dy_packed = torch.cat([dy[b:b + 1, :, :L] for b, L in enumerate(lengths)], dim=2)
    y_packed = bn.train()(packed)
    y_packed.backward(dy_packed)
    y = torch.zeros(N, C, T, dtype=torch.float64)
    at = 0
    for b, L in enumerate(lengths):
        y[b, :, :L] = y_packed[0, :, at:at + L].detach()
        at += L
    o = {"x": x, "lengths": torch.tensor(lengths, dtype=torch.int64), "running_mean_in": rm,
         "running_var_in": rv, "dy": dy, "y": y, "dx": xl.grad,
         "running_mean": bn.running_mean.clone(), "running_var": bn.running_var.clone()}
    if affine:
        o.update({"weight": bn.weight.detach().clone(), "bias": bn.bias.detach().clone(),
                  "dweight": bn.weight.grad, "dbias": bn.bias.grad})
    for k, v in o.items():
        out[name + "." + k] = v


def main():
    torch.manual_seed(1613)
    out = {}
    case("affine", [7, 3, 5, 1], 4, True, out)
    case("plain", [2, 6], 3, False, out)
    golden_io.save(out, os.path.join(golden_io.DATA, "masked_batch_norm.safetensors"))


if __name__ == "__main__":
    main()
