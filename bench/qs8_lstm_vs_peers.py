#!/usr/bin/env python3
"""The int8 LSTM against its peers, side by side in one run (issue 16's speed target).

Shapes: batch 1, T 100, IN 32, H 128, 1 and 2 threads. Rows (median of the repetitions, wall
time per sequence, and per step):
  finch static int8   bench_qs8_lstm BM_QLstmStatic   (kernels::QLstm, integer gates)
  finch dynamic int8  bench_qs8_lstm BM_QLstmDynamic  (kernels::QDynamicLstm, f32 gates)
  finch fp32          bench_qs8_lstm BM_F32LstmCell   (ops::lstm_cell per step)
                      bench_qs8_lstm BM_F32LstmSeq    (ops::lstm_seq, the whole-sequence path)
  finch int8 GRU      bench_qs8_lstm BM_QGruStatic    (kernels::QGru, for reference)
  torch dynamic int8  torch.ao.quantization.quantize_dynamic(nn.LSTM, {nn.LSTM}, qint8)
  ORT dynamic int8    onnxruntime.quantization.quantize_dynamic on the exported nn.LSTM
                      (the LSTM node becomes DynamicQuantizeLSTM; checked below)
Usage: /work/peers-venv/bin/python bench/qs8_lstm_vs_peers.py [BUILD_DIR] [--reps N]
The C++ rows run first and once more at the end; each side's rows are medians, and the script
prints both C++ passes so drift on a shared machine is visible.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

T, B, IN, H = 100, 1, 32, 128
BUILD = next((a for a in sys.argv[1:] if not a.startswith("--")), "build")
REPS = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 5


def finch_rows():
    exe = os.path.join(BUILD, "bin", "bench_qs8_lstm")
    # The sequence rows only (BM_QDynLinear has other arguments: K, OC, threads).
    out = subprocess.run([exe, "--benchmark_format=json", f"--benchmark_repetitions={REPS}",
                          "--benchmark_filter=Lstm|Gru",
                          "--benchmark_min_time=0.3", "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True).stdout
    rows = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name, threads = b["run_name"].split("/")[0], int(b["run_name"].split("/")[5])
        rows[(name, threads)] = (b["real_time"], b["cpu_time"])  # microseconds (the bench's unit)
    return rows


def time_us(fn):
    """Medians over REPS of the mean wall and process CPU time of as many calls as fit in 0.3 s."""
    for _ in range(3):
        fn()
    wall, cpu = [], []
    for _ in range(REPS):
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt > 0.3 and n >= 3:
                break
        wall.append(dt / n * 1e6)
        cpu.append((time.process_time() - c0) / n * 1e6)
    return statistics.median(wall), statistics.median(cpu)


def peer_rows():
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch.manual_seed(0)
    model = torch.nn.LSTM(IN, H).eval()
    x = torch.randn(T, B, IN)
    qmodel = torch.ao.quantization.quantize_dynamic(model, {torch.nn.LSTM}, dtype=torch.qint8)
    rows = {}
    tmp = tempfile.mkdtemp()
    f32, i8 = os.path.join(tmp, "lstm.onnx"), os.path.join(tmp, "lstm_int8.onnx")
    torch.onnx.export(model, (x,), f32, input_names=["x"], output_names=["y", "h", "c"], opset_version=17,
                      dynamo=False)
    quantize_dynamic(f32, i8, weight_type=QuantType.QInt8)
    ops = [n.op_type for n in onnx.load(i8).graph.node]
    assert "DynamicQuantizeLSTM" in ops, f"ORT's quantized model has no DynamicQuantizeLSTM: {ops}"
    xn = x.numpy().astype(np.float32)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            rows[("torch_dynamic", threads)] = time_us(lambda: qmodel(x))
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(i8, so, providers=["CPUExecutionProvider"])
        rows[("ort_dynamic", threads)] = time_us(lambda: sess.run(None, {"x": xn}))
    return rows, torch.__version__, ort.__version__


def main():
    first = finch_rows()
    peers, tv, ov = peer_rows()
    second = finch_rows()
    print(f"int8 LSTM, batch {B}, T {T}, IN {IN}, H {H}; torch {tv}, onnxruntime {ov}; "
          f"per sequence in us, median of {REPS}: wall and process CPU time (finch: two passes, before / "
          f"after the peers). On a shared machine the CPU time is the steadier measure at 1 thread.")
    names = [("BM_QLstmStatic", "finch static int8"), ("BM_QLstmDynamic", "finch dynamic int8"),
             ("BM_F32LstmCell", "finch fp32 (ops::lstm_cell)"), ("BM_F32LstmSeq", "finch fp32 (ops::lstm_seq)"),
             ("BM_QGruStatic", "finch static int8 GRU")]
    for threads in (1, 2):
        print(f"\n threads {threads}")
        print(f"  {'':30s} {'wall':>19s}   {'cpu':>19s}")
        mean = {}
        for key, label in names:
            (aw, ac), (bw, bc) = first[(key, threads)], second[(key, threads)]
            mean[key] = ((aw + bw) / 2, (ac + bc) / 2)
            print(f"  {label:30s} {aw:9.1f} / {bw:7.1f}   {ac:9.1f} / {bc:7.1f}")
        for key, label in (("torch_dynamic", "torch quantize_dynamic"), ("ort_dynamic", "ORT DynamicQuantizeLSTM")):
            mean[key] = peers[(key, threads)]
            print(f"  {label:30s} {mean[key][0]:19.1f}   {mean[key][1]:19.1f}")
        for i, what in ((0, "wall"), (1, "cpu")):
            st = mean["BM_QLstmStatic"][i]
            print(f"  {what:4s}: static int8 / finch fp32 cell = {st / mean['BM_F32LstmCell'][i]:.2f}, "
                  f"/ fp32 seq = {st / mean['BM_F32LstmSeq'][i]:.2f}; "
                  f"torch / static int8 = {mean['torch_dynamic'][i] / st:.1f}x; "
                  f"ORT / static int8 = {mean['ort_dynamic'][i] / st:.1f}x; static {st / T:.2f} us/step")


if __name__ == "__main__":
    main()
