#!/usr/bin/python3
"""Writes tests/golden/data/transform_goldens.safetensors: bilinear resizes and rotations from
PyTorch/torchvision, read by tests/data/test_transforms.cc without Python.

Cases (name.x input [C, H, W] f32, name.y result):
  resize_down:  [3, 7, 9]  -> [4, 5]   F.interpolate(bilinear, align_corners=False, antialias=False)
  resize_up:    [2, 5, 6]  -> [11, 13]
  resize_mixed: [1, 6, 6]  -> [4, 9]   (down in H, up in W, non-integer scales)
  rotate_30:    [3, 8, 10] rotated 30 degrees   torchvision rotate(BILINEAR, fill zero)
  rotate_m17:   [1, 9, 9]  rotated -17.5 degrees
Run: /usr/bin/python3 tests/golden/make_transform_goldens.py
"""
import os
import sys

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

sys.path.insert(0, "/work/shared/tools/peer")
import st  # noqa: E402

torch.manual_seed(20261122)
out = {}
for name, shape, size in [("resize_down", (3, 7, 9), (4, 5)), ("resize_up", (2, 5, 6), (11, 13)),
                          ("resize_mixed", (1, 6, 6), (4, 9))]:
    x = torch.rand(shape)
    out[name + ".x"] = x
    out[name + ".y"] = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False,
                                     antialias=False)[0].contiguous()
for name, shape, angle in [("rotate_30", (3, 8, 10), 30.0), ("rotate_m17", (1, 9, 9), -17.5)]:
    x = torch.rand(shape)
    out[name + ".x"] = x
    out[name + ".y"] = TF.rotate(x, angle, interpolation=InterpolationMode.BILINEAR).contiguous()
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "transform_goldens.safetensors")
st.save(out, path)
print("wrote", path)
