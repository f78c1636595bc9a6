#!/usr/bin/python3
"""Goldens for "a model trained in PyTorch predicts the same in finch": ResNet-20 and the CIFAR
MobileNetV2 (shared/tools/peer/models.py, 1×28×28 input, 10 classes) trained briefly in PyTorch
on real Fashion-MNIST, exported as a user would (`model.half().state_dict()` to safetensors), and
PyTorch's eval-mode logits on the first 300 test images.

Writes into tests/golden/data/:
  trained_fmnist_test300.safetensors  images u8 [300, 28, 28] and labels u8 [300]: the first 300
                                      images of Fashion-MNIST's t10k set, as in the IDX files.
  trained_<model>.safetensors         the trained state_dict in fp16, PyTorch names only (so it
                                      loads as a checkpoint with no conversion step).
  trained_<model>_logits.safetensors  PyTorch's logits f32 [300, 10] for those weights (fp16
                                      values computed in fp32), inputs normalized with the
                                      Fashion-MNIST mean/std 0.2860/0.3530.
fp16 keeps the checked-in weights small (MobileNetV2: 2.2M parameters); both sides compute with
exactly the same values. tests/apps/test_pytorch_trained.cc runs `train_cifar --eval-only` on
them. Needs Debian's python3-torch, python3-torchvision and dataset-fashion-mnist:
  /usr/bin/python3 tests/golden/make_trained_goldens.py
"""
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402  (puts shared/tools/peer on sys.path)
import fmnist  # noqa: E402
import models as peer  # noqa: E402

N_TEST = 300
# Training budget per model (images of one pass, in order after a seeded shuffle): enough for
# trained-looking weights and BN statistics, small enough to regenerate in a few minutes.
TRAIN_IMAGES = {"resnet20": 20000, "mobilenetv2": 6400}


def build(name):
    return peer.ResNetCifar(20, 10, 1) if name == "resnet20" else peer.mobilenetv2_cifar(10, 1)


def train(model, x, y, n):
    g = torch.Generator().manual_seed(7)
    order = torch.randperm(x.shape[0], generator=g)[:n]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    model.train()
    for i in range(0, n, 64):
        idx = order[i:i + 64]
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()


def main():
    torch.manual_seed(2024)
    torch.set_num_threads(1)
    xtr, ytr = fmnist.load("train")
    xte, yte = fmnist.load("test")
    raw = torch.round((xte[:N_TEST, 0] * fmnist.STD + fmnist.MEAN) * 255).to(torch.uint8)
    # The stored bytes must be the file's bytes: check the round trip of fmnist's normalization.
    x = (raw.unsqueeze(1).float() / 255 - fmnist.MEAN) / fmnist.STD
    assert torch.equal(x, xte[:N_TEST]), "normalization round trip changed an image"
    golden_io.save({"images": raw, "labels": yte[:N_TEST].to(torch.uint8)},
                   os.path.join(golden_io.DATA, "trained_fmnist_test300.safetensors"))
    for name in ("resnet20", "mobilenetv2"):
        model = build(name)
        t = time.time()
        train(model, xtr, ytr, TRAIN_IMAGES[name])
        half = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
        model.eval()
        with torch.no_grad():
            logits = model(x)
        top2 = logits.topk(2, dim=1).values
        acc = (logits.argmax(1) == yte[:N_TEST]).float().mean().item()
        golden_io.save(half, os.path.join(golden_io.DATA, f"trained_{name}.safetensors"), {"model": name})
        golden_io.save({"logits": logits}, os.path.join(golden_io.DATA, f"trained_{name}_logits.safetensors"))
        print(f"{name}: trained on {TRAIN_IMAGES[name]} images in {time.time() - t:.0f} s, "
              f"accuracy on the {N_TEST} images {acc:.4f}, "
              f"smallest top-2 logit margin {(top2[:, 0] - top2[:, 1]).min().item():.3g}")


if __name__ == "__main__":
    main()
