#!/usr/bin/python3
"""Goldens for train_cifar --initial-checkpoint: torchvision networks as published (ImageNet stem,
1000 classes) with the deterministic golden weights of make_model_goldens.py, and their logits.

Writes tests/golden/data/init_torchvision.safetensors: `x` (an input batch [2, 3, 48, 48]) and for
each tag below `<tag>.logits` (torchvision's eval-mode logits [2, 1000]); metadata
`<tag>.config` names the model_keys.json entry holding torchvision's state_dict names and shapes.

The weights themselves are not stored (ResNet-18 is 11M parameters): tests/apps/
test_initial_checkpoint.cc writes them, in finch's safetensors writer, under torchvision's names
and in torchvision's order from model_keys.json, with the counter-based values of
tests/models/model_golden.h, then starts finch's network from that file as train_cifar does and
compares the logits. Run with Debian's python3-torch and python3-torchvision:
  /usr/bin/python3 tests/golden/make_init_goldens.py
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_model_goldens as mg  # noqa: E402  (golden_values, CONFIGS, the peer's st writer)

TAGS = {"mobilenetv2_w0.5": "mobilenetv2_c3_k1000_w0.5", "resnet18": "resnet18_c3_k1000"}


def main():
    torch.set_num_threads(2)
    x = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(mg.SEED + 19))
    out, meta = {"x": x}, {}
    for tag, config in TAGS.items():
        torch.manual_seed(0)
        m = mg.CONFIGS[config]()
        mg.load_golden_weights(m)
        m.eval()
        with torch.no_grad():
            out[tag + ".logits"] = m(x)
        meta[tag + ".config"] = config
    path = os.path.join(mg.OUT, "init_torchvision.safetensors")
    mg.st.save(out, path, metadata=meta)
    print("wrote", path, meta)


if __name__ == "__main__":
    main()
