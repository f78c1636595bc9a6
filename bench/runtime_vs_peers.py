#!/usr/bin/env python3
"""finch's fp32 and int8 programs against ONNX Runtime, LiteRT/XNNPACK and PyTorch 2.x: same weights, equal
predictions checked, latency at batch 1 and 8, threads 1 and 2, alternating rounds (issue 22's table).

Models: ResNet-20 and MobileNetV2 (the zoo's CIFAR variants, 1×28×28) trained on Fashion-MNIST by finch's
train_cifar (reused from --weights-root when present), and MobileNet v1 α 0.5 at 3×224×224 with seeded
weights. From the one safetensors file per model: finch `compile`/`quantize --mode static` (MobileNet v1:
`bench-program --checkpoint`), the PyTorch twin (bench/torch_int8_peer.py's modules, loaded strictly),
its `torch.onnx.export` and ORT QDQ int8, and a Keras twin converted to TFLite fp32 and full-integer int8.
Calibration: the same first --calib Fashion-MNIST training images for finch, ORT and LiteRT.

usage: bench/runtime_vs_peers.py [--finch build/bin/finch] [--out out/runtime-vs-peers]
           [--weights-root out/peer-weights] [--models ...] [--threads 1 2] [--batches 1 8]
           [--rounds 3] [--iters 300] [--warmup 50] [--check 500] [--skip-check] [--skip-timing]
Needs the peer venv (numpy, onnx, onnxruntime, ai-edge-litert, tensorflow-cpu, torch, torchvision, pillow):
run it with that venv's python. Writes <out>/runtime_vs_peers.md and .json; models in <out>/models.
"""
import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from peers import timing  # noqa: E402
from peers.prepare import MODELS, prepare  # noqa: E402


def versions():
    from importlib.metadata import PackageNotFoundError, version
    v = {"python": platform.python_version()}
    for pkg in ("torch", "torchvision", "onnxruntime", "onnx", "ai-edge-litert", "tensorflow-cpu", "keras", "numpy"):
        try:
            v[pkg] = version(pkg)
        except PackageNotFoundError:
            v[pkg] = "not installed"
    return v


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return cpu, os.cpu_count(), " ".join(open("/proc/loadavg").read().split()[:3])


def git_commit(finch):
    d = os.path.dirname(os.path.abspath(finch))
    p = subprocess.run(["git", "-C", d, "describe", "--always", "--dirty"], capture_output=True, text=True)
    return p.stdout.strip() or "unknown commit"


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--finch", default=os.path.join(HERE, "..", "build", "bin", "finch"),
                    help="the finch binary to measure (train_cifar is taken from the same folder)")
    ap.add_argument("--out", default="out/runtime-vs-peers")
    ap.add_argument("--work", help="model files (default <out>/models); reused when present")
    ap.add_argument("--weights-root", default="out/peer-weights", help="<root>/<model>/model.safetensors")
    ap.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "int8"], help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--batch-iters", type=int, nargs=2, metavar=("ITERS", "WARMUP"),
                    help="timed runs and warm-ups at batch > 1 (default: --iters and --warmup)")
    ap.add_argument("--calib", type=int, default=512, help="calibration images (first N of Fashion-MNIST train)")
    ap.add_argument("--check", type=int, default=500, help="test images of the agreement check")
    ap.add_argument("--train-epochs", nargs=2, action="append", metavar=("MODEL", "N"),
                    help="train_cifar epochs when weights are missing (default resnet20 3, mobilenetv2 1)")
    ap.add_argument("--train-limit", type=int, default=0, help="train_cifar --limit-train (0: all 60000)")
    ap.add_argument("--skip-check", action="store_true")
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--child", choices=["ort", "litert", "torch"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.finch = os.path.abspath(a.finch)
    a.out = os.path.abspath(a.out)
    a.work = os.path.abspath(a.work or os.path.join(a.out, "models"))
    a.weights_root = os.path.abspath(a.weights_root)
    epochs = {"resnet20": "3", "mobilenetv2": "1"}
    epochs.update({m: n for m, n in (a.train_epochs or [])})
    a.train_epochs = epochs
    return a


def main():
    a = parse()
    if a.child:
        return timing.child_main(a)
    for tool in (a.finch, os.path.join(os.path.dirname(a.finch), "train_cifar")):
        if not os.path.exists(tool):
            sys.exit(f"runtime_vs_peers: {tool} does not exist; build it first "
                     "(cmake --build build --target finch train_cifar) or pass --finch")
    os.makedirs(a.out, exist_ok=True)
    cpu, ncpu, load0 = machine()
    t0 = time.time()
    info = prepare(a)
    print(f"models ready in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    check_rows, check_extra = [], {}
    if not a.skip_check:
        from peers.check import check
        check_rows, check_extra = check(a, info)
        for r in check_rows:
            print(f"check {r['model']:<13}{r['runtime']:<7}{r['precision']:<5} agree {100 * r['agree']:5.1f} %  "
                  f"max|dlogit| {r['max_abs_logit_diff']:.2e}", file=sys.stderr, flush=True)
            bad = r["precision"] == "fp32" and r["agree"] < 0.99
            if bad:
                sys.exit(f"runtime_vs_peers: {r['runtime']} fp32 agrees with {r['reference']} on only "
                         f"{100 * r['agree']:.1f} % of {r['model']}'s images; expected ≥ 99 % (a conversion bug)")
    rows = []
    script = os.path.abspath(__file__)
    iters, warmup = a.iters, a.warmup
    if not a.skip_timing:
        for b in a.batches:
            a.iters, a.warmup = (a.batch_iters or (iters, warmup)) if b > 1 else (iters, warmup)
            for rnd in range(a.rounds):
                for t in a.threads:
                    got = timing.run_finch(a, info, t, a.models, [b])
                    for kind in ("ort", "litert", "torch"):
                        got += timing.run_child(script, kind, t, a, a.models, [b])
                    for r in got:
                        r["round"], r["warmup"] = rnd, a.warmup
                    rows += got
                    print(f"batch {b} round {rnd + 1}/{a.rounds} threads {t}: " +
                          ", ".join(f"{r['runtime']} {r['model']} {r['precision']} {r['p50']:.3f}" for r in got),
                          file=sys.stderr, flush=True)
    meta = {"command": " ".join(shlex.quote(x) for x in [sys.executable, *sys.argv]), "finch": a.finch,
            "finch_commit": git_commit(a.finch), "cpu": cpu, "nproc": ncpu, "loadavg_start": load0,
            "loadavg_end": machine()[2], "versions": versions(), "rounds": a.rounds, "iters": iters,
            "batch_iters": a.batch_iters, "warmup": warmup,
            "models": {m: {k: info[m][k] for k in ("weights", "weights_kind", "input", "calib_images", "calib_source")}
                       for m in a.models}}
    from peers.report import markdown
    md = markdown(meta, check_rows, check_extra, rows, a.models, a.batches if not a.skip_timing else [], a.threads)
    for name, text in (("runtime_vs_peers.md", md),
                       ("runtime_vs_peers.json", json.dumps({"meta": meta, "check": check_rows, "check_extra": check_extra,
                                                              "latency": rows}, indent=1))):
        p = os.path.join(a.out, name)
        with open(p + ".tmp", "w") as fh:
            fh.write(text)
        os.replace(p + ".tmp", p)
    print(md)


if __name__ == "__main__":
    main()
