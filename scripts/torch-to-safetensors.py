#!/usr/bin/env python3
"""A PyTorch checkpoint (.pt/.pth) as a safetensors file for train_cifar --initial-checkpoint.

    scripts/torch-to-safetensors.py mobilenet_v2-b0353104.pth out/mnv2-imagenet.safetensors \\
        [--model mobilenetv2 --width 1.0]

Reads what torch.save wrote: a state_dict, a dict holding one under "state_dict", "model",
"model_state_dict" or "state_dict_ema" (timm, torchvision's reference scripts, Lightning), or a
whole pickled nn.Module. A "module." prefix on every name (DataParallel / DDP) is dropped. Names
are kept as they are: finch's zoo uses torchvision's state_dict names (ResNet-18/34/50,
MobileNetV2; MobileNet v1 has no torchvision model, finch's names are in models/mobilenet_v1.h),
so no renaming is needed, and train_cifar refuses a file whose names do not match.

--model/--width also record finch's metadata (model, width, stem "imagenet": torchvision's
networks have the ImageNet stem), so finch compile/quantize read the file directly.
Floating tensors stay in their dtype (f16/bf16/f64 are converted on load); anything that is not a
tensor is skipped and listed. The output is written to a temporary name and renamed.
Needs only torch (Debian's python3-torch 1.13 has no safetensors package; the format is written
here: an 8-byte little-endian header length, the JSON header, the raw tensor bytes).
"""
import argparse
import json
import os
import struct
import sys

import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}
NESTED = ("state_dict", "model", "model_state_dict", "state_dict_ema")
MODELS = ("lenet5", "resnet20", "resnet32", "resnet56", "resnet18", "resnet34", "resnet50", "mobilenetv2",
          "mobilenet_v1")


def die(msg):
    print(f"torch-to-safetensors: {msg}", file=sys.stderr)
    sys.exit(1)


def state_dict_of(obj, path):
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if not isinstance(obj, dict):
        die(f"{path}: expected a state_dict (a dict of tensors) or an nn.Module, found {type(obj).__name__}")
    if not any(torch.is_tensor(v) for v in obj.values()):
        for key in NESTED:
            if isinstance(obj.get(key), (dict, torch.nn.Module)):
                return state_dict_of(obj[key], f"{path}['{key}']")
        die(f"{path}: a dict without tensors and without any of {', '.join(NESTED)} (keys: {list(obj)[:8]})")
    return obj


def save(tensors, path, metadata):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        b = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="what torch.save wrote (.pt/.pth)")
    ap.add_argument("out", help="the safetensors file to write")
    ap.add_argument("--model", choices=MODELS, help="record finch's metadata for this zoo network (stem imagenet)")
    ap.add_argument("--width", type=float, default=1.0, help="with --model: the MobileNet width multiplier")
    a = ap.parse_args()
    if not (0 < a.width <= 4):
        die(f"--width must be a multiplier in (0, 4], got {a.width}")
    if a.width != 1.0 and a.model not in ("mobilenetv2", "mobilenet_v1"):
        die("--width applies to --model mobilenetv2 or mobilenet_v1 only")
    try:
        obj = torch.load(a.checkpoint, map_location="cpu")
    except Exception as e:  # noqa: BLE001  (any unreadable file is one sentence)
        die(f"{a.checkpoint}: not a file torch.load can read ({e})")
    sd = state_dict_of(obj, a.checkpoint)
    tensors, skipped = {}, []
    for name, v in sd.items():
        if torch.is_tensor(v) and v.dtype in DTYPES:
            tensors[name] = v
        else:
            skipped.append(name)
    if not tensors:
        die(f"{a.checkpoint}: the state_dict holds no tensors")
    if all(n.startswith("module.") for n in tensors):
        tensors = {n[len("module."):]: v for n, v in tensors.items()}
    meta = {}
    if a.model:
        meta = {"model": a.model, "width": json.dumps(a.width), "stem": "imagenet", "source": os.path.basename(a.checkpoint)}
    save(tensors, a.out, meta)
    print(f"{a.out}: {len(tensors)} tensors" + (f"; skipped (not tensors): {skipped}" if skipped else ""))


if __name__ == "__main__":
    main()
