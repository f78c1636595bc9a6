#!/usr/bin/python3
"""Training throughput (sequences/s) of train_bert against PyTorch eager, side by side: the same
BERT size, batch and sequence length (bench/bert_train_torch.py is the torch side), rounds
alternating finch and torch so that load changes hit both alike; reports the median of each and
finch ÷ torch. finch's figure is metrics.csv's second row (steps after the first --warmup ones,
which pay for first-touch allocation), torch's the timed steps after its warm-up.

  python3 bench/bert_train_vs_torch.py --build build --vocab VOCAB --text botchan.txt --threads 2
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--build", default="build")
ap.add_argument("--vocab", required=True)
ap.add_argument("--text", required=True, help="text to pack (enough for (warmup + steps) x batch sequences)")
ap.add_argument("--preset", default="mini", choices=["mini", "small", "base"])
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--seq", type=int, default=128)
ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
ap.add_argument("--steps", type=int, default=8)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--torch-python", nargs="+", default=[sys.executable],
                help="python interpreters to run the torch side with (e.g. /usr/bin/python3 /work/peers-venv/bin/python)")
a = ap.parse_args()
for k in ("batch", "seq", "steps", "warmup", "rounds"):
    if getattr(a, k) < 1:
        raise SystemExit(f"bert_train_vs_torch.py: expected --{k} >= 1, found {getattr(a, k)}")
sizes = {"mini": (4, 256, 4, 1024), "small": (4, 512, 8, 2048), "base": (12, 768, 12, 3072)}[a.preset]
here = os.path.dirname(os.path.abspath(__file__))


def finch(threads):
    with tempfile.TemporaryDirectory() as d:
        # --steps warmup+steps with one row per part: row 2 is the steady state. --warmup-ratio 0
        # keeps lr > 0 from the first step (both sides do the same work either way).
        n = a.warmup + a.steps
        cmd = [os.path.join(a.build, "bin", "train_bert"), "--vocab", a.vocab, "--text", a.text, "--preset", a.preset,
               "--seq-len", str(a.seq), "--batch-size", str(a.batch), "--threads", str(threads), "--steps", str(n),
               "--log-every", str(a.warmup), "--eval-samples", "0", "--warmup-ratio", "0", "--quiet", "--out", d]
        if n % a.warmup:
            raise SystemExit("bert_train_vs_torch.py: --steps must be a multiple of --warmup (rows of --warmup steps)")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        rows = list(csv.DictReader(open(os.path.join(d, "metrics.csv"))))
        later = rows[1:]
        secs = sum(float(r["seconds"]) for r in later)
        return a.batch * a.warmup * len(later) / secs


def torch_side(python, threads):
    L, H, NH, I = sizes
    out = subprocess.run([python, os.path.join(here, "bert_train_torch.py"), "--layers", str(L), "--hidden", str(H),
                          "--heads", str(NH), "--intermediate", str(I), "--seq", str(a.seq), "--batch", str(a.batch),
                          "--threads", str(threads), "--steps", str(a.steps), "--warmup", str(a.warmup)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


print(f"| threads | finch seq/s | " + " | ".join(f"torch ({p}) seq/s | finch ÷ torch" for p in a.torch_python) + " |")
for t in a.threads:
    f, tor = [], {p: [] for p in a.torch_python}
    versions = {}
    for _ in range(a.rounds):
        f.append(finch(t))
        for p in a.torch_python:
            r = torch_side(p, t)
            tor[p].append(r["sequences_per_second"])
            versions[p] = r["torch"]
    fm = statistics.median(f)
    cells = [f"{t}", f"{fm:.2f}"]
    for p in a.torch_python:
        tm = statistics.median(tor[p])
        cells += [f"{tm:.2f} (torch {versions[p]})", f"{fm / tm:.2f}"]
    print("| " + " | ".join(cells) + " |", flush=True)
