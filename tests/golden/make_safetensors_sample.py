"""Writes tests/golden/data/torch_sample.safetensors with PyTorch (one tensor per dtype, edge values).

Run with Debian's torch:  /usr/bin/python3 tests/golden/make_safetensors_sample.py
The C++ test (tests/framework/test_safetensors.cc, TorchSample) checks finch reads exactly these
values; the bit patterns of the f16/bf16 values are printed here and copied into that test.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "tools", "peer"))
sys.path.insert(0, "/work/shared/tools/peer")
import st  # noqa: E402  (the shared PyTorch-side safetensors writer)

tensors = {
    "f32": torch.tensor([[1.5, -2.25, 0.1], [3.0e38, -0.0, 1e-45]], dtype=torch.float32),
    "f64": torch.tensor([0.1, -1e300, 2.0 ** -1074], dtype=torch.float64),
    "f16": torch.tensor([0.5, -1.25, 65504.0, 6e-8], dtype=torch.float16),
    "bf16": torch.tensor([1.0, -3.5, 1e30], dtype=torch.bfloat16),
    "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
    "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
    "i16": torch.tensor([-32768, 1234, 32767], dtype=torch.int16),
    "i32": torch.tensor([-2 ** 31, 7, 2 ** 31 - 1], dtype=torch.int32),
    "i64": torch.tensor([-2 ** 63, 42, 2 ** 63 - 1], dtype=torch.int64),
    "bool": torch.tensor([[True, False], [False, True]]),
    "scalar": torch.tensor(3.25),                          # 0-d
    "empty": torch.zeros(0, 3),                            # no elements, no bytes
    "transposed": torch.arange(6.0).reshape(2, 3).t(),     # non-contiguous: written as [[0,3],[1,4],[2,5]]
}
metadata = {"format": "pt", "source": "make_safetensors_sample.py"}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "torch_sample.safetensors")
st.save(tensors, out, metadata)
print("wrote", out, os.path.getsize(out), "bytes")
print("f16 bits:", [hex(v) for v in tensors["f16"].view(torch.int16).tolist()])
print("bf16 bits:", [hex(v & 0xFFFF) for v in tensors["bf16"].view(torch.int16).tolist()])
print("f32 bits:", [hex(v & 0xFFFFFFFF) for v in tensors["f32"].view(torch.int32).flatten().tolist()])
