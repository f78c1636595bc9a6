"""Latency of one runtime at one thread count, in a child process so its thread settings cannot leak.

`python runtime_vs_peers.py --child ort|litert|torch --threads T ...` lands in child_main: it times
every (model, precision, batch) it is given with warm-ups then --iters timed runs on seeded N(0, 1)
inputs and prints one JSON line per measurement (median, p10, p90 ms). finch itself is timed by
`finch bench` (a process per program), the same loop in C++.
"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

# Thread-count variables set before a child imports its runtime (torch's OpenMP/MKL, TF's pools).
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


def child_env(threads):
    env = dict(os.environ)
    for k in THREAD_ENV:
        env[k] = str(threads)
    env["TF_NUM_INTEROP_THREADS"] = "1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def stats(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1e3)
    ms.sort()
    return {"p50": statistics.median(ms), "p10": ms[len(ms) // 10], "p90": ms[(len(ms) * 9) // 10], "iters": iters}


def ort_session(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def litert_interpreter(path, threads, batch, default_delegates=True):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kw = {} if default_delegates else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    it = Interpreter(model_path=path, num_threads=threads, **kw)
    inp = it.get_input_details()[0]
    if inp["shape"][0] != batch:
        it.resize_tensor_input(inp["index"], [batch, *inp["shape"][1:]])
    it.allocate_tensors()
    return it


def torch_setup(threads):
    import torch
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    return torch


def child_main(a):
    """One runtime, one thread count: every model × precision × batch of a.models/a.precisions/a.batches."""
    info = json.load(open(os.path.join(a.work, "models.json")))
    threads = a.threads[0]
    torch = torch_setup(threads) if a.child == "torch" else None
    rng = np.random.default_rng(1)
    for m in a.models:
        c, h, w = info[m]["input"]
        tm = None
        for b in a.batches:
            x = rng.standard_normal((b, c, h, w), dtype=np.float32)
            for prec in a.precisions:
                if a.child == "ort":
                    s = ort_session(info[m]["ort"][prec], threads)
                    fn = lambda: s.run(None, {"x": x})  # noqa: E731
                elif a.child == "litert":
                    it = litert_interpreter(info[m]["litert"][prec], threads, b)
                    idx = it.get_input_details()[0]["index"]
                    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))

                    def fn():
                        it.set_tensor(idx, xh)
                        it.invoke()
                else:  # torch: fp32 eager under inference_mode (torch's int8 is bench/torch_int8_peer.py's)
                    if prec != "fp32":
                        continue
                    if tm is None:
                        from peers.prepare import torch_net
                        tm = torch_net(m, info[m]["weights"])
                    xt = torch.from_numpy(x)

                    def fn():
                        with torch.inference_mode():
                            tm(xt)
                r = stats(fn, a.warmup, a.iters)
                print(json.dumps({"runtime": a.child, "model": m, "precision": prec, "batch": b, "threads": threads,
                                  **r}), flush=True)


def run_child(script, kind, threads, a, models, batches):
    """Start the child for runtime `kind` at `threads`; its JSON rows."""
    cmd = [sys.executable, script, "--child", kind, "--threads", str(threads), "--work", a.work, "--models", *models,
           "--batches", *map(str, batches), "--precisions", *a.precisions, "--iters", str(a.iters),
           "--warmup", str(a.warmup)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=child_env(threads))
    if p.returncode != 0:
        sys.exit(f"runtime_vs_peers: the {kind} child (threads {threads}) failed: {p.stderr.strip()[-1000:]}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def finch_bench(a, prog, batch, threads):
    out = os.path.join(a.work, "finch-bench.json")
    cmd = [a.finch, "bench", prog, "--batch", str(batch), "--threads", str(threads), "--iters", str(a.iters),
           "--warmup", str(a.warmup), "--json", out]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"runtime_vs_peers: {' '.join(cmd)} failed: {p.stderr.strip()[-600:]}")
    j = json.load(open(out))
    return {"p50": j["latency_ms_median"], "p10": j.get("latency_ms_p10"), "p90": j.get("latency_ms_p90"),
            "iters": j.get("iters")}


def run_finch(a, info, threads, models, batches):
    rows = []
    for m in models:
        for b in batches:
            for prec in a.precisions:
                r = finch_bench(a, info[m]["finch"][prec], b, threads)
                rows.append({"runtime": "finch", "model": m, "precision": prec, "batch": b, "threads": threads, **r})
    return rows
