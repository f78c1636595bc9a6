# Per-node achieved int8 ops/s of .finch programs at 1 thread against a VNNI peak (issue 22): the
# nodes' multiply-adds from `finch inspect` (weights × output pixels), their times from
# `bench_threads --profile` (the 1-thread column), 2 ops per multiply-add.
#   python3 bench/int8_node_efficiency.py --finch build/bin/finch --bench-threads build/bin/bench_threads \
#       --peak-gops 469 /work/peers-out/models/resnet20-int8.finch [--iters 300 --rounds 3] [--top 15]
# --peak-gops: what `bench_qs8_gemm --benchmark_filter=VnniPeak` reaches (its GOPS counter).
import argparse
import re
import subprocess
import sys


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"int8_node_efficiency.py: {' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()[-300:]}")
    return r.stdout + r.stderr


def node_macs(inspect_text, program):
    # Rows: "#  node  op  [shape]  dtype  quantization  params  bytes". An int32 bias counts once in
    # params and 4 bytes in bytes, an int8 weight once in both: bias = (bytes − params) / 3.
    row = re.compile(r"^\s*\d+\s+(\S+)\s+(\S+)\s+\[([\d,]+)\]\s+\S+\s+.*?\s(\d+)\s+(\d+)\s*$")
    macs = {}
    for line in inspect_text.splitlines():
        m = row.match(line)
        if not m:
            continue
        name, op, shape, params, nbytes = m.group(1), m.group(2), m.group(3), int(m.group(4)), int(m.group(5))
        dims = [int(d) for d in shape.split(",")]
        if nbytes < params or (nbytes - params) % 3:
            sys.exit(f"int8_node_efficiency.py: {program}: node {name}: expected bytes = params + 3·bias, "
                     f"found params {params}, bytes {nbytes}")
        weights = params - (nbytes - params) // 3
        if op == "qconv2d":
            macs[(name, op)] = weights * (dims[2] * dims[3] if len(dims) == 4 else 1) * dims[0]
        elif op == "qlinear":
            macs[(name, op)] = weights * dims[0]
        else:
            macs[(name, op)] = 0
    return macs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--finch", required=True)
    ap.add_argument("--bench-threads", required=True)
    ap.add_argument("--peak-gops", type=float, required=True)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("programs", nargs="+")
    a = ap.parse_args()
    if not a.peak_gops > 0:
        sys.exit(f"int8_node_efficiency.py: expected --peak-gops > 0, got {a.peak_gops}")
    for prog in a.programs:
        macs = node_macs(run([a.finch, "inspect", prog]), prog)
        prof = run([a.bench_threads, prog, "--profile", "--iters", str(a.iters), "--rounds", str(a.rounds)])
        head = next((l for l in prof.splitlines() if "1 thr" in l and "ms" in l), "")
        whole = re.search(r"1 thr ([\d.]+) ms", head)
        if not whole:
            sys.exit(f"int8_node_efficiency.py: {prog}: no '1 thr … ms' line in bench_threads' output")
        rows = []
        for line in prof.splitlines():
            m = re.match(r"^\s+(\S+)\s+(\S+)\s+([\d.]+)\s+([\d.]+)\s*$", line)
            if m and (m.group(1), m.group(2)) in macs:
                us = float(m.group(3))
                ops = 2 * macs[(m.group(1), m.group(2))]
                rows.append((us, m.group(1), m.group(2), ops))
        total_ops = 2 * sum(macs.values())
        sum_us = sum(r[0] for r in rows)
        ms = float(whole.group(1))
        print(f"{prog}: {total_ops / 1e6:.1f} M int8 ops, 1 thread {ms:.3f} ms (sum of nodes {sum_us:.1f} us): "
              f"{total_ops / ms / 1e6:.0f} GOPS = {100 * total_ops / ms / 1e6 / a.peak_gops:.0f} % of {a.peak_gops:.0f}")
        print(f"  {'node':36s} {'op':20s} {'us':>7s} {'% time':>7s} {'Mops':>7s} {'GOPS':>6s} {'% peak':>6s}")
        for us, name, op, ops in sorted(rows, reverse=True)[:a.top]:
            g = ops / us / 1e3 if us > 0 else 0.0
            print(f"  {name:36s} {op:20s} {us:7.2f} {100 * us / sum_us:7.1f} {ops / 1e6:7.2f} {g:6.0f} "
                  f"{100 * g / a.peak_gops:6.0f}")
        by_op = {}
        for us, _, op, ops in rows:
            t = by_op.setdefault(op, [0.0, 0])
            t[0] += us
            t[1] += ops
        print("  by op: " + ", ".join(f"{op} {t[0]:.1f} us ({100 * t[0] / sum_us:.0f} %)"
                                       for op, t in sorted(by_op.items(), key=lambda kv: -kv[1][0])))


if __name__ == "__main__":
    main()
