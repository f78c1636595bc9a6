#!/usr/bin/python3
"""Runs `finch quantize` over a grid of variants for one trained model and prints one table:
fp32 against each variant (size, accuracy, batch-1 latency, and the changes), as the seeds'
tables do. Every variant is a separate `finch quantize` run; its JSON report is kept in --out.

usage: bench/quant_compare.py --checkpoint out/resnet20-fmnist/model.safetensors --out out/quant/resnet20
           [--build build] [--variants static-fused static-unfused dynamic fp16 per-tensor
            observer-minmax observer-moving-average observer-histogram-mse observer-percentile
            observer-entropy] [--threads 1] [any other finch quantize option, e.g. --limit-test 2000]
Each variant is written as a .finch program (plus its .sim.safetensors), so `finch quantize` also
evaluates the program itself: the table shows the simulated accuracy, the program's accuracy and
on how many images their predictions agree. Sizes are the program files against the fp32
safetensors. Latencies: "ms/img" is the simulated model, "prog ms" the program on today's
kernels (the scalar reference kernels until the optimized ones land).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {
    "static-fused": ["--mode", "static"],
    "static-unfused": ["--mode", "static", "--no-fuse"],
    "dynamic": ["--mode", "dynamic"],
    "fp16": ["--mode", "fp16"],
    "per-tensor": ["--mode", "static", "--qconfig", "int8-per-tensor"],
    "weights-only": ["--mode", "static", "--qconfig", "int8-weights-only"],
    "int4-weights": ["--mode", "static", "--qconfig", "int4-weights"],
}
for obs in ["minmax", "moving-average", "histogram-mse", "percentile", "entropy"]:
    VARIANTS["observer-" + obs] = ["--mode", "static", "--observer", obs]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True, help="folder for the reports and converted models")
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--threads", type=int, default=1)
    a, extra = ap.parse_known_args()  # the rest goes to every finch quantize run
    os.makedirs(a.out, exist_ok=True)
    finch = os.path.join(a.build, "bin", "finch")
    rows, base = [], None
    for v in a.variants:
        if v not in VARIANTS:
            sys.exit(f"quant_compare.py: unknown variant {v}; expected one of {', '.join(VARIANTS)}")
        report = os.path.join(a.out, v + ".json")
        cmd = [finch, "quantize", "--checkpoint", a.checkpoint, "--out", os.path.join(a.out, v + ".finch"),
               "--report", report, "--threads", str(a.threads)] + VARIANTS[v] + extra
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
        r = json.load(open(report))
        fp32, q = r["variants"][0], r["variants"][1]
        base = base or fp32
        rows.append((v, q, fp32, r["program"]))
    print(f"{'variant':<26}{'size KB':>10}{'size ×':>8}{'accuracy':>10}{'Δ pp':>8}{'program':>10}{'agree':>12}"
          f"{'ms/img':>9}{'prog ms':>9}")
    print(f"{'fp32':<26}{base['size_bytes'] / 1024:>10.1f}{'':>8}{100 * base['accuracy']:>9.2f}%{'':>8}{'':>10}{'':>12}"
          f"{base['latency_ms']:>9.3f}{'':>9}")
    # Changes are against the fp32 model timed in the same run (the machine drifts between runs).
    for v, q, f, p in rows:
        print(f"{v:<26}{q['size_bytes'] / 1024:>10.1f}{q['size_bytes'] / f['size_bytes']:>7.3f}×"
              f"{100 * q['accuracy']:>9.2f}%{100 * (q['accuracy'] - f['accuracy']):>+8.2f}"
              f"{100 * p['accuracy']:>9.2f}%{p['same_predictions']:>7}/{p['images']:<5}"
              f"{q['latency_ms']:>9.3f}{p['latency_ms']:>9.3f}")


if __name__ == "__main__":
    main()
