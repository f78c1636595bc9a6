#!/usr/bin/python3
"""Writes tests/golden/data/nn_goldens.safetensors: small torch.nn models run forward and
backward by PyTorch 1.13, for tests/autograd/test_nn_layers.cc (which builds the same models
from finch::nn modules, loads torch's state_dict by name, and compares).

Per model {m}: {m}.sd.<state_dict name> (torch's initial state dict, I64 num_batches_tracked
included), {m}.x input, {m}.w the output weights (backward runs with grad_output = w, i.e. loss
= sum(y * w)), {m}.y training-mode output, {m}.dx input gradient, {m}.grad.<param name>
parameter gradients, {m}.after.<buffer name> buffers after the training forward, {m}.y_eval
eval-mode output after that.
Run: /usr/bin/python3 tests/golden/make_nn_goldens.py
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402



def save_safetensors(tensors, path, metadata):
    golden_io.save(tensors, path, metadata)

torch.manual_seed(2024)
out = {}


def record(name, model, x):
    for k, v in model.state_dict().items():
        out[f"{name}.sd.{k}"] = v.clone()
    model.train()
    if x.is_floating_point():
        x = x.clone().requires_grad_(True)
    y = model(x)
    w = torch.randn_like(y)
    y.backward(w)
    out[f"{name}.x"] = x.detach()
    out[f"{name}.w"] = w
    out[f"{name}.y"] = y.detach()
    if x.is_floating_point():
        out[f"{name}.dx"] = x.grad
    for k, p in model.named_parameters():
        out[f"{name}.grad.{k}"] = p.grad
    for k, b in model.named_buffers():
        out[f"{name}.after.{k}"] = b.clone()
    model.eval()
    with torch.no_grad():
        out[f"{name}.y_eval"] = model(x.detach())


# conv_bn: Conv2d → BatchNorm2d → ReLU → MaxPool2d → Flatten → Linear
record("conv_bn", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 5)),
       torch.randn(2, 3, 6, 6))
# grouped: Conv2d(groups, stride, no bias) → AvgPool2d → LeakyReLU → AdaptiveAvgPool2d → Flatten → Tanh
record("grouped", nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2, bias=False),
                                nn.AvgPool2d(2, stride=1), nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d((2, 1)),
                                nn.Flatten(), nn.Tanh()),
       torch.randn(3, 4, 9, 8))
# seq1d: Conv1d → BatchNorm1d(momentum=None: cumulative average) → Hardswish → Sigmoid
record("seq1d", nn.Sequential(nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2),
                              nn.BatchNorm1d(6, momentum=None), nn.Hardswish(), nn.Sigmoid()),
       torch.randn(2, 4, 11))
# emb: Embedding(padding_idx) → LayerNorm → GELU(tanh) → Linear → SiLU → ReLU6 → GELU
record("emb", nn.Sequential(nn.Embedding(10, 6, padding_idx=0), nn.LayerNorm(6), nn.GELU(approximate="tanh"),
                            nn.Linear(6, 3), nn.SiLU(), nn.ReLU6(), nn.GELU()),
       torch.tensor([[1, 0, 3, 9], [0, 2, 2, 7]]))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "nn_goldens.safetensors")
save_safetensors(out, path, {"generator": "tests/golden/make_nn_goldens.py", "torch": torch.__version__})
print(f"wrote {len(out)} tensors to {path} ({os.path.getsize(path)} bytes)")
