#!/usr/bin/env python3
"""Per-node times of one fp32 model, finch against ONNX Runtime, batch 1, one thread.

finch: `bench_threads PROGRAM --profile` (per-node mean µs at 1 thread, the runtime's own
node timer) and `finch inspect PROGRAM` (node order, op, output shape). ONNX Runtime: the same
weights' .onnx with SessionOptions.enable_profiling (the Node events' `dur`, median over the
profiled runs), graph optimization level all, 1 intra-op thread, sequential execution — the
settings of bench/peers/timing.py.

The nodes are lined up by output shape and parameter bytes: each finch node that took time takes
the first unmatched ORT node with both equal (ORT fuses Conv+Relu and Conv+Add+Relu as finch
does, so a finch conv with its fused add meets one ORT Conv). ORT nodes left over (the NCHWc
ReorderInput/ReorderOutput, …) and finch nodes left over get rows of their own. Each row
is classed by what the kernel is (stem, 3x3 s1, 3x3 s2, 1x1, depthwise, add, pool, linear) from
ORT's weight shape, and the classes are summed. "between nodes" is each runtime's whole-run time
(median, no profiling) less its per-node sum: dispatch, allocation, per-node overhead.

ORT's profiler adds its own cost to every node (timestamps, the event record), so its node
times read high; the whole-run medians without profiling are printed beside the sums, and the
ratio of those two is the one to quote. Run on a loaded machine, every number is noisy.

  /work/venvs/peers/bin/python bench/per_node_vs_ort.py --bin build/bin \
      --program /work/peers-out/models/resnet20-fp32.finch --onnx /work/peers-out/models/resnet20-fp32.onnx
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def die(msg):
    print(f"per_node_vs_ort: {msg}", file=sys.stderr)
    sys.exit(1)


def finch_nodes(binary_dir, program, iters, warmup, repeats):
    """[(name, op, shape tuple, params, us)] in graph order, and the median whole-run ms at 1 thread.

    bench_threads --profile reports each node's mean over its runs, which one preemption on a
    loaded machine inflates; it is run `repeats` times and the median of the means is taken
    (and of the whole-run medians)."""
    finch = os.path.join(binary_dir, "finch")
    bench = os.path.join(binary_dir, "bench_threads")
    for b in (finch, bench):
        if not os.access(b, os.X_OK):
            die(f"{b}: expected an executable (build the finch and bench_threads targets), found none")
    ins = subprocess.run([finch, "inspect", program], capture_output=True, text=True)
    if ins.returncode != 0:
        die(f"finch inspect {program} failed: {ins.stderr.strip()}")
    order = []
    row = re.compile(r"^\s*(\d+)\s+(\S+)\s+(\S+)\s+\[([\d,]+)\]\s+\S+.*?\s(\d+)\s+(\d+)\s*$")
    for line in ins.stdout.splitlines():
        m = row.match(line)
        if m:
            order.append((m.group(2), m.group(3), tuple(int(v) for v in m.group(4).split(",")), int(m.group(5))))
    if not order:
        die(f"finch inspect {program}: expected a node table, found none")
    us, totals = {}, []
    for _ in range(repeats):
        prof = subprocess.run([bench, program, "--profile", "--iters", str(iters), "--warmup", str(warmup),
                               "--rounds", "1", "--threads", "2"], capture_output=True, text=True)
        if prof.returncode != 0:
            die(f"bench_threads --profile {program} failed: {prof.stderr.strip()}")
        got = 0
        for line in prof.stdout.splitlines():
            m = re.search(r" 1 thr ([\d.]+) ms", line)
            if m and "per run" not in line:
                totals.append(float(m.group(1)))
            parts = line.split()
            if len(parts) == 4 and parts[0] != "node":
                try:
                    us.setdefault((parts[0], parts[1]), []).append(float(parts[2]))
                    got += 1
                except ValueError:
                    pass
        if not got:
            die(f"bench_threads --profile {program}: expected a node table, found:\n{prof.stdout}")
    if not totals:
        die(f"bench_threads --profile {program}: expected the 1-thread median, found none")
    # bench_threads times the profiled runs themselves: its total includes two clock reads per node.
    # Keyed by (name, op): a model's pool and flatten can share one name ("model").
    return ([(n, op, shape, params, statistics.median(us[(n, op)]) if (n, op) in us else 0.0)
             for n, op, shape, params in order],
            statistics.median(totals))


def ort_nodes(onnx_path, iters, warmup):
    """[(name, op, out shape, in shapes, us, parameter bytes)] in execution order, and the median whole-run ms."""
    import numpy as np
    import onnxruntime as ort

    def session(profile_dir=None):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if profile_dir:
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(profile_dir, "ort")
        return ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])

    s = session()
    inp = s.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    for _ in range(warmup):
        s.run(None, {inp.name: x})
    ms = []
    for _ in range(iters):
        t = time.perf_counter()
        s.run(None, {inp.name: x})
        ms.append((time.perf_counter() - t) * 1e3)
    with tempfile.TemporaryDirectory() as tmp:
        p = session(tmp)
        for _ in range(warmup + iters):
            p.run(None, {inp.name: x})
        events = json.load(open(p.end_profiling()))
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])[warmup:]
    if not runs:
        die(f"{onnx_path}: the ORT profile holds no model_run events")
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    per_run = []  # per run: the node events in order
    for r in runs:
        t0, t1 = r["ts"], r["ts"] + r["dur"]
        per_run.append(sorted((e for e in nodes if t0 <= e["ts"] <= t1), key=lambda e: e["ts"]))
    first = per_run[0]
    out = []
    for i, e in enumerate(first):
        a = e["args"]
        durs = [run[i]["dur"] for run in per_run if len(run) == len(first)]
        oshape = tuple(next(iter(a["output_type_shape"][0].values()))) if a.get("output_type_shape") else ()
        ishapes = [tuple(next(iter(d.values()))) for d in a.get("input_type_shape", [])]
        out.append((e["name"].replace("_kernel_time", ""), a.get("op_name", "?"), oshape, ishapes,
                    float(statistics.median(durs)), int(a.get("parameter_size", 0))))
    return out, statistics.median(ms)


def kind_of(finch_op, ort_entry, first_conv):
    """What the kernel is: from ORT's weight shape when the node was matched."""
    if finch_op in ("add", "mul"):
        return finch_op
    if "pool" in finch_op:
        return "pool"
    if finch_op == "linear":
        return "linear"
    if finch_op != "conv2d" or ort_entry is None or len(ort_entry[3]) < 2 or len(ort_entry[3][1]) != 4:
        return finch_op
    x, w, y = ort_entry[3][0], ort_entry[3][1], ort_entry[2]
    if first_conv:
        return "stem"
    oc, cg, kh, kw = w
    if len(x) == 4 and cg == 1 and x[1] == oc and oc > 1:
        return "depthwise"
    stride = x[2] // y[2] if len(x) == 4 and len(y) == 4 and y[2] else 1
    return f"{kh}x{kw} s{stride}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="folder with finch and bench_threads")
    ap.add_argument("--program", required=True, help="the fp32 .finch program")
    ap.add_argument("--onnx", required=True, help="the same weights as .onnx")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=15, help="bench_threads runs; the median of their node means")
    ap.add_argument("--finch-iters", type=int, default=20, help="timed runs per bench_threads run")
    ap.add_argument("--json", help="also write the rows here (temp file, then renamed)")
    a = ap.parse_args()
    if a.iters < 1 or a.warmup < 0 or a.repeats < 1 or a.finch_iters < 1:
        die(f"--iters, --finch-iters and --repeats must be >= 1 and --warmup >= 0, got {a.iters}, {a.finch_iters}, "
            f"{a.repeats} and {a.warmup}")
    for f in (a.program, a.onnx):
        if not os.path.isfile(f):
            die(f"{f}: expected a file, found none")
    try:
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        die(f"{sys.executable}: expected numpy and onnxruntime (the peers' venv, /work/venvs/peers/bin/python), "
            f"found {e}")

    fin, fin_ms = finch_nodes(a.bin, a.program, a.finch_iters, a.warmup, a.repeats)
    ortn, ort_ms = ort_nodes(a.onnx, a.iters, a.warmup)

    # Each finch node that took time takes the first unmatched ORT node with its output shape and
    # parameter bytes (a conv's weights and bias; ORT may run a block's convs in another order).
    rows, used, first_conv = [], set(), True
    for name, op, shape, params, us in fin:
        if us == 0.0 and op in ("add", "relu", "relu6", "flatten"):
            rows.append((name, op, shape, us, None, "fused/view"))
            continue
        k = next((i for i, o in enumerate(ortn) if i not in used and o[2] == shape and o[5] == 4 * params), None)
        if k is None:  # a node without weights, or one ORT split or fused otherwise: the shape alone
            k = next((i for i, o in enumerate(ortn) if i not in used and o[2] == shape and o[5] == 0 and params == 0),
                     None)
        if k is None and params > 0:  # ORT counts some weights otherwise (Gemm): the next node of that shape
            k = next((i for i, o in enumerate(ortn) if i not in used and o[2] == shape and o[5] > 0), None)
        if k is None and len(shape) == 4:  # NCHWc pads the channels to its block (24 -> 32): the next such conv
            k = next((i for i, o in enumerate(ortn) if i not in used and len(o[2]) == 4 and o[2][2:] == shape[2:]
                      and shape[1] < o[2][1] < shape[1] + 16 and o[5] > 0), None)
        o = ortn[k] if k is not None else None
        if k is not None:
            used.add(k)
        rows.append((name, op, shape, us, o, kind_of(op, o, first_conv and op == "conv2d")))
        if op == "conv2d":
            first_conv = False
    for i, o in enumerate(ortn):
        if i not in used:
            rows.append(("", "", o[2], None, o, "ort " + o[1]))

    print(f"{'finch node':<28} {'ORT node':<36} {'output':<16} {'kind':<12} {'finch us':>9} {'ORT us':>8} {'ratio':>6}")
    by_kind = {}
    for name, op, shape, us, o, kind in rows:
        ous = o[4] if o else None
        ratio = f"{us / ous:6.2f}" if us is not None and ous else ""
        print(f"{name[:28]:<28} {(o[0] if o else '')[-36:]:<36} {str(list(shape)).replace(' ', ''):<16} "
              f"{kind:<12} {'' if us is None else f'{us:9.1f}':>9} {'' if ous is None else f'{ous:8.1f}':>8} {ratio:>6}")
        f, r = by_kind.get(kind, (0.0, 0.0))
        by_kind[kind] = (f + (us or 0.0), r + (ous or 0.0))
    fsum = sum(v[0] for v in by_kind.values())
    osum = sum(v[1] for v in by_kind.values())
    by_kind["between nodes"] = (1e3 * fin_ms - fsum, 1e3 * ort_ms - osum)
    print(f"\n{'by kind':<28} {'finch us':>9} {'ORT us':>8} {'ratio':>6}  (ORT's between-nodes = its "
          f"unprofiled run less its profiled node sum: negative when profiling inflates the nodes)")
    for kind, (f, r) in sorted(by_kind.items(), key=lambda kv: -(kv[1][0] - kv[1][1])):
        print(f"{kind:<28} {f:9.1f} {r:8.1f} {f / r if r > 0 else float('nan'):6.2f}")
    print(f"{'sum of nodes':<28} {fsum:9.1f} {osum:8.1f} {fsum / osum if osum else float('nan'):6.2f}")
    print(f"{'whole run (median, no profiling)':<34} {1e3 * fin_ms:9.1f} {1e3 * ort_ms:8.1f} "
          f"{fin_ms / ort_ms:6.2f}")
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"program": a.program, "onnx": a.onnx, "finch_ms": fin_ms, "ort_ms": ort_ms,
                       "rows": [{"finch": n, "op": op, "shape": list(s), "finch_us": us,
                                 "ort": o[0] if o else None, "ort_us": o[4] if o else None, "kind": k}
                                for n, op, s, us, o, k in rows]}, fh, indent=1)
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
