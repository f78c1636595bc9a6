#!/usr/bin/python3
"""Seed 004's U0-U4 table (waste-sorting machine, MobileNet v1 alpha 0.5, TFLite) redone with
finch's own programs of one trained checkpoint: accuracy (`finch run --json`), program size and
batch-1 latency (`finch bench`), the relative changes against U0 and the criterion
L(U) = wS*dS + wT*dT - wA*dA (the seed printed +dA, which rewards accuracy loss: --printed-sign).

usage (one command; rerun it on any tree after `cmake --build build --target finch`):
  bench/seed004_table.py --checkpoint out/mnv1-0.5/model.safetensors --data /tmp/cifar10-bin \\
      --out out/seed004 [--at-224] [--limit-test N] [--printed-sign] [--weights 1 1 1]
  bench/seed004_table.py --seed-table     # the seed's printed numbers under both sign conventions
  bench/seed004_table.py --checkpoint out/sorter224/model.safetensors --dataset folder \
      --data DIR --out out/seed004-224 --sorter     # accuracy through the sorter (issue 19)

--sorter (a photo folder DIR/test/<class>/*): each program's accuracy is the sorter's, over every
test photo given as a --list (bench/sorter_check.py: the sorter, `finch run --predictions` and
`finch_run` on the same files), and the table says on how many photos the sorter's class equals
`finch run`'s, with the sorter's own latency_ms p50 (decode + resize + normalize + classify).

Variants (TFLite name -> finch command; the table's notes repeat the mapping):
  U0 float32                 finch compile (fp32 program)
  U1 dynamic range           finch quantize --qconfig int8-weights-only: int8 weights, float
                             activations. finch's weights are per-channel (TFLite DRQ per-tensor in
                             the seed) and activations stay float (TFLite quantizes them on the fly
                             in hybrid kernels). `--mode dynamic` is not used: in finch it quantizes
                             Linear layers only, i.e. only the classifier of a MobileNet.
  U2 full int8, float I/O    finch quantize --qconfig int8 (static, per-channel weights, BN folded,
                             activations fused, calibrated on --calib-batches training batches)
  U3 full int8, uint8 I/O    finch quantize --qconfig uint8-io
  U4 float16 weights         finch quantize --mode fp16 --qconfig fp16
--at-224 adds the seed's resolution: the same architecture (ImageNet stem, --classes 6 like the
seed's ~6 classes) at 3x224x224 from `finch bench-program` with UNTRAINED (seeded) weights, int8
calibrated on random-normal images: latency and size only, no accuracy.
Files in --out: U*.finch programs, U*.run.json / U*.bench.json / U*.quantize.json, the table as
seed004_table.md and everything as seed004_table.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sorter_check  # noqa: E402  (the sorter vs finch run / finch_run on a photo folder's test split)

# name, TFLite variant, how finch builds it (None: finch compile)
VARIANTS = [
    ("U0", "float32", None),
    ("U1", "dynamic range: int8 weights, float activations", ["--mode", "static", "--qconfig", "int8-weights-only"]),
    ("U2", "full int8, calibrated, float I/O", ["--mode", "static", "--qconfig", "int8"]),
    ("U3", "full int8, uint8 I/O", ["--mode", "static", "--qconfig", "uint8-io"]),
    ("U4", "float16 weights", ["--mode", "fp16", "--qconfig", "fp16"]),
]

# The seed's printed table: (variant, accuracy %, ms/image, size KB, printed L).
SEED = [("U0", 99.18, 23, 3200, 0.00), ("U1", 90.26, 47, 834, 0.21), ("U2", 99.18, 483, 999, 19.31),
        ("U3", 99.08, 486, 1000, 19.44), ("U4", 99.18, 23, 1612, -0.50)]


def deltas(size, ms, acc, base):
    """Relative changes against U0: (S - S0)/S0, (T - T0)/T0, (A - A0)/A0."""
    return (size / base[0] - 1, ms / base[1] - 1, acc / base[2] - 1)


def criterion(d, weights, printed_sign):
    """L = wS*dS + wT*dT - wA*dA; with printed_sign the seed's + wA*dA (accuracy loss lowers L)."""
    ws, wt, wa = weights
    return ws * d[0] + wt * d[1] + (wa if printed_sign else -wa) * d[2]


def sh(cmd, log):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    with open(log, "w") as f:
        f.write(" ".join(cmd) + "\n\n" + p.stdout + "\n" + p.stderr)
    if p.returncode != 0:
        tail = p.stderr.strip().splitlines()[-1:] or ["(no message)"]
        sys.exit(f"seed004_table.py: {' '.join(cmd)} failed (exit {p.returncode}): {tail[0]} (log: {log})")
    print(f"  {time.time() - t0:6.1f} s  {' '.join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd))}",
          file=sys.stderr)


def bench(finch, prog, a, out_json, log):
    sh([finch, "bench", prog, "--batch", "1", "--threads", "1", "--iters", str(a.iters), "--warmup", str(a.warmup),
        "--max-seconds", str(a.max_seconds), "--json", out_json], log)
    return json.load(open(out_json))


def seed_table(a):
    base = (SEED[0][3], SEED[0][2], SEED[0][1])
    print("Seed 004's printed numbers, L recomputed (dS + dT + dA as printed, dS + dT - dA as intended):\n")
    print("| variant | acc % | ms | KB | L printed | L (+dA) | L (-dA) |\n|---|---|---|---|---|---|---|")
    for v, acc, ms, kb, lp in SEED:
        d = deltas(kb, ms, acc, base)
        print(f"| {v} | {acc} | {ms} | {kb} | {lp:.2f} | {criterion(d, (1, 1, 1), True):.2f} | "
              f"{criterion(d, (1, 1, 1), False):.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", help="trained fp32 weights (model.safetensors of train_cifar)")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--data", default="/tmp/cifar10-bin")
    ap.add_argument("--image-size", type=int, default=0,
                    help="--dataset folder: photo size for finch compile/quantize (default: the checkpoint's, else 32)")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "out", "seed004"))
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--limit-test", type=int, default=0, help="accuracy on the first N test images (0: all)")
    ap.add_argument("--calib-batches", type=int, default=32, help="static int8 calibration batches (of 64)")
    ap.add_argument("--eval-threads", type=int, default=2, help="threads of the accuracy runs")
    ap.add_argument("--iters", type=int, default=50, help="timed batch-1 runs per program (finch bench, 1 thread)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--max-seconds", type=float, default=10,
                    help="cap on finch bench's warmup and timed runs each (the scalar int8 path is slow)")
    ap.add_argument("--weights", type=float, nargs=3, default=[1, 1, 1], metavar=("WS", "WT", "WA"),
                    help="weights of dS, dT, dA in L")
    ap.add_argument("--printed-sign", action="store_true", help="L = dS + dT + dA, the seed's printed convention")
    ap.add_argument("--reuse", action="store_true", help="keep programs and accuracies already in --out")
    ap.add_argument("--at-224", action="store_true", help="also time the architecture at 3x224x224 (untrained)")
    ap.add_argument("--seed-table", action="store_true", help="only recompute the seed's printed table")
    ap.add_argument("--sorter", action="store_true",
                    help="accuracy through the sorter on DATA/test (needs --dataset folder; bench/sorter_check.py)")
    ap.add_argument("--sorter-threads", default="1", help="threads of the sorter, finch run and finch_run in --sorter")
    a = ap.parse_args()
    if a.seed_table:
        return seed_table(a)
    if not a.checkpoint:
        ap.error("--checkpoint is required (or --seed-table)")
    finch = os.path.join(a.build, "bin", "finch")
    if not os.path.exists(finch):
        sys.exit(f"seed004_table.py: {finch} not found; build it with cmake --build build --target finch")
    if a.sorter and (a.dataset != "folder" or a.limit_test):
        ap.error("--sorter needs --dataset folder and all of DATA/test (make a smaller test folder with "
                 "scripts/cifar-folders.sh --test-per-class N instead of --limit-test)")
    os.makedirs(a.out, exist_ok=True)
    data = ["--dataset", a.dataset, "--data", a.data]
    build_data = data + (["--image-size", str(a.image_size)] if a.image_size else [])  # run/sorter: the program's
    limit = ["--limit-test", str(a.limit_test)] if a.limit_test else []
    rows = []
    for name, what, qargs in VARIANTS:
        prog = os.path.join(a.out, name + ".finch")
        run_json = os.path.join(a.out, name + ".run.json")
        log = os.path.join(a.out, name)
        print(f"{name} {what}", file=sys.stderr)
        if not (a.reuse and os.path.exists(prog)):
            if qargs is None:
                sh([finch, "compile", "--checkpoint", a.checkpoint, "--out", prog, "--threads", str(a.eval_threads)]
                   + build_data, log + ".build.log")
            else:
                # finch quantize also evaluates fp32, the simulation and the program; that check is
                # not the table's number (finch run below is), so it sees only 200 images.
                sh([finch, "quantize", "--checkpoint", a.checkpoint, "--out", prog, "--report",
                    log + ".quantize.json", "--calib-batches", str(a.calib_batches), "--limit-test", "200",
                    "--latency-images", "1", "--threads", str(a.eval_threads)] + qargs + build_data, log + ".build.log")
        sorter = None
        if a.sorter:
            sorter_json = log + ".sorter.json"
            if not (a.reuse and os.path.exists(sorter_json)):
                s = sorter_check.check(prog, a.data, os.path.join(a.build, "bin"), a.sorter_threads)
                json.dump(s, open(sorter_json, "w"), indent=1)
            sorter = json.load(open(sorter_json))
            r = {"accuracy": sorter["accuracy"], "images": sorter["images"]}
        else:
            if not (a.reuse and os.path.exists(run_json)):
                sh([finch, "run", prog, "--json", run_json, "--latency-images", "1", "--threads", str(a.eval_threads)]
                   + data + limit, log + ".run.log")
            r = json.load(open(run_json))
        b = bench(finch, prog, a, log + ".bench.json", log + ".bench.log")
        rows.append({"variant": name, "what": what, "accuracy": r["accuracy"], "images": r["images"],
                     "ms": b["latency_ms_median"], "p10_ms": b["latency_ms_p10"], "p90_ms": b["latency_ms_p90"],
                     "iters": b["iters"], "size_bytes": os.path.getsize(prog),
                     "kind": b.get("precision", b.get("kind", "")), "sorter": sorter})
    base = (rows[0]["size_bytes"], rows[0]["ms"], rows[0]["accuracy"])
    for r in rows:
        r["dS"], r["dT"], r["dA"] = deltas(r["size_bytes"], r["ms"], r["accuracy"], base)
        r["L"] = criterion((r["dS"], r["dT"], r["dA"]), a.weights, a.printed_sign)
    best = min(rows, key=lambda r: r["L"])["variant"]

    at224 = []
    if a.at_224:
        print("3x224x224, untrained", file=sys.stderr)
        for prec in ["fp32", "fp16", "int8"]:
            prog = os.path.join(a.out, f"224-{prec}.finch")
            if not (a.reuse and os.path.exists(prog)):
                sh([finch, "bench-program", "--model", "mobilenet_v1", "--width", "0.5", "--input-size", "3x224x224",
                    "--classes", "6", "--precision", prec, "--out", prog], prog + ".build.log")
            b = bench(finch, prog, a, prog + ".bench.json", prog + ".bench.log")
            at224.append({"precision": prec, "ms": b["latency_ms_median"], "p10_ms": b["latency_ms_p10"],
                          "p90_ms": b["latency_ms_p90"], "iters": b["iters"], "size_bytes": os.path.getsize(prog)})

    sign = "+" if a.printed_sign else "−"
    ws, wt, wa = a.weights
    lines = [f"Seed 004 on finch: MobileNet v1 α 0.5, {a.checkpoint}, {a.dataset} test "
             f"({rows[0]['images']} images); batch 1, 1 thread, `finch bench` median of up to {a.iters} runs "
             f"(≤ {a.max_seconds:g} s).", "",
             f"L = {ws:g}·ΔS + {wt:g}·ΔT {sign} {wa:g}·ΔA (Δ = relative change vs U0; "
             + ("the seed's printed sign: accuracy loss lowers L)" if a.printed_sign else
                "accuracy loss raises L; --printed-sign gives the seed's +ΔA)"), "",
             "| variant | finch program | test acc % | ms/image (p10–p90) | size KB | ΔS | ΔT | ΔA | L |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = " **(lowest L)**" if r["variant"] == best else ""
        lines.append(f"| {r['variant']} {r['what']} | {r['kind']} | {100 * r['accuracy']:.2f} | {r['ms']:.3f} "
                     f"({r['p10_ms']:.3f}–{r['p90_ms']:.3f}) | {r['size_bytes'] / 1024:.0f} | {r['dS']:+.3f} | "
                     f"{r['dT']:+.3f} | {r['dA']:+.4f} | {r['L']:+.3f}{mark} |")
    if a.sorter:
        lines += ["", f"Through the sorter (`sorter --list` over the {rows[0]['images']} test photos, --copy, "
                  f"{a.sorter_threads} thread(s)): the accuracy above is the sorter's; its decisions against "
                  "`finch run --predictions` and `finch_run` on the same files, and its latency_ms (decode + "
                  "resize + normalize + classify, per photo):", "",
                  "| variant | sorter = finch run | sorter = finch_run | latency_ms p50 | p90 | load average |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            s = r["sorter"]
            lines.append(f"| {r['variant']} | {s['same_as_finch_run']}/{s['images']} | "
                         f"{s['same_as_finch_run_tool']}/{s['images']} | {s['latency_ms_p50']:.2f} | "
                         f"{s['latency_ms_p90']:.2f} | {s['load'][0]:.1f} |")
    lines += ["", "Notes: U1 = `finch quantize --qconfig int8-weights-only` (int8 weights per output channel, "
              "float activations; TFLite's dynamic range used per-tensor weights and quantized activations on the "
              "fly). finch's `--mode dynamic` quantizes Linear layers only (here just the classifier), so it is not "
              "the match. Today finch's weights-only program stores the int8-rounded weights dequantized to fp32, "
              "so U1 "
              "is no smaller than U0 (it measures the accuracy cost of rounding the weights only). U2 = `--qconfig "
              "int8` (static, per-channel, BN folded, fused), U3 = `--qconfig uint8-io`, U4 = `--mode fp16`. "
              "Size = the .finch program file. int8 latency is whatever kernels the tree has: rerun this command "
              "on the final tree."]
    if at224:
        f32 = at224[0]["ms"]
        lines += ["", "Same architecture at the seed's 3×224×224 (ImageNet stem, 6 classes), UNTRAINED seeded "
                  "weights from `finch bench-program` (latency and size only):", "",
                  "| precision | ms/image (p10–p90) | ×fp32 | size KB |", "|---|---|---|---|"]
        for r in at224:
            lines.append(f"| {r['precision']} | {r['ms']:.2f} ({r['p10_ms']:.2f}–{r['p90_ms']:.2f}) | "
                         f"{r['ms'] / f32:.2f} | {r['size_bytes'] / 1024:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    open(os.path.join(a.out, "seed004_table.md"), "w").write(text)
    json.dump({"checkpoint": a.checkpoint, "weights": a.weights, "printed_sign": a.printed_sign, "rows": rows,
               "lowest_L": best, "at_224": at224}, open(os.path.join(a.out, "seed004_table.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
