#!/usr/bin/python3
"""End-to-end parity goldens: a small CNN and a small MLP trained 20 steps in PyTorch 1.13.

For each (model, optimizer) pair this writes tests/golden/data/parity_<model>_<opt>.safetensors
holding the fixed data (x, y), the initial state dict ("init.<name>"), the loss of every step
("losses") and the final state dict ("final.<name>"). tests/autograd/test_parity.cc rebuilds the
same model in finch from "init.*", trains it the same way and compares. Run with Debian's
python3-torch: /usr/bin/python3 tests/golden/make_parity_goldens.py
"""
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
STEPS = 20


def cnn():
    # conv -> batch norm -> relu -> max pool -> flatten -> linear; input [8, 1, 8, 8], 3 classes.
    # The conv has no bias, as before every BN in ResNets: BN subtracts the batch mean, so such a
    # bias gets a gradient of pure rounding noise, and Adam (which divides by the gradient's
    # magnitude) turns that noise into +-lr steps whose signs differ between any two libraries.
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3))


def mlp():
    # linear -> layer norm -> gelu -> linear; input [8, 6], 3 classes
    return nn.Sequential(nn.Linear(6, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 3))


def optimizer(name, params):
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-4)
    return torch.optim.AdamW(params, lr=0.01, betas=(0.9, 0.999), weight_decay=0.01)


def run(model_name, opt_name):
    torch.manual_seed(0)
    model = cnn() if model_name == "cnn" else mlp()
    x = torch.randn(8, 1, 8, 8) if model_name == "cnn" else torch.randn(8, 6)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 1, 0])
    out = {"x": x, "y": y}
    out.update({"init." + k: v.clone() for k, v in model.state_dict().items()})
    opt = optimizer(opt_name, model.parameters())
    losses = []
    model.train()
    for _ in range(STEPS):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out["losses"] = torch.tensor(losses, dtype=torch.float32)
    out.update({"final." + k: v.clone() for k, v in model.state_dict().items()})
    path = os.path.join(OUT, f"parity_{model_name}_{opt_name}.safetensors")
    golden_io.save(out, path, {"generator": "tests/golden/make_parity_goldens.py", "torch": torch.__version__})
    print(path, "losses", losses[0], "->", losses[-1])


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for m in ("cnn", "mlp"):
        for o in ("sgd", "adamw"):
            run(m, o)
