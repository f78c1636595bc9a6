#!/usr/bin/python3
"""Issue 17's BERT fp32 forward latency table: finch's bench/bert_forward against PyTorch 2.x
eager (/work/peers-venv/bin/python running bench/bert_forward_torch.py: transformers'
BertForQuestionAnswering, with its default "sdpa" attention and with "eager" attention), random
weights, batch 1, sequence 384, BERT-base (12 × 768) and BERT-mini (4 × 256), threads 1 and 2.
Rounds alternate the programs so that machine drift hits all of them alike; the table shows each
one's median latency over the rounds (each run's own median over --iters forwards) and the
ratio finch / peer of the latencies (below 1.0 = finch is faster, as everywhere in bench/).

Usage: bench/bert_forward_vs_torch.py [--build build] [--rounds 3] [--threads 1 2]
                                      [--models base mini] [--iters 5] [--omp-passive]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = {"base": ["--layers", "12", "--hidden", "768"], "mini": ["--layers", "4", "--hidden", "256"]}
ap = argparse.ArgumentParser()
ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
ap.add_argument("--models", nargs="+", choices=list(MODELS), default=["base", "mini"])
ap.add_argument("--iters", type=int, default=5)
ap.add_argument("--seq", type=int, default=384)
ap.add_argument("--torch2", default="/work/peers-venv/bin/python")
ap.add_argument("--omp-passive", action="store_true",
                help="run the peers with OMP_WAIT_POLICY=PASSIVE: their OpenMP threads then sleep "
                     "instead of spinning between regions, which matters on a machine whose cores "
                     "other processes keep busy (the default is what a user gets)")
a = ap.parse_args()
if a.rounds < 1 or a.iters < 1:
    sys.exit(f"bert_forward_vs_torch.py: expected --rounds and --iters >= 1, found {a.rounds}, {a.iters}")
finch_bin = os.path.join(a.build, "bin", "bert_forward")
if not os.path.exists(finch_bin):
    sys.exit(f"bert_forward_vs_torch.py: expected the finch program at {finch_bin}, found nothing "
             "(cmake --build build --target bert_forward)")
peer = os.path.join(HERE, "bert_forward_torch.py")
progs = {"finch": [finch_bin], "torch sdpa": [a.torch2, peer, "--attn", "sdpa"],
         "torch eager": [a.torch2, peer, "--attn", "eager"]}


def run(cmd, model, threads):
    full = cmd + MODELS[model] + ["--threads", str(threads), "--iters", str(a.iters),
                                  "--seq", str(a.seq)]
    env = dict(os.environ)
    if a.omp_passive and cmd[0] != finch_bin:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run(full, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


res, versions = {}, {}
for r in range(a.rounds):
    for m in a.models:
        for t in a.threads:
            for name, cmd in progs.items():
                j = run(cmd, m, t)
                versions[name] = j["impl"]
                res.setdefault((m, t, name), []).append(j["ms"])
                print(f"round {r} {m} threads {t} {j['impl']}: {j['ms']} ms", file=sys.stderr)

names = list(progs)
print(f"batch 1, sequence {a.seq}, median of {a.rounds} rounds × {a.iters} forwards (ms; lower is better)\n")
print("| model | threads | " + " | ".join(f"{versions[n]} ms" for n in names) + " | "
      + " | ".join(f"finch / {n}" for n in names[1:]) + " |")
print("|---" * (2 + 2 * len(names) - 1) + "|")
for m in a.models:
    for t in a.threads:
        med = {n: statistics.median(res[(m, t, n)]) for n in names}
        print(f"| {m} | {t} | " + " | ".join(f"{med[n]:.1f}" for n in names) + " | "
              + " | ".join(f"{med['finch'] / med[n]:.2f}×" for n in names[1:]) + " |")
