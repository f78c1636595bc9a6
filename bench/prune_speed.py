# Batch-1 latency of pruned vs unpruned .finch programs side by side: `finch bench` on each
# program in turn, alternating for ROUNDS rounds (one process each), the median of the per-run
# medians per program and the pruned / unpruned ratio of each pair; the same for the p10 (on a
# loaded machine the fastest runs show the compute, the median also the waits for a core).
#   python3 bench/prune_speed.py FINCH ROUNDS BASE.finch PRUNED.finch [BASE2.finch PRUNED2.finch ...]
# e.g. python3 bench/prune_speed.py build/bin/finch 5 r20-fp32.finch r20-s50-fp32.finch \
#        r20-int8.finch r20-s50-int8.finch
import json
import os
import statistics
import subprocess
import sys
import tempfile

if len(sys.argv) < 5 or (len(sys.argv) - 3) % 2:
    sys.exit("usage: prune_speed.py FINCH ROUNDS BASE.finch PRUNED.finch [BASE2 PRUNED2 ...]")
finch, rounds, progs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
if rounds < 1:
    sys.exit(f"prune_speed.py: expected ROUNDS >= 1, got {rounds}")
med = {p: [] for p in progs}
p10 = {p: [] for p in progs}
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "bench.json")
    for _ in range(rounds):
        for p in progs:
            subprocess.run([finch, "bench", p, "--batch", "1", "--threads", "1", "--iters", "100",
                            "--warmup", "10", "--json", out], check=True, capture_output=True)
            with open(out) as f:
                j = json.load(f)
            med[p].append(j["latency_ms_median"])
            p10[p].append(j["latency_ms_p10"])
print(f"batch-1 latency, 1 thread: median of {rounds} alternating rounds of 100 runs (ms); load {os.getloadavg()}")
print(f"{'unpruned':28s} {'median':>8s} {'p10':>8s} {'pruned':28s} {'median':>8s} {'p10':>8s} {'ratio':>6s} {'p10 ratio':>9s}")
for base, pruned in zip(progs[::2], progs[1::2]):
    b, q = statistics.median(med[base]), statistics.median(med[pruned])
    b10, q10 = statistics.median(p10[base]), statistics.median(p10[pruned])
    print(f"{os.path.basename(base):28s} {b:8.3f} {b10:8.3f} {os.path.basename(pruned):28s} {q:8.3f} {q10:8.3f} "
          f"{q / b:6.3f} {q10 / b10:9.3f}")
