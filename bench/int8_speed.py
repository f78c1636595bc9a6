#!/usr/bin/python3
"""fp32 / fp16 / int8 .finch programs of the benchmark models, timed with `finch bench`, one table.

Step 1 (skipped for programs already in --out unless --rebuild): `finch bench-program` writes
<out>/<model>-{fp32,fp16,int8}.finch — int8 is static, per-channel weights (qconfig int8), BN folded
and activations fused, calibrated on random-normal images (a benchmarking aid: accuracy is not the
point, kernels and shapes are). Models:
  resnet20, resnet18, mobilenetv2   CIFAR variants at 1x28x28 with finch's trained Fashion-MNIST
                                    weights from --weights-root/out/... when present, else seeded init
  mobilenet_v1                      alpha 0.5 at 3x224x224 (stride-2 stem), seeded init (no trained one)
Step 2: `finch bench` for every program x --batches x --threads, JSON per run in <out>/runs/.
Step 3: <out>/int8_speed.json and <out>/int8_speed.md: median ms, images/s and the ratios
int8/fp32 and fp16/fp32 per model, batch and thread count (below 1.0: faster than fp32).

usage: bench/int8_speed.py [--out out/int8-speed] [--build build] [--models ...] [--batches 1 8]
                           [--threads 1 2] [--iters 50] [--warmup 3] [--max-seconds 10] [--rebuild]
Then bench/torch_int8_peer.py --dir out/int8-speed puts PyTorch's best int8 engine beside these.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# model -> bench-program options and the trained weights (relative to --weights-root), if any.
MODELS = {
    "resnet20": (["--model", "resnet20", "--cifar", "--input-size", "1x28x28"], "out/resnet20-15ep/model.safetensors"),
    "resnet18": (["--model", "resnet18", "--cifar", "--input-size", "1x28x28"], "out/resnet18-1ep/model.safetensors"),
    "mobilenetv2": (["--model", "mobilenetv2", "--cifar", "--input-size", "1x28x28"], "out/mnv2-3ep/model.safetensors"),
    "mobilenet_v1": (["--model", "mobilenet_v1", "--width", "0.5", "--input-size", "3x224x224"], None),
}
PRECISIONS = ["fp32", "fp16", "int8"]


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"int8_speed.py: {' '.join(cmd)} failed: {p.stderr.strip()}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="out/int8-speed")
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--precisions", nargs="+", default=PRECISIONS, choices=PRECISIONS)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--max-seconds", type=float, default=10,
                    help="per finch bench run: stop timing after this long (the reference int8 kernels are slow)")
    ap.add_argument("--weights-root", default=os.environ.get("FINCH_WEIGHTS_ROOT", "/work/main"),
                    help="folder holding out/<run>/model.safetensors (finch's trained weights)")
    ap.add_argument("--rebuild", action="store_true", help="rewrite the programs even if present")
    a = ap.parse_args()
    finch = os.path.join(a.build, "bin", "finch")
    if not os.access(finch, os.X_OK):
        sys.exit(f"int8_speed.py: {finch} not found; build it: cmake --build build --target finch")
    os.makedirs(os.path.join(a.out, "runs"), exist_ok=True)

    weights = {}
    for m in a.models:
        opts, w = MODELS[m]
        w = os.path.join(a.weights_root, w) if w else None
        weights[m] = w if w and os.path.exists(w) else "seeded init"
        for prec in a.precisions:
            prog = os.path.join(a.out, f"{m}-{prec}.finch")
            if os.path.exists(prog) and not a.rebuild:
                continue
            cmd = [finch, "bench-program", *opts, "--precision", prec, "--out", prog]
            if weights[m] != "seeded init":
                cmd += ["--checkpoint", weights[m]]
            print(f"building {prog} ...", file=sys.stderr, flush=True)
            run(cmd)

    rows = []
    for m in a.models:
        for b in a.batches:
            for t in a.threads:
                row = {"model": m, "batch": b, "threads": t, "weights": weights[m]}
                for prec in a.precisions:
                    prog = os.path.join(a.out, f"{m}-{prec}.finch")
                    js = os.path.join(a.out, "runs", f"{m}-{prec}-b{b}-t{t}.json")
                    run([finch, "bench", prog, "--batch", str(b), "--threads", str(t), "--iters", str(a.iters),
                         "--warmup", str(a.warmup), "--max-seconds", str(a.max_seconds), "--json", js])
                    r = json.load(open(js))
                    row[prec] = {k: r[k] for k in ("iters", "latency_ms_median", "latency_ms_p10", "latency_ms_p90",
                                                    "images_per_second", "file_bytes", "kind")}
                for prec in a.precisions:
                    if prec != "fp32" and "fp32" in row:
                        row[f"{prec}_over_fp32"] = row[prec]["latency_ms_median"] / row["fp32"]["latency_ms_median"]
                rows.append(row)
                cells = "  ".join(f"{p} {row[p]['latency_ms_median']:.3f} ms" for p in a.precisions)
                print(f"{m} batch {b} threads {t}: {cells}", file=sys.stderr, flush=True)

    md = ["| model | batch | threads | " + " | ".join(f"{p} ms" for p in a.precisions) + " | " +
          " | ".join(f"{p}/fp32" for p in a.precisions if p != "fp32") + " | int8 img/s | sizes KiB (" +
          "/".join(a.precisions) + ") |",
          "|---|---:|---:|" + "---:|" * (2 * len(a.precisions) - (1 if "fp32" in a.precisions else 0)) + "---:|---|"]
    for r in rows:
        lat = " | ".join(f"{r[p]['latency_ms_median']:.3f}" for p in a.precisions)
        rat = " | ".join(f"{r.get(p + '_over_fp32', float('nan')):.2f}" for p in a.precisions if p != "fp32")
        ips = f"{r['int8']['images_per_second']:.1f}" if "int8" in r else "—"
        size = "/".join(f"{r[p]['file_bytes'] / 1024:.0f}" for p in a.precisions)
        md.append(f"| {r['model']} | {r['batch']} | {r['threads']} | {lat} | {rat} | {ips} | {size} |")
    md.append("")
    md.append(f"Median of up to {a.iters} runs (at most {a.max_seconds:g} s each) after {a.warmup} warmup "
              "(finch bench). Weights: " +
              "; ".join(f"{m}: {weights[m]}" for m in a.models) + ".")
    text = "\n".join(md) + "\n"
    print(text)
    for name, content in (("int8_speed.md", text), ("int8_speed.json", json.dumps(rows, indent=1))):
        path = os.path.join(a.out, name)
        with open(path + ".tmp", "w") as fh:
            fh.write(content)
        os.replace(path + ".tmp", path)
    print(f"tables: {os.path.join(a.out, 'int8_speed.md')}, {os.path.join(a.out, 'int8_speed.json')}", file=sys.stderr)


if __name__ == "__main__":
    main()
