# Two builds of one Google Benchmark binary side by side: the builds alternate in every round
# (one process each), median real and CPU time per row over the rounds, old / new ratios.
#   python3 bench/bench_ab.py OLD_BIN NEW_BIN FILTER [ROUNDS]
# e.g. python3 bench/bench_ab.py /tmp/old/bin/bench_qs8_lstm build/bin/bench_qs8_lstm \
#        'QLstmDynamic|F32LstmSeq|QDynLinear' 7
import json
import statistics
import subprocess
import sys

if len(sys.argv) < 4:
    sys.exit("usage: bench_ab.py OLD_BIN NEW_BIN FILTER [ROUNDS]")
bins = {"old": sys.argv[1], "new": sys.argv[2]}
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
if rounds < 1:
    sys.exit(f"bench_ab.py: expected ROUNDS >= 1, got {rounds}")
res = {}
for _ in range(rounds):
    for k, b in bins.items():
        out = subprocess.run([b, f"--benchmark_filter={sys.argv[3]}", "--benchmark_min_time=0.2",
                              "--benchmark_format=json"], check=True, capture_output=True, text=True).stdout
        for bm in json.loads(out)["benchmarks"]:
            res.setdefault((bm["name"], k), []).append((bm["real_time"], bm["cpu_time"]))
names = sorted({n for n, _ in res if (n, "old") in res and (n, "new") in res})
print(f"median of {rounds} alternating rounds (time unit: the bench's)")
print(f"{'benchmark':48s} {'old real':>9s} {'new real':>9s} {'ratio':>6s} {'old cpu':>9s} {'new cpu':>9s} {'ratio':>6s}")
for n in names:
    o, w = res[(n, "old")], res[(n, "new")]
    orl, nrl = statistics.median(x[0] for x in o), statistics.median(x[0] for x in w)
    oc, nc = statistics.median(x[1] for x in o), statistics.median(x[1] for x in w)
    print(f"{n:48s} {orl:9.2f} {nrl:9.2f} {orl / nrl:6.2f} {oc:9.2f} {nc:9.2f} {oc / nc:6.2f}")
