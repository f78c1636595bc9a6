# Two finch builds against LiteRT/XNNPACK and ONNX Runtime int8, batch 1, interleaved in every round
# (old finch, new finch, LiteRT, ORT at 1 thread, then at 2), medians over the rounds. The peer
# models and programs come from an existing runtime_vs_peers.py work folder (its models.json).
#   python3 bench/int8_peers_ab.py --old /tmp/base/finch --new build/bin/finch \
#       --work /work/peers-out/models --python /work/venvs/peers/bin/python [--rounds 3]
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ["resnet20", "mobilenetv2", "mobilenet_v1"]


def finch_ms(binary, prog, threads, iters, warmup, out):
    subprocess.run([binary, "bench", prog, "--threads", str(threads), "--iters", str(iters), "--warmup", str(warmup),
                    "--json", out], check=True, capture_output=True)
    return json.load(open(out))["latency_ms_median"]


def peer_ms(a, kind, threads, models):
    env = dict(os.environ, TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        env[k] = str(threads)
    p = subprocess.run([a.python, os.path.join(HERE, "runtime_vs_peers.py"), "--child", kind, "--threads", str(threads),
                        "--work", a.work, "--models", *models, "--batches", "1", "--precisions", "int8",
                        "--iters", str(a.iters), "--warmup", str(a.warmup)],
                       capture_output=True, text=True, env=env, cwd=HERE)
    if p.returncode != 0:
        sys.exit(f"int8_peers_ab.py: the {kind} child failed: {p.stderr.strip()[-800:]}")
    return {j["model"]: j["p50"] for j in map(json.loads, (l for l in p.stdout.splitlines() if l.startswith("{")))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--work", required=True, help="a runtime_vs_peers.py work folder (models.json, *-int8.*)")
    ap.add_argument("--python", required=True, help="the interpreter with ai_edge_litert and onnxruntime")
    ap.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    a = ap.parse_args()
    if a.rounds < 1 or a.iters < 1 or a.warmup < 0:
        sys.exit(f"int8_peers_ab.py: expected --rounds >= 1, --iters >= 1, --warmup >= 0; got {a.rounds}, "
                 f"{a.iters}, {a.warmup}")
    for f in [a.old, a.new, a.python, os.path.join(a.work, "models.json")] + \
             [os.path.join(a.work, f"{m}-int8.finch") for m in a.models]:
        if not os.path.exists(f):
            sys.exit(f"int8_peers_ab.py: {f} does not exist")
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"int8_peers_ab.{os.getpid()}.json")
    res = {}
    print("load before", os.getloadavg(), flush=True)
    for r in range(a.rounds):
        for t in (1, 2):
            for m in a.models:
                prog = os.path.join(a.work, f"{m}-int8.finch")
                res.setdefault((m, t, "old"), []).append(finch_ms(a.old, prog, t, a.iters, a.warmup, out))
                res.setdefault((m, t, "new"), []).append(finch_ms(a.new, prog, t, a.iters, a.warmup, out))
            for kind in ("litert", "ort"):
                for m, v in peer_ms(a, kind, t, a.models).items():
                    res.setdefault((m, t, kind), []).append(v)
        print(f"round {r + 1}/{a.rounds}, load {os.getloadavg()}", flush=True)
    if os.path.exists(out):
        os.remove(out)
    print("| model | threads | finch old ms | finch new ms | new ÷ old | LiteRT ms | ORT ms | new ÷ LiteRT | new ÷ ORT |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m in a.models:
        for t in (1, 2):
            g = {k: statistics.median(res[(m, t, k)]) for k in ("old", "new", "litert", "ort")}
            print(f"| {m} | {t} | {g['old']:.3f} | {g['new']:.3f} | {g['new'] / g['old']:.2f} | {g['litert']:.3f} | "
                  f"{g['ort']:.3f} | {g['new'] / g['litert']:.2f} | {g['new'] / g['ort']:.2f} |")


if __name__ == "__main__":
    main()
