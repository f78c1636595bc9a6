#!/usr/bin/python3
"""Model-zoo goldens from PyTorch 1.13 / torchvision: state_dict key lists and full forward checks.

Writes into tests/golden/data/:
  model_keys.json          for each model configuration: its state_dict entries in order as
                           [name, shape] pairs, its parameter count and its named_modules() names. tests/models/ builds the
                           same configuration in finch and requires the same list, exactly.
  model_<name>.safetensors for resnet20, mobilenetv2_cifar, lenet5 and resnet18_cifar (all with
                           1 input channel and 10 classes, as for Fashion-MNIST): the input batch
                           x [2, 1, 28, 28], labels y, the eval-mode logits, the train-mode logits,
                           and after cross_entropy(train logits, y).backward(): the input gradient
                           and the gradients of the first and last weight; also the first BN's
                           running_mean after that training forward.

The weights of the full goldens are not stored (ResNet-18 alone is 11M parameters): both sides
generate them with the counter-based hash below, which tests/models/model_golden.h repeats in C++.
Every value is a small integer times a power of two, so the weights are exact in fp32 on both
sides and the comparison measures only the arithmetic. Run with Debian's python3-torch:
  /usr/bin/python3 tests/golden/make_model_goldens.py
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torchvision
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
for cand in [os.environ.get("FINCH_PEER", ""), os.path.join(HERE, "..", "..", "..", "shared", "tools", "peer"),
             os.path.join(HERE, "..", "..", "..", "..", "shared", "tools", "peer"), "/work/shared/tools/peer"]:
    if cand and os.path.exists(os.path.join(cand, "models.py")):
        sys.path.insert(0, cand)
        break
import models as peer  # noqa: E402  (the project's reference ResNet-20 / CIFAR MobileNetV2)
import st  # noqa: E402  (safetensors writer for torch 1.13)
from torchvision.models._utils import _make_divisible  # noqa: E402

OUT = os.path.join(HERE, "data")
SEED = 2024
M64 = (1 << 64) - 1


# ---- deterministic weights (mirrored by tests/models/model_golden.h) ----
def splitmix64(x):
    """SplitMix64's output function on a uint64 numpy array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def golden_values(k, name, shape):
    """Entry k (state_dict order) called `name`: integers q in [-128, 127] from the hash of
    (seed, k, element index), scaled so convs/linears look like kaiming-uniform weights and
    batch-norm parameters/statistics stay near their usual values."""
    n = int(np.prod(shape)) if len(shape) else 1
    base = (SEED * 0x1000000000000 + (k + 1) * 0x100000000) & M64
    with np.errstate(over="ignore"):
        u = splitmix64(np.uint64(base) + np.arange(n, dtype=np.uint64))
    q = (u >> np.uint64(56)).astype(np.int64) - 128
    if name.endswith("running_var"):
        v = 1.0 + (q + 128) / 256.0
    elif name.endswith("running_mean") or name.endswith("bias"):
        v = q / 512.0
    elif len(shape) == 1:  # batch-norm weight
        v = 1.0 + q / 512.0
    else:
        fan_in = n // shape[0]
        m, e = math.frexp(math.sqrt(6.0 / fan_in) / 128.0)  # x = m·2^e, m in [0.5, 1)
        v = q * math.ldexp(1.0, e - 1)  # the largest power of two <= x
    return torch.tensor(v, dtype=torch.float32).reshape(shape)


def load_golden_weights(model):
    sd = model.state_dict()
    new = {}
    for k, (name, t) in enumerate(sd.items()):
        new[name] = t if name.endswith("num_batches_tracked") else golden_values(k, name, list(t.shape))
    model.load_state_dict(new, strict=True)
    return sd


# ---- reference models ----
class LeNet5(nn.Module):
    """Modern LeNet-5 as models/lenet.h: ReLU, max pool, conv1 padding 2 for 28×28 input."""
    def __init__(self, in_ch=1, num_classes=10, input_size=28):
        super().__init__()
        pad = 2 if input_size == 28 else 0
        side = ((input_size + 2 * pad - 4) // 2 - 4) // 2
        self.conv1 = nn.Conv2d(in_ch, 6, 5, padding=pad); self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * side * side, 120); self.fc2 = nn.Linear(120, 84); self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc3(torch.relu(self.fc2(x)))


def conv_bn(i, o, s):
    return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU6(inplace=True))


def dw_sep(i, o, s):
    return nn.Sequential(nn.Conv2d(i, i, 3, s, 1, groups=i, bias=False), nn.BatchNorm2d(i), nn.ReLU6(inplace=True),
                         nn.Conv2d(i, o, 1, 1, 0, bias=False), nn.BatchNorm2d(o), nn.ReLU6(inplace=True))


class MobileNetV1(nn.Module):
    """MobileNet v1 with the names of models/mobilenet_v1.h (features.N.{0,1,3,4}, classifier)."""
    def __init__(self, in_ch=3, num_classes=1000, width=1.0, cifar=False):
        super().__init__()
        c = _make_divisible(32 * width, 8)
        layers = [conv_bn(in_ch, c, 1 if cifar else 2)]
        for o, s in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]:
            o = _make_divisible(o * width, 8); layers.append(dw_sep(c, o, s)); c = o
        self.features = nn.Sequential(*layers); self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.classifier(nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


def resnet_tv(depth, in_ch, num_classes, cifar):
    m = getattr(torchvision.models, f"resnet{depth}")(num_classes=num_classes)
    if cifar:
        m.conv1 = nn.Conv2d(in_ch, 64, 3, 1, 1, bias=False); m.maxpool = nn.Identity()
    elif in_ch != 3:
        m.conv1 = nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False)
    return m


def mobilenetv2(in_ch, num_classes, width=1.0, cifar=False):
    if cifar and width == 1.0:
        return peer.mobilenetv2_cifar(num_classes, in_ch)  # exactly the peer's model
    m = torchvision.models.mobilenet_v2(num_classes=num_classes, width_mult=width)
    stem = _make_divisible(32 * width, 8)
    if cifar or in_ch != 3:
        m.features[0][0] = nn.Conv2d(in_ch, stem, 3, 1 if cifar else 2, 1, bias=False)
    if cifar:
        m.features[2].conv[1][0].stride = (1, 1)
    return m


# name -> (constructor, finch description used in the C++ test: create() arguments)
CONFIGS = {
    "lenet5_c1_k10_s28": lambda: LeNet5(1, 10, 28),
    "lenet5_c3_k10_s32": lambda: LeNet5(3, 10, 32),
    "resnet20_c1_k10": lambda: peer.ResNetCifar(20, 10, 1),
    "resnet20_c3_k10": lambda: peer.ResNetCifar(20, 10, 3),
    "resnet32_c3_k10": lambda: peer.ResNetCifar(32, 10, 3),
    "resnet56_c3_k100": lambda: peer.ResNetCifar(56, 100, 3),
    "resnet18_c3_k1000": lambda: resnet_tv(18, 3, 1000, False),
    "resnet34_c3_k1000": lambda: resnet_tv(34, 3, 1000, False),
    "resnet50_c3_k1000": lambda: resnet_tv(50, 3, 1000, False),
    "resnet18_c1_k10_cifar": lambda: resnet_tv(18, 1, 10, True),
    "resnet50_c3_k10_cifar": lambda: resnet_tv(50, 3, 10, True),
    "mobilenetv2_c3_k1000": lambda: mobilenetv2(3, 1000),
    "mobilenetv2_c3_k1000_w0.5": lambda: mobilenetv2(3, 1000, 0.5),
    "mobilenetv2_c3_k10_w1.4": lambda: mobilenetv2(3, 10, 1.4),
    "mobilenetv2_c1_k10_cifar": lambda: mobilenetv2(1, 10, 1.0, True),
    "mobilenetv2_c3_k10_cifar_w0.35": lambda: mobilenetv2(3, 10, 0.35, True),
    "mobilenet_v1_c3_k1000": lambda: MobileNetV1(3, 1000, 1.0),
    "mobilenet_v1_c3_k1000_w0.5": lambda: MobileNetV1(3, 1000, 0.5),
    "mobilenet_v1_c1_k10_cifar_w0.25": lambda: MobileNetV1(1, 10, 0.25, True),
}

# tag -> (configuration, also store fp64 results for an fp64 run of finch)
FULL = {
    "resnet20": ("resnet20_c1_k10", True),
    "mobilenetv2_cifar": ("mobilenetv2_c1_k10_cifar", True),
    "lenet5": ("lenet5_c1_k10_s28", True),
    "resnet18_cifar": ("resnet18_c1_k10_cifar", False),  # 11M parameters: fp64 kernels too slow
}


def write_keys():
    out = {}
    for name, make in CONFIGS.items():
        torch.manual_seed(0)
        m = make()
        out[name] = {"keys": [[k, list(t.shape)] for k, t in m.state_dict().items()],
                     "num_parameters": sum(p.numel() for p in m.parameters()),
                     "modules": [n for n, _ in m.named_modules() if n]}
    with open(os.path.join(OUT, "model_keys.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


def forward_backward(m, x, y, dtype):
    """Eval logits, then train-mode logits, input gradient and first/last weight gradients of
    cross_entropy, with `m` converted to `dtype` (dropout kept off: it is random)."""
    m = m.to(dtype)
    x = x.to(dtype)
    out = {}
    m.eval()
    with torch.no_grad():
        out["logits_eval"] = m(x)
    m.train()
    for mod in m.modules():
        if isinstance(mod, nn.Dropout):
            mod.eval()
    xg = x.clone().requires_grad_(True)
    logits = m(xg)
    nn.functional.cross_entropy(logits, y).backward()
    params = [(n, p) for n, p in m.named_parameters() if p.dim() > 1]
    out["logits_train"] = logits.detach()
    out["dx"] = xg.grad
    out["grad.first"] = params[0][1].grad
    out["grad.last"] = params[-1][1].grad
    rm = [k for k in m.state_dict() if k.endswith("running_mean")]
    if rm:
        out["running_mean_after"] = m.state_dict()[rm[0]].clone()
    return out, params[0][0], params[-1][0], rm[0] if rm else ""


def self_error(a, b):
    """How far fp32 torch is from fp64 torch in the C++ test's measure: it passes with rtol 1e-4
    and atol 1e-4·max|b| exactly when this worst |a - b| / (|b| + max|b|) is <= 1e-4."""
    a, b = a.double(), b.double()
    return ((a - b).abs() / (b.abs() + b.abs().max())).max().item()


def write_full(tag, config, with_f64):
    def fresh():
        torch.manual_seed(0)
        m = CONFIGS[config]()
        load_golden_weights(m)
        return m
    m = fresh()
    sd_keys = list(m.state_dict().keys())
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(2, 1, 28, 28, generator=g)
    y = torch.tensor([3, 7])
    out = {"x": x, "y": y, "check.first_weight": m.state_dict()[sd_keys[0]].clone()}
    r32, first, last, rm = forward_backward(m, x, y, torch.float32)
    out.update(r32)
    meta = {"first_weight": sd_keys[0], "grad.first": first, "grad.last": last, "running_mean_after": rm,
            "config": config}
    # A ReLU input within rounding of its kink makes the fp32 backward a coin flip: in
    # MobileNetV2 one depthwise activation of features.13 sits 2.5e-6 from 0 and lands on the
    # other side in fp32 than in fp64, which moves the gradients before it by ~0.2%. Where torch's
    # own fp32 gradients stray more than 2e-5 (test measure) from its fp64 ones, the fp32 gradient
    # check can only be loose; the fp64 run decides.
    r64, _, _, _ = forward_backward(fresh(), x, y, torch.float64)
    worst = max(self_error(r32[k], r64[k]) for k in ("dx", "grad.first", "grad.last"))
    meta["fp32_grads_well_conditioned"] = "1" if worst < 2e-5 else "0"
    meta["fp32_grads_self_error"] = f"{worst:.3g}"
    if with_f64:
        out.update({"f64." + k: v for k, v in r64.items()})
    st.save(out, os.path.join(OUT, f"model_{tag}.safetensors"), metadata=meta)
    print(tag, meta)


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    write_keys()
    for tag, (config, with_f64) in FULL.items():
        write_full(tag, config, with_f64)
    print("wrote model goldens to", OUT)


if __name__ == "__main__":
    main()
