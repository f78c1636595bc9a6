#!/usr/bin/python3
"""finch int8 programs against PyTorch's best int8 engine, batch-1 latency, side by side in one run.

For each model and thread count this times, in one session and alternating sides:
  finch fp32 and int8 programs        `finch bench PROGRAM --batch 1 --threads T` (median of --iters)
  PyTorch fp32 (eager) and int8       FX graph mode static quantization (prepare_fx / convert_fx,
                                      default qconfig mapping of the engine, BN folded and conv+relu
                                      fused by FX), calibrated on --calib random batches, per engine
                                      (onednn, fbgemm, x86, qnnpack where the build has them); the
                                      fastest engine is reported
and prints: model, threads, finch fp32, finch int8, torch fp32, torch int8 (engine),
finch int8 / torch int8 (below 1.0: finch faster), finch int8 / finch fp32.

The programs come from bench/int8_speed.sh (run it first, same --dir): <dir>/<model>-fp32.finch and
<dir>/<model>-int8.finch. Models: resnet20, resnet18 (CIFAR variant), mobilenetv2 (CIFAR variant),
all 1x28x28 like the trained Fashion-MNIST ones, and mobilenet_v1 (alpha 0.5, 3x224x224, stride-2
stem). The torch models load finch's safetensors where --weights names them (names follow
PyTorch's state_dict); otherwise torch's own random init — latency does not depend on the values,
and the table says which.

usage: bench/torch_int8_peer.py [--dir out/int8-speed] [--build build] [--models resnet20 ...]
                                [--threads 1 2] [--iters 200] [--warmup 20] [--json FILE]
Runs with Debian's python3-torch 1.13 (/usr/bin/python3). Its fp32 GEMMs go to the system OpenBLAS,
which torch.set_num_threads does not govern, so OPENBLAS_NUM_THREADS is set per run (the script
re-executes itself per thread count with that variable set before torch is imported).
"""
import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ["resnet20", "resnet18", "mobilenetv2", "mobilenet_v1"]
INPUT = {"resnet20": (1, 28, 28), "resnet18": (1, 28, 28), "mobilenetv2": (1, 28, 28), "mobilenet_v1": (3, 224, 224)}
# finch's trained Fashion-MNIST weights (main checkout, read only), when present.
WEIGHTS = {"resnet20": "out/resnet20-15ep/model.safetensors", "resnet18": "out/resnet18-1ep/model.safetensors",
           "mobilenetv2": "out/mnv2-3ep/model.safetensors"}


# ---- the torch models: module names as finch's models/*.cc (which follow torchvision) ----

def torch_model(name, in_ch, classes=10):
    import torch.nn as nn
    from torchvision.models import mobilenet_v2
    from torchvision.models.resnet import BasicBlock, resnet18

    class ResNetCifar(nn.Module):
        """He et al. CIFAR ResNet-20: 3 stages of 16/32/64, 1x1-conv+BN downsample (finch's resnet20)."""

        def __init__(self, depth):
            super().__init__()
            n = (depth - 2) // 6
            self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU(inplace=True)
            self.inplanes = 16
            self.layer1, self.layer2, self.layer3 = self._make(16, n, 1), self._make(32, n, 2), self._make(64, n, 2)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(64, classes)

        def _make(self, planes, n, stride):
            layers = []
            for i in range(n):
                s, ds = (stride if i == 0 else 1), None
                if s != 1 or self.inplanes != planes:
                    ds = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, s, bias=False), nn.BatchNorm2d(planes))
                layers.append(BasicBlock(self.inplanes, planes, s, ds))
                self.inplanes = planes
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            return self.fc(self.avgpool(self.layer3(self.layer2(self.layer1(x)))).flatten(1))

    def make_divisible(v, d=8):
        n = max(d, int(v + d / 2) // d * d)
        return n + d if n < 0.9 * v else n

    class MobileNetV1(nn.Module):
        """finch's models/mobilenet_v1.cc: stem conv-BN-ReLU6, 13 dw/pw blocks, avg pool, Linear."""

        def __init__(self, width, cifar=False):
            super().__init__()
            blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
            c = make_divisible(32 * width)
            feats = [nn.Sequential(nn.Conv2d(in_ch, c, 3, 1 if cifar else 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU6())]
            for out_c, s in blocks:
                out = make_divisible(out_c * width)
                feats.append(nn.Sequential(nn.Conv2d(c, c, 3, s, 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU6(),
                                           nn.Conv2d(c, out, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU6()))
                c = out
            self.features = nn.Sequential(*feats)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(c, classes)

        def forward(self, x):
            return self.classifier(self.avgpool(self.features(x)).flatten(1))

    if name == "resnet20":
        return ResNetCifar(20)
    if name == "resnet18":  # CIFAR variant: 3x3 stride-1 conv1, no max pool
        m = resnet18(num_classes=classes)
        m.conv1 = nn.Conv2d(in_ch, 64, 3, 1, 1, bias=False)
        m.maxpool = nn.Identity()
        return m
    if name == "mobilenetv2":  # CIFAR variant: stride 1 in the stem and the second stage
        m = mobilenet_v2(num_classes=classes)
        m.features[0][0] = nn.Conv2d(in_ch, 32, 3, 1, 1, bias=False)
        m.features[2].conv[1][0].stride = (1, 1)
        return m
    if name == "mobilenet_v1":
        return MobileNetV1(0.5)
    raise SystemExit(f"torch_int8_peer.py: unknown model {name}; expected one of {', '.join(MODELS)}")


def load_safetensors(path):
    """finch's weights as torch tensors: the project's peer reader (../shared/tools/peer/st.py)."""
    sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "tools", "peer"))
    import st
    return st.load(path)


def time_ms(f, x, iters, warmup):
    import torch
    with torch.no_grad():
        for _ in range(warmup):
            f(x)
        ms = []
        for _ in range(iters):
            t = time.perf_counter()
            f(x)
            ms.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ms)


def torch_side(a):
    """Child mode (OPENBLAS_NUM_THREADS already set): one JSON line per model for --threads[0]."""
    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    threads = a.threads[0]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    for name in a.models:
        c, h, w = INPUT[name]
        m = torch_model(name, c)
        weights = "random init"
        wpath = os.path.join(a.weights_root, WEIGHTS[name]) if name in WEIGHTS else ""
        if wpath and os.path.exists(wpath):
            sd = {k: v for k, v in load_safetensors(wpath).items()}
            try:
                m.load_state_dict(sd, strict=True)
                weights = wpath
            except RuntimeError as e:
                weights = "random init (finch weights did not load: " + str(e).splitlines()[0][:80] + ")"
        m.eval()
        x = torch.randn(1, c, h, w)
        row = {"model": name, "threads": threads, "weights": weights,
               "torch_fp32_ms": time_ms(m, x, a.iters, a.warmup), "engines": {}}
        for eng in ("onednn", "fbgemm", "x86", "qnnpack"):
            if eng not in torch.backends.quantized.supported_engines:
                continue
            try:
                torch.backends.quantized.engine = eng
                q = prepare_fx(copy.deepcopy(m), get_default_qconfig_mapping(eng), (x,))
                with torch.no_grad():
                    for _ in range(a.calib):
                        q(torch.randn(8, c, h, w))
                q = convert_fx(q)
                row["engines"][eng] = time_ms(q, x, a.iters, a.warmup)
            except Exception as e:  # an engine this build cannot run: say so, keep the others
                row["engines"][eng] = None
                print(f"torch {name} {eng}: failed: {str(e)[:150]}", file=sys.stderr)
        print(json.dumps(row), flush=True)


def finch_ms(a, prog, threads):
    out = os.path.join(a.dir, "peer-bench.json")
    cmd = [os.path.join(a.build, "bin", "finch"), "bench", prog, "--batch", "1", "--threads", str(threads),
           "--iters", str(a.iters), "--warmup", str(a.warmup), "--max-seconds", str(a.max_seconds), "--json", out]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
    return json.load(open(out))["latency_ms_median"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default="out/int8-speed", help="where bench/int8_speed.sh wrote the programs")
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=10, help="finch bench: stop timing after this long")
    ap.add_argument("--calib", type=int, default=4, help="random calibration batches of 8 for PyTorch")
    ap.add_argument("--weights-root", default=os.environ.get("FINCH_WEIGHTS_ROOT", "/work/main"),
                    help="folder holding out/<run>/model.safetensors (finch's trained weights)")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_child:
        return torch_side(a)
    for m in a.models:
        for kind in ("fp32", "int8"):
            p = os.path.join(a.dir, f"{m}-{kind}.finch")
            if not os.path.exists(p):
                sys.exit(f"torch_int8_peer.py: {p} does not exist; run bench/int8_speed.sh --out {a.dir} first")
    rows = []
    hdr = (f"{'model':<13}{'thr':>4}{'finch fp32':>11}{'finch int8':>11}{'torch fp32':>11}{'torch int8':>11}"
           f"{'engine':>8}{'f8/t8':>7}{'f8/f32':>7}  torch weights")
    print(hdr)
    for t in a.threads:
        # finch first, then the torch child for the same thread count, then finch again: the
        # finch figure is the mean of the two, so drift during the torch run cancels to first order.
        f1 = {m: (finch_ms(a, os.path.join(a.dir, f"{m}-fp32.finch"), t),
                  finch_ms(a, os.path.join(a.dir, f"{m}-int8.finch"), t)) for m in a.models}
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(t), OMP_NUM_THREADS=str(t))
        cmd = ["/usr/bin/python3", os.path.abspath(__file__), "--torch-child", "--threads", str(t), "--models",
               *a.models, "--iters", str(a.iters), "--warmup", str(a.warmup), "--calib", str(a.calib),
               "--weights-root", a.weights_root]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            sys.exit(f"the PyTorch side failed: {p.stderr.strip()[-600:]}")
        sys.stderr.write(p.stderr)
        torch_rows = {r["model"]: r for r in map(json.loads, p.stdout.strip().splitlines())}
        for m in a.models:
            f2 = (finch_ms(a, os.path.join(a.dir, f"{m}-fp32.finch"), t),
                  finch_ms(a, os.path.join(a.dir, f"{m}-int8.finch"), t))
            r = torch_rows[m]
            ok = {e: v for e, v in r["engines"].items() if v is not None}
            eng = min(ok, key=ok.get) if ok else "none"
            t8 = ok.get(eng, float("nan"))
            f32, f8 = (f1[m][0] + f2[0]) / 2, (f1[m][1] + f2[1]) / 2
            row = {"model": m, "threads": t, "finch_fp32_ms": f32, "finch_int8_ms": f8,
                   "torch_fp32_ms": r["torch_fp32_ms"], "torch_int8_ms": t8, "torch_int8_engine": eng,
                   "torch_int8_engines_ms": r["engines"], "finch_int8_over_torch_int8": f8 / t8,
                   "finch_int8_over_finch_fp32": f8 / f32, "torch_weights": r["weights"]}
            rows.append(row)
            print(f"{m:<13}{t:>4}{f32:>11.3f}{f8:>11.3f}{r['torch_fp32_ms']:>11.3f}{t8:>11.3f}{eng:>8}"
                  f"{f8 / t8:>7.2f}{f8 / f32:>7.2f}  {r['weights']}", flush=True)
    print("(batch-1 medians in ms; f8/t8 = finch int8 / torch int8, below 1.0: finch faster)")
    if a.json:
        with open(a.json + ".tmp", "w") as fh:
            json.dump(rows, fh, indent=1)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
