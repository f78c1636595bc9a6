#!/usr/bin/env bash
# `finch emit-c` against the runtime on a real series test set (docs/emit-c.md): emits a static
# int8 series PROGRAM as C for batch 1 (--batch 1), builds it with g++ -O2, runs the runtime
# (emit_c_check_series: the test set read as `finch run` reads it, each series alone) and the
# emitted program on every test series with its length, compares the raw outputs byte for byte,
# the aarch64 static build too under qemu-aarch64 on the first QEMU_RECORDS (default 100), and
# times batch-1 runs of the first series at 1 thread (median of REPEAT runs, three alternating
# rounds), with the runtime's scalar reference kernels for scale.
#
# Text programs (train_text's imdb_lstm / imdb_bilstm, static or dynamic int8) take token ids
# (i64) instead of series; DATA=DIR reads their reviews from DIR instead of the recorded folder,
# RECORDS=N compares the first N test records only (default: all). CFLAGS (default -O2) are the
# x86 build's flags, e.g. CFLAGS="-O2 -mfma" for a dynamic program's fmaf as one instruction.
#
#   bench/emit_c_check_series.sh BUILD PROGRAM.finch OUT [REPEAT]      (QEMU_RECORDS=100 default)
set -euo pipefail
usage="usage: bench/emit_c_check_series.sh BUILD PROGRAM.finch OUT [REPEAT]"
[ $# -ge 3 ] && [ $# -le 4 ] || { echo "$usage" >&2; exit 2; }
build=$1 program=$2 out=$3 repeat=${4:-200} qemu_records=${QEMU_RECORDS:-100}
[[ "$repeat" =~ ^[0-9]{1,7}$ ]] && [ "$repeat" -gt 0 ] || { echo "emit_c_check_series: REPEAT: expected a whole number > 0, found '$repeat'" >&2; exit 2; }
[[ "$qemu_records" =~ ^[0-9]{1,7}$ ]] || { echo "emit_c_check_series: QEMU_RECORDS: expected a whole number, found '$qemu_records'" >&2; exit 2; }
extra=()
if [ -n "${RECORDS:-}" ]; then
  [[ "$RECORDS" =~ ^[0-9]{1,7}$ ]] && [ "$RECORDS" -gt 0 ] || { echo "emit_c_check_series: RECORDS: expected a whole number > 0, found '$RECORDS'" >&2; exit 2; }
  extra+=(--limit "$RECORDS")
fi
[ -z "${DATA:-}" ] || extra+=(--data "$DATA")
for f in "$build/bin/finch" "$build/bin/emit_c_check_series" "$program"; do
  [ -f "$f" ] || { echo "emit_c_check_series: $f: expected a file, found none (build the finch and emit_c_check_series targets)" >&2; exit 1; }
done
mkdir -p "$out"
echo "load: $(uptime | sed 's/.*load average: //')"
"$build/bin/finch" emit-c "$program" --out "$out/src" --name net --batch 1 > /dev/null
cflags=${CFLAGS:--O2}
# shellcheck disable=SC2086  # CFLAGS is a list of flags
g++ $cflags -o "$out/net" "$out/src/net.c" "$out/src/net_main.c" -lm
"$build/bin/emit_c_check_series" "$program" "$out/series.f32" "$out/lengths.i64" "$out/runtime.bin" ${extra[@]+"${extra[@]}"}
"$out/net" "$out/series.f32" "$out/lengths.i64" --out "$out/emitted.bin" --quiet
records=$(( $(stat -c %s "$out/lengths.i64") / 8 ))
if cmp -s "$out/runtime.bin" "$out/emitted.bin"; then
  echo "outputs: emitted (x86) = runtime byte for byte on all $records test records"
else
  echo "outputs: emitted (x86) differs from the runtime in $(cmp -l "$out/runtime.bin" "$out/emitted.bin" | wc -l) bytes of $(stat -c %s "$out/runtime.bin")"
  status=1
fi
# The same source built for aarch64 (static) and run under qemu on the first QEMU_RECORDS series.
if command -v aarch64-linux-gnu-gcc > /dev/null && command -v qemu-aarch64 > /dev/null && [ "$qemu_records" -gt 0 ]; then
  aarch64-linux-gnu-gcc -std=c99 -O2 -static -o "$out/net.aarch64" "$out/src/net.c" "$out/src/net_main.c" -lm
  n=$(( qemu_records < records ? qemu_records : records ))
  head -c $(( n * $(stat -c %s "$out/series.f32") / records )) "$out/series.f32" > "$out/series.qemu.f32"
  head -c $(( n * 8 )) "$out/lengths.i64" > "$out/lengths.qemu.i64"
  qemu-aarch64 -cpu cortex-a72 "$out/net.aarch64" "$out/series.qemu.f32" "$out/lengths.qemu.i64" --out "$out/emitted.aarch64.bin" --quiet
  if cmp -s <(head -c $(( n * $(stat -c %s "$out/runtime.bin") / records )) "$out/runtime.bin") "$out/emitted.aarch64.bin"; then
    echo "outputs: emitted (aarch64 -static, qemu cortex-a72) = x86 runtime byte for byte on the first $n series"
  else
    echo "outputs: emitted (aarch64, qemu) differs from the x86 runtime on the first $n series"
    status=1
  fi
fi
for round in 1 2 3; do
  both=$("$build/bin/emit_c_check_series" "$program" "$out/first.f32" "$out/first.i64" "$out/first.bin" --bench "$repeat" --limit 1 ${DATA:+--data "$DATA"})
  rt=$(grep '^runtime: .* runs' <<< "$both") ref_cpu=$(sed -n 's/^runtime reference kernels.*median \([0-9.]*\) ms.*/\1/p' <<< "$both")
  em=$("$out/net" "$out/first.f32" "$out/first.i64" --quiet --repeat "$repeat" 2>&1)
  rt_wall=$(sed -n 's/.*: median \([0-9.]*\) ms.*/\1/p' <<< "$rt") rt_cpu=$(sed -n 's/.*cpu time median \([0-9.]*\) ms.*/\1/p' <<< "$rt")
  em_wall=$(sed -n 's/.*: median \([0-9.]*\) ms.*/\1/p' <<< "$em") em_cpu=$(sed -n 's/.*cpu time median \([0-9.]*\) ms.*/\1/p' <<< "$em")
  echo "round $round: median wall ms runtime $rt_wall, emitted (g++ $cflags) $em_wall ($(awk -v a="$em_wall" -v b="$rt_wall" 'BEGIN { printf "%.2fx", a / b }'));" \
       "median cpu ms runtime $rt_cpu, emitted $em_cpu ($(awk -v a="$em_cpu" -v b="$rt_cpu" 'BEGIN { printf "%.2fx", a / b }'))," \
       "runtime reference kernels $ref_cpu ($(awk -v a="$em_cpu" -v b="$ref_cpu" 'BEGIN { printf "emitted %.2fx of it", a / b }'))"
done
echo "source: net.c $(stat -c %s "$out/src/net.c") bytes, net.h $(stat -c %s "$out/src/net.h"), net_main.c $(stat -c %s "$out/src/net_main.c")"
echo "x86 g++ $cflags: $(stat -c %s "$out/net") bytes"
echo "load: $(uptime | sed 's/.*load average: //')"
exit ${status:-0}
