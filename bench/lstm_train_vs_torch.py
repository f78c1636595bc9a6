#!/usr/bin/python3
"""Issue 16's LSTM training speed table: finch's bench/lstm_train against PyTorch 1.13 (Debian,
/usr/bin/python3) and PyTorch 2.x (/work/peers-venv/bin/python) running
bench/lstm_train_torch.py on the same shapes (default batch 64, 100 steps, input 32, hidden 128,
1 layer), forward + backward, threads 1 and 2. Rounds alternate the three programs so that
machine drift hits all of them alike; the table shows each one's median sequences/s over the
rounds and finch's ratio to each peer (above 1.0 = finch is faster).

Usage: bench/lstm_train_vs_torch.py [--build build] [--rounds 5] [--threads 1 2] [--mode lstm]
                                    [--omp-passive]
                                    [-- extra flags passed to both programs, e.g. --hidden 64]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
ap.add_argument("--mode", choices=["lstm", "gru"], default="lstm")
ap.add_argument("--torch2", default="/work/peers-venv/bin/python")
ap.add_argument("--omp-passive", action="store_true",
                help="run the peers with OMP_WAIT_POLICY=PASSIVE: their OpenMP threads then sleep "
                     "instead of spinning between regions, which matters on a machine whose cores "
                     "other processes keep busy (the default is what a user gets)")
ap.add_argument("extra", nargs="*")
a = ap.parse_args()
if a.rounds < 1:
    sys.exit(f"lstm_train_vs_torch.py: expected --rounds >= 1, found {a.rounds}")
finch_bin = os.path.join(a.build, "bin", "lstm_train")
if not os.path.exists(finch_bin):
    sys.exit(f"lstm_train_vs_torch.py: expected the finch program at {finch_bin}, found nothing "
             "(cmake --build build --target lstm_train)")
peer = os.path.join(HERE, "lstm_train_torch.py")
progs = {"finch": [finch_bin]}
# Debian's python3-torch is optional: the table has the peers that are installed.
if subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True).returncode == 0:
    progs["torch 1.13"] = ["/usr/bin/python3", peer]
if os.path.exists(a.torch2):
    progs["torch 2.x"] = [a.torch2, peer]
if len(progs) == 1:
    sys.exit("lstm_train_vs_torch.py: expected a peer (torch in /usr/bin/python3 or --torch2 PYTHON), found none")


def run(cmd, threads):
    full = cmd + ["--mode", a.mode, "--threads", str(threads)] + a.extra
    env = dict(os.environ)
    if a.omp_passive and cmd[0] != finch_bin:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run(full, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


res = {}  # (threads, name) -> [seq/s]
versions = {}
for r in range(a.rounds):
    for t in a.threads:
        for name, cmd in progs.items():
            j = run(cmd, t)
            versions[name] = j["impl"]
            res.setdefault((t, name), []).append(j["seq_per_s"])
            print(f"round {r} threads {t} {j['impl']}: {j['seq_per_s']} seq/s", file=sys.stderr)

names = list(progs)
print(f"| threads | " + " | ".join(f"{versions[n]} seq/s" for n in names) + " | "
      + " | ".join(f"finch / {n}" for n in names[1:]) + " |")
print("|---" * (1 + 2 * len(names) - 1) + "|")
for t in a.threads:
    med = {n: statistics.median(res[(t, n)]) for n in names}
    print(f"| {t} | " + " | ".join(f"{med[n]:.0f}" for n in names) + " | "
          + " | ".join(f"{med['finch'] / med[n]:.2f}×" for n in names[1:]) + " |")
