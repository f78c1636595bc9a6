#!/usr/bin/python3
"""Golden numbers from PyTorch (1.13) for finch's batch norm, layer norm, cross entropy and
BCE-with-logits tests. Writes small safetensors files into tests/golden/data/.

Inputs are drawn in float32 and stored as F64 (so finch's F32 and F64 paths see identical
values); torch computes in float64. Run: /usr/bin/python3 tests/golden/make_norm_loss_goldens.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def save(tensors, path):
    golden_io.save(tensors, path)

def rnd(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape, dtype=torch.float32) * scale + shift).double()


def leaf(t):
    return t.clone().requires_grad_(True)


def batch_norm():
    x, w, b = rnd(4, 3, 5, 5, scale=2.0, shift=1.5), rnd(3), rnd(3)
    rm, rv = rnd(3, scale=0.1), rnd(3, scale=0.1).abs() + 1.0
    dy = rnd(4, 3, 5, 5)
    bn = torch.nn.BatchNorm2d(3, eps=1e-5, momentum=0.1).double()
    with torch.no_grad():
        bn.weight.copy_(w); bn.bias.copy_(b); bn.running_mean.copy_(rm); bn.running_var.copy_(rv)
    xl = leaf(x)
    y = bn(xl)
    y.backward(dy)
    out = {"x": x, "weight": w, "bias": b, "running_mean_in": rm, "running_var_in": rv, "dy": dy,
           "y": y, "running_mean_out": bn.running_mean, "running_var_out": bn.running_var,
           "dx": xl.grad, "dweight": bn.weight.grad.clone(), "dbias": bn.bias.grad.clone()}
    # Eval mode with the updated statistics.
    bn.eval(); bn.zero_grad()
    xe = leaf(x)
    ye = bn(xe)
    ye.backward(dy)
    out.update({"y_eval": ye, "dx_eval": xe.grad, "dweight_eval": bn.weight.grad,
                "dbias_eval": bn.bias.grad})
    save(out, os.path.join(OUT, "batch_norm2d_train.safetensors"))


def layer_norm():
    out = {}
    for tag, ns in (("d1", [10]), ("d2", [6, 10])):
        x, dy = rnd(4, 6, 10, scale=1.5, shift=-0.7), rnd(4, 6, 10)
        w, b = rnd(*ns), rnd(*ns)
        xl, wl, bl = leaf(x), leaf(w), leaf(b)
        y = torch.nn.functional.layer_norm(xl, ns, wl, bl, eps=1e-5)
        y.backward(dy)
        out.update({f"{tag}_x": x, f"{tag}_weight": w, f"{tag}_bias": b, f"{tag}_dy": dy,
                    f"{tag}_y": y, f"{tag}_dx": xl.grad, f"{tag}_dweight": wl.grad,
                    f"{tag}_dbias": bl.grad})
    save(out, os.path.join(OUT, "layer_norm.safetensors"))


def cross_entropy():
    out = {}
    # [N, C], mean, ignore_index -100 on one sample, label smoothing 0.1.
    x, t = rnd(6, 5, scale=2.0), torch.randint(0, 5, (6,))
    t[2] = -100
    xl = leaf(x)
    loss = torch.nn.functional.cross_entropy(xl, t, ignore_index=-100, label_smoothing=0.1)
    loss.backward()
    out.update({"nc_x": x, "nc_target": t, "nc_loss": loss, "nc_dx": xl.grad})
    # [N, C, d], reduction none, ignore_index 1, label smoothing 0.1.
    x, t = rnd(3, 4, 5, scale=2.0), torch.randint(0, 4, (3, 5))
    dy = rnd(3, 5)
    xl = leaf(x)
    loss = torch.nn.functional.cross_entropy(xl, t, ignore_index=1, label_smoothing=0.1,
                                             reduction="none")
    loss.backward(dy)
    out.update({"ncd_x": x, "ncd_target": t, "ncd_dy": dy, "ncd_loss": loss, "ncd_dx": xl.grad})
    save(out, os.path.join(OUT, "cross_entropy.safetensors"))


def bce():
    x, t, pw = rnd(4, 6, scale=3.0), torch.rand(4, 6).double(), rnd(6).abs() + 0.5
    # torch 1.13 does not differentiate pos_weight (finch does; its gradcheck covers that).
    xl, tl = leaf(x), leaf(t)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(xl, tl, pos_weight=pw)
    loss.backward()
    save({"x": x, "target": t, "pos_weight": pw, "loss": loss, "dx": xl.grad, "dtarget": tl.grad},
         os.path.join(OUT, "bce_with_logits.safetensors"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(1234)
    batch_norm()
    layer_norm()
    cross_entropy()
    bce()
    print("wrote", sorted(os.listdir(OUT)))
