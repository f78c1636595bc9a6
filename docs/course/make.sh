#!/usr/bin/env bash
# make.sh: regenerates every block of printed output the course's chapters quote, from the
# examples themselves, so the text says what the code prints. A chapter quotes an example with a
# fence opened by "```text example=NAME" (optionally followed by rtol=R atol=A, the tolerances
# the drift check docs/course/check.sh applies); this script replaces the block's lines with the
# output of BUILD/bin/examples/NAME. With --bench it also reruns the int8 GEMM benchmark that
# 09-performance.md quotes (a "```text bench=qs8_gemm" block; timings, so never checked by CI).
#
# Usage: docs/course/make.sh [--bench] [BUILD_DIR]    (BUILD_DIR defaults to ./build)
# Builds the examples first (cmake --build BUILD_DIR --target NAME for each one quoted).
set -euo pipefail
bench=0
if [[ "${1:-}" == "--bench" ]]; then bench=1; shift; fi
build=${1:-build}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ -d "$build" ]] || { echo "make.sh: no build folder '$build' (configure with cmake first)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# replace_block FILE TAG OUTPUT: the lines between the fence "```text TAG" and its closing ```
# become OUTPUT's lines (the fence line itself, with its tolerances, is kept).
replace_block() {
  awk -v tag="$2" -v out="$3" '
    skipping && /^```/ { skipping = 0 }
    skipping { next }
    { print }
    $0 ~ "^```text " tag "( |$)" {
      while ((getline line < out) > 0) print line
      close(out)
      skipping = 1
    }' "$1" > "$1.new"
  mv "$1.new" "$1"
}

for chapter in "$here"/*.md; do
  for name in $(sed -n 's/^```text example=\([^ ]*\).*/\1/p' "$chapter"); do
    cmake --build "$build" --target "example_$name" > "$tmp/build.log" 2>&1 ||
      { cat "$tmp/build.log" >&2; echo "make.sh: building example_$name failed" >&2; exit 1; }
    "$build/bin/examples/$name" > "$tmp/$name.out" 2> "$tmp/$name.err" ||
      { cat "$tmp/$name.err" >&2; echo "make.sh: example $name failed" >&2; exit 1; }
    replace_block "$chapter" "example=$name" "$tmp/$name.out"
    echo "make.sh: $(basename "$chapter") <- $name ($(wc -l < "$tmp/$name.out") lines)"
  done
done

if [[ $bench == 1 ]]; then
  cmake --build "$build" --target bench_qs8_gemm > "$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log" >&2; echo "make.sh: building bench_qs8_gemm failed" >&2; exit 1; }
  {
    echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    "$build/bin/bench_qs8_gemm" --benchmark_filter='VnniPeak|Qs8Gemm512_Conv1x1|Qs8Gemm512_Linear|Sgemm512|QConv3x3' \
      --benchmark_repetitions=3 --benchmark_report_aggregates_only=true 2>/dev/null |
      grep -E '^(Benchmark|BM_.*_median)'
  } > "$tmp/bench.out"
  replace_block "$here/09-performance.md" "bench=qs8_gemm" "$tmp/bench.out"
  echo "make.sh: 09-performance.md <- bench_qs8_gemm"
fi
