#!/usr/bin/python3
"""Training speed and peak memory, finch vs PyTorch, side by side in one run.

For each model, alternates `build/bin/train_speed MODEL BATCH THREADS` and the peer's
`shared/tools/peer/torch_train_speed.py MODEL BATCH THREADS` (under --python: Debian's python3-torch 1.13
by default, or a venv's PyPI torch, e.g. --python /work/venvs/peers/bin/python) for
--rounds rounds, and prints the median images/s of each side, the ratio finch/torch (>= 1.0 means
finch trains at least as fast) and each process's peak resident memory (ru_maxrss from wait4),
plus PyTorch's RSS after `import torch, torchvision` alone, so the model's share can be read off.

usage: bench/train_speed_vs_torch.py [--build build] [--models resnet20 mobilenetv2]
                                     [--batch 64] [--threads 2] [--rounds 3] [--json FILE]
                                     [--python /usr/bin/python3]
The peer runs its GEMMs on the system OpenBLAS, which torch.set_num_threads does not govern, so
OPENBLAS_NUM_THREADS is set to --threads for both sides.
"""
import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = None
for cand in [os.environ.get("FINCH_PEER", ""), os.path.join(HERE, "..", "..", "shared", "tools", "peer"),
             os.path.join(HERE, "..", "..", "..", "shared", "tools", "peer"), "/work/shared/tools/peer"]:
    if cand and os.path.exists(os.path.join(cand, "torch_train_speed.py")):
        PEER = os.path.abspath(cand)
        break


def measure(cmd, env):
    """One run: (images/s, peak RSS MiB). Output goes through a pipe read after wait4."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(w, 1)
        os.close(r)
        os.close(w)
        os.execvpe(cmd[0], cmd, env)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status, ru = os.wait4(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed with status {status}")
    lines = out.strip().splitlines()
    return (float(lines[-1]) if lines else 0.0), ru.ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--models", nargs="+", default=["resnet20", "mobilenetv2"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="also write the table here")
    ap.add_argument("--python", default="/usr/bin/python3", help="the interpreter whose torch is the peer")
    a = ap.parse_args()
    if PEER is None:
        sys.exit("train_speed_vs_torch.py: shared/tools/peer/torch_train_speed.py not found (set FINCH_PEER)")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads))
    finch = os.path.join(a.build, "bin", "train_speed")
    _, torch_base = measure([a.python, "-c", "import torch, torchvision; print(0)"], env)
    version = os.popen(f"{a.python} -c 'import torch; print(torch.__version__)'").read().strip()
    print(f"peer: torch {version} ({a.python})")
    rows = []
    print(f"{'model':<12}{'finch img/s':>12}{'torch img/s':>12}{'ratio':>7}{'finch MiB':>11}{'torch MiB':>11}")
    for m in a.models:
        f, p, fm, pm = [], [], [], []
        for _ in range(a.rounds):
            s, mem = measure([finch, m, str(a.batch), str(a.threads)], env)
            f.append(s)
            fm.append(mem)
            s, mem = measure([a.python, os.path.join(PEER, "torch_train_speed.py"), m, str(a.batch),
                              str(a.threads)], env)
            p.append(s)
            pm.append(mem)
        row = {"model": m, "batch": a.batch, "threads": a.threads, "finch_images_per_s": statistics.median(f),
               "torch_images_per_s": statistics.median(p), "finch_peak_mib": max(fm), "torch_peak_mib": max(pm),
               "torch_import_mib": torch_base, "torch_version": version, "finch_runs": f, "torch_runs": p}
        row["ratio"] = row["finch_images_per_s"] / row["torch_images_per_s"]
        rows.append(row)
        print(f"{m:<12}{row['finch_images_per_s']:>12.1f}{row['torch_images_per_s']:>12.1f}{row['ratio']:>7.2f}"
              f"{row['finch_peak_mib']:>11.0f}{row['torch_peak_mib']:>11.0f}")
    print(f"(PyTorch's process after `import torch, torchvision` alone: {torch_base:.0f} MiB)")
    if a.json:
        with open(a.json + ".tmp", "w") as fh:
            json.dump(rows, fh, indent=1)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
