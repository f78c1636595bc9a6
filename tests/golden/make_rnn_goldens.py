#!/usr/bin/python3
"""Golden data for the recurrent layers (nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell) from PyTorch 1.13.

Run with Debian's torch:  /usr/bin/python3 tests/golden/make_rnn_goldens.py
Writes tests/golden/data/rnn_<case>.safetensors, read by tests/autograd/test_rnn_golden.cc.
Each file holds the layer's state_dict under "p.<name>", the input x, the initial states h0/c0
(when the case gives them), lengths (variable-length cases: unsorted, through
pack_padded_sequence(enforce_sorted=False) and pad_packed_sequence(total_length=T)), the
outputs out/h_n/c_n, the fixed random upstream gradients gout/gh/gc, and the gradients of the
loss sum(out*gout) + sum(h_n*gh) + sum(c_n*gc) with respect to x ("dx"), h0/c0 ("dh0"/"dc0")
and every parameter ("g.<name>"). The case table must match the one in the C++ test.
"""
import os
import sys

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

B, T, IN, H = 3, 5, 4, 6

# name: (mode, num_layers, bidirectional, batch_first, bias, proj_size, with_init, lengths)
CASES = {
    "lstm_1l": ("LSTM", 1, False, False, True, 0, False, None),
    "lstm_nobias": ("LSTM", 1, False, True, False, 0, True, None),
    "lstm_2l_bi_bf_init": ("LSTM", 2, True, True, True, 0, True, None),
    "lstm_2l_proj_bi": ("LSTM", 2, True, False, True, 3, True, None),
    "lstm_2l_bi_varlen": ("LSTM", 2, True, True, True, 0, True, [3, 5, 2]),
    "lstm_proj_bi_varlen": ("LSTM", 1, True, False, True, 4, False, [2, 4, 4]),
    "gru_1l": ("GRU", 1, False, False, True, 0, False, None),
    "gru_nobias_bf_init": ("GRU", 1, False, True, False, 0, True, None),
    "gru_2l_bi_init": ("GRU", 2, True, False, True, 0, True, None),
    "gru_2l_bi_bf_varlen": ("GRU", 2, True, True, True, 0, True, [4, 1, 5]),
}


def rnn_case(name, mode, L, bi, bf, bias, proj, with_init, lengths, seed):
    torch.manual_seed(seed)
    cls = torch.nn.LSTM if mode == "LSTM" else torch.nn.GRU
    kw = {"proj_size": proj} if mode == "LSTM" else {}
    m = cls(IN, H, num_layers=L, bias=bias, batch_first=bf, bidirectional=bi, **kw)
    D = 2 if bi else 1
    P = proj if proj > 0 else H
    x = torch.randn((B, T, IN) if bf else (T, B, IN), requires_grad=True)
    t = {"x": x}
    h0 = c0 = None
    if with_init:
        h0 = torch.randn(L * D, B, P, requires_grad=True)
        t["h0"] = h0
        if mode == "LSTM":
            c0 = torch.randn(L * D, B, H, requires_grad=True)
            t["c0"] = c0
    state = None
    if with_init:
        state = (h0, c0) if mode == "LSTM" else h0
    if lengths is not None:
        lens = torch.tensor(lengths, dtype=torch.int64)
        t["lengths"] = lens
        packed = pack_padded_sequence(x, lens, batch_first=bf, enforce_sorted=False)
        out, st = m(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=bf, total_length=T)
    else:
        out, st = m(x, state)
    h_n, c_n = (st if mode == "LSTM" else (st, None))
    gout = torch.randn_like(out)
    gh = torch.randn_like(h_n)
    loss = (out * gout).sum() + (h_n * gh).sum()
    t.update({"out": out, "h_n": h_n, "gout": gout, "gh": gh})
    if c_n is not None:
        gc = torch.randn_like(c_n)
        loss = loss + (c_n * gc).sum()
        t.update({"c_n": c_n, "gc": gc})
    loss.backward()
    t["dx"] = x.grad
    if h0 is not None:
        t["dh0"] = h0.grad
    if c0 is not None:
        t["dc0"] = c0.grad
    for k, p in m.named_parameters():
        t["p." + k] = p
        t["g." + k] = p.grad
    golden_io.save(t, os.path.join(golden_io.DATA, f"rnn_{name}.safetensors"))


def cell_case(name, mode, bias, seed):
    torch.manual_seed(seed)
    m = (torch.nn.LSTMCell if mode == "LSTM" else torch.nn.GRUCell)(IN, H, bias=bias)
    x = torch.randn(B, IN, requires_grad=True)
    h0 = torch.randn(B, H, requires_grad=True)
    t = {"x": x, "h0": h0}
    if mode == "LSTM":
        c0 = torch.randn(B, H, requires_grad=True)
        h1, c1 = m(x, (h0, c0))
        gh, gc = torch.randn_like(h1), torch.randn_like(c1)
        ((h1 * gh).sum() + (c1 * gc).sum()).backward()
        t.update({"c0": c0, "h_n": h1, "c_n": c1, "gh": gh, "gc": gc, "dc0": c0.grad})
    else:
        h1 = m(x, h0)
        gh = torch.randn_like(h1)
        (h1 * gh).sum().backward()
        t.update({"h_n": h1, "gh": gh})
    t.update({"dx": x.grad, "dh0": h0.grad})
    for k, p in m.named_parameters():
        t["p." + k] = p
        t["g." + k] = p.grad
    golden_io.save(t, os.path.join(golden_io.DATA, f"rnn_{name}.safetensors"))


def main():
    for i, (name, c) in enumerate(CASES.items()):
        rnn_case(name, *c, seed=100 + i)
    cell_case("lstm_cell", "LSTM", True, 200)
    cell_case("gru_cell", "GRU", True, 201)
    cell_case("gru_cell_nobias", "GRU", False, 202)
    print("wrote", len(CASES) + 3, "rnn golden files to", golden_io.DATA)


if __name__ == "__main__":
    main()
