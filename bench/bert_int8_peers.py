"""BERT question answering, batch 1, sequence 384: finch's fp32 and dynamic int8 programs against
ONNX Runtime (fp32, and int8 from onnxruntime.quantization.quantize_dynamic) and PyTorch (eager
fp32, and torch.ao.quantization.quantize_dynamic on every Linear), side by side in one run, at
each thread count, alternating the engines round by round; medians of --iters runs per round,
the median over rounds reported. Also the program and model file sizes.

Models are seeded random-init BertForQuestionAnswering (sizes below) saved with save_pretrained
into --work (never the repository); latency does not depend on the weights' values. finch's
programs are compiled from that directory by `infer_squad --save-program` (one question of
--data, so the program is also exercised end to end). ONNX Runtime runs the graph exported by
torch.onnx.export (opset 17) and its quantize_dynamic (QInt8 weights, per-tensor), each session
with intra_op_num_threads = T and sequential execution; PyTorch uses torch.set_num_threads(T).
  /work/peers-venv/bin/python bench/bert_int8_peers.py --build build --vocab VOCAB \
      --data dev-v1.1.json --work /tmp/bert_peers --sizes mini base --threads 1 2 --rounds 3 --iters 10
Prints one row per (size, threads): ms of each engine and finch int8 / finch fp32,
finch int8 / ORT int8, finch int8 / torch int8 (below 1: finch faster); --json writes them."""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

SIZES = {"base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
         "mini": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)}
S = 384


def make_model(size, vocab, work, seed):
    from transformers import BertConfig, BertForQuestionAnswering
    d = os.path.join(work, size, "model")
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(seed)
    n_vocab = sum(1 for _ in open(vocab, encoding="utf-8"))
    m = BertForQuestionAnswering(BertConfig(vocab_size=n_vocab, **SIZES[size])).eval()
    m.save_pretrained(d)
    shutil.copy(vocab, os.path.join(d, "vocab.txt"))
    return m, d


def finch_programs(a, size, model_dir):
    out = {}
    for prec in ("fp32", "int8"):
        path = os.path.join(a.work, size, f"bert-{size}-{prec}.finch")
        cmd = [os.path.join(a.build, "bin", "infer_squad"), "--model", model_dir, "--data", a.data, "--limit", "1",
               "--threads", "1", "--save-program", path] + (["--int8"] if prec == "int8" else [])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
        out[prec] = path
    return out


def finch_ms(a, program, threads):
    cmd = [os.path.join(a.build, "bin", "finch"), "bench", program, "--threads", str(threads), "--iters",
           str(a.iters), "--warmup", str(a.warmup)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"median ([0-9.]+) ms", r.stdout)
    if r.returncode != 0 or not m:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    return float(m.group(1))


def onnx_models(model, work, size):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    fp32 = os.path.join(work, size, "model.onnx")
    int8 = os.path.join(work, size, "model-int8.onnx")
    ids = torch.ones(1, S, dtype=torch.long)
    kw = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
    torch.onnx.export(model, (ids, ids, torch.zeros(1, S, dtype=torch.long)), fp32,
                      input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["start_logits", "end_logits"], opset_version=17, **kw)
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
    return {"fp32": fp32, "int8": int8}


def inputs(vocab_size, seed=3):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab_size, size=(1, S), dtype=np.int64)
    return ids, np.ones((1, S), np.int64), (np.arange(S)[None, :] >= S // 3).astype(np.int64)


def time_fn(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def ort_ms(path, threads, feed, a):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if a.no_spin:  # on a loaded machine a spinning pool starves the threads it waits for
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return time_fn(lambda: sess.run(None, feed), a.iters, a.warmup)


def torch_ms(model, threads, x, a):
    torch.set_num_threads(threads)
    with torch.no_grad():
        return time_fn(lambda: model(input_ids=x[0], attention_mask=x[1], token_type_ids=x[2]), a.iters, a.warmup)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--sizes", nargs="+", default=["mini", "base"], choices=list(SIZES))
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out (ONNX Runtime and finch only)")
    ap.add_argument("--no-spin", action="store_true",
                    help="peers wait passively (ORT allow_spinning 0; run with OMP_WAIT_POLICY=PASSIVE for torch): "
                         "on a loaded machine their spinning pools collapse at 2 threads")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--json")
    a = ap.parse_args()
    rows = []
    for size in a.sizes:
        model, model_dir = make_model(size, a.vocab, a.work, a.seed)
        progs = finch_programs(a, size, model_dir)
        onnx = onnx_models(model, a.work, size)
        qmodel = None if a.no_torch else torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        nv = model.config.vocab_size
        ids, mask, types = inputs(nv)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        tx = tuple(torch.from_numpy(v) for v in (ids, mask, types))
        sizes = {k: os.path.getsize(v) for k, v in {**{f"finch_{p}": progs[p] for p in progs},
                                                     **{f"onnx_{p}": onnx[p] for p in onnx},
                                                     "safetensors": os.path.join(model_dir, "model.safetensors")}.items()}
        print(f"{size}: file sizes (bytes) {json.dumps(sizes)}; finch int8/fp32 {sizes['finch_int8'] / sizes['finch_fp32']:.3f}",
              flush=True)
        for t in a.threads:
            res = {k: [] for k in ("finch_fp32", "finch_int8", "ort_fp32", "ort_int8", "torch_fp32", "torch_int8")}
            for r in range(a.rounds):
                res["finch_fp32"].append(finch_ms(a, progs["fp32"], t))
                res["finch_int8"].append(finch_ms(a, progs["int8"], t))
                res["ort_fp32"].append(ort_ms(onnx["fp32"], t, feed, a))
                res["ort_int8"].append(ort_ms(onnx["int8"], t, feed, a))
                if qmodel is not None:
                    res["torch_fp32"].append(torch_ms(model, t, tx, a))
                    res["torch_int8"].append(torch_ms(qmodel, t, tx, a))
                print(f"  {size} T{t} round {r}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in res.items() if v),
                      flush=True)
            med = {k: statistics.median(v) for k, v in res.items() if v}
            row = {"size": size, "threads": t, "ms": med, "file_bytes": sizes, "load": os.getloadavg(),
                   "int8_over_fp32": med["finch_int8"] / med["finch_fp32"],
                   "int8_over_ort_int8": med["finch_int8"] / med["ort_int8"],
                   "fp32_over_ort_fp32": med["finch_fp32"] / med["ort_fp32"]}
            if "torch_int8" in med:
                row["int8_over_torch_int8"] = med["finch_int8"] / med["torch_int8"]
                row["fp32_over_torch_fp32"] = med["finch_fp32"] / med["torch_fp32"]
            rows.append(row)
            print(f"{size} T{t}: " + "  ".join(f"{k} {v:.1f} ms" for k, v in med.items()) +
                  "  | " + "  ".join(f"{k} {v:.2f}" for k, v in row.items() if k.endswith(("fp32", "int8")) and "_over_" in k)
                  + f"  | load {row['load'][0]:.1f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
