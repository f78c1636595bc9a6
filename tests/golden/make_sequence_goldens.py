#!/usr/bin/python3
"""Golden data for the sequence ops (LSTM cell, scaled dot-product attention) from PyTorch 1.13.

Run with Debian's torch:  /usr/bin/python3 tests/golden/make_sequence_goldens.py
Writes tests/golden/data/sequence_*.safetensors (read by tests/ops/test_lstm.cc and
tests/ops/test_attention.cc without Python). torch 1.13 has no scaled_dot_product_attention,
so attention is composed from matmul / masked_fill / softmax as torch 2.x's math path does.
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data")


def save(tensors, path):
    golden_io.save(tensors, path)

def lstm_case(name, B, IN, H, bias, seed):
    torch.manual_seed(seed)
    cell = torch.nn.LSTMCell(IN, H, bias=bias)
    x = torch.randn(B, IN, requires_grad=True)
    h = torch.randn(B, H, requires_grad=True)
    c = torch.randn(B, H, requires_grad=True)
    gh, gc = torch.randn(B, H), torch.randn(B, H)
    h1, c1 = cell(x, (h, c))
    ((h1 * gh).sum() + (c1 * gc).sum()).backward()
    t = {"x": x, "h": h, "c": c, "w_ih": cell.weight_ih, "w_hh": cell.weight_hh,
         "dh_new": gh, "dc_new": gc, "h_new": h1, "c_new": c1,
         "dx": x.grad, "dh": h.grad, "dc": c.grad,
         "dw_ih": cell.weight_ih.grad, "dw_hh": cell.weight_hh.grad}
    if bias:
        t.update({"b_ih": cell.bias_ih, "b_hh": cell.bias_hh,
                  "db_ih": cell.bias_ih.grad, "db_hh": cell.bias_hh.grad})
    save(t, os.path.join(OUT, f"sequence_{name}.safetensors"))


def attention(q, k, v, mask=None, is_causal=False):
    """torch 2.x F.scaled_dot_product_attention's math path, from 1.13 primitives."""
    scale = 1.0 / math.sqrt(q.size(-1))
    s = q @ k.transpose(-2, -1) * scale
    if is_causal:
        L, S = q.size(-2), k.size(-2)
        s = s.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf"))
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask
    return torch.softmax(s, dim=-1) @ v


def attention_case(name, B, heads, Lq, Lk, D, Dv, mask_kind, seed):
    torch.manual_seed(seed)
    q = torch.randn(B, heads, Lq, D, requires_grad=True)
    k = torch.randn(B, heads, Lk, D, requires_grad=True)
    v = torch.randn(B, heads, Lk, Dv, requires_grad=True)
    t = {}
    causal = False
    if mask_kind == "padding":  # variable-length batch: key padding mask [B, 1, 1, Lk]
        lengths = [Lk - 2 * i for i in range(B)]
        mask = torch.arange(Lk)[None, :] < torch.tensor(lengths)[:, None]
        mask = mask[:, None, None, :]
        t["mask"] = mask
    elif mask_kind == "float_causal":  # additive bias [Lq, Lk] plus the causal rule
        mask = (0.5 * torch.randn(Lq, Lk)).requires_grad_(True)
        causal = True
        t["mask"] = mask
    else:
        mask = None
    out = attention(q, k, v, mask, causal)
    dout = torch.randn_like(out)
    out.backward(dout)
    t.update({"q": q, "k": k, "v": v, "out": out, "dout": dout,
              "dq": q.grad, "dk": k.grad, "dv": v.grad})
    if mask_kind == "float_causal":
        t["dmask"] = mask.grad
    save(t, os.path.join(OUT, f"sequence_{name}.safetensors"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    lstm_case("lstm_cell_bias", B=3, IN=5, H=7, bias=True, seed=1)
    lstm_case("lstm_cell_nobias", B=2, IN=4, H=16, bias=False, seed=2)
    attention_case("attention_padding", B=3, heads=2, Lq=5, Lk=7, D=8, Dv=6,
                   mask_kind="padding", seed=3)
    attention_case("attention_float_causal", B=2, heads=3, Lq=6, Lk=6, D=4, Dv=4,
                   mask_kind="float_causal", seed=4)
    print("torch", torch.__version__, "wrote goldens to", OUT)
