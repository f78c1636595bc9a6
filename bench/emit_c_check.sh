#!/usr/bin/env bash
# `finch emit-c` against the runtime on real images (docs/emit-c.md): emits PROGRAM as C, builds it
# with g++ -O2 (x86) and aarch64-linux-gnu-g++ -O2 -static, runs both the runtime (emit_c_check)
# and the emitted program on every image of LIST, compares the raw outputs byte for byte (the
# aarch64 binary too, under qemu-aarch64, on the first QEMU_RECORDS records), and reports the
# source and binary sizes and the batch-1 latency of each at 1 thread (median of REPEAT runs).
#
#   bench/emit_c_check.sh BUILD PROGRAM.finch LIST.txt OUT [REPEAT]      (QEMU_RECORDS=100 default)
set -euo pipefail
usage="usage: bench/emit_c_check.sh BUILD PROGRAM.finch LIST.txt OUT [REPEAT]"
[ $# -ge 4 ] && [ $# -le 5 ] || { echo "$usage" >&2; exit 2; }
build=$1 program=$2 list=$3 out=$4 repeat=${5:-200} qemu_records=${QEMU_RECORDS:-100}
[[ "$repeat" =~ ^[0-9]{1,7}$ ]] && [ "$repeat" -gt 0 ] || { echo "emit_c_check: REPEAT: expected a whole number > 0, found '$repeat'" >&2; exit 2; }
[[ "$qemu_records" =~ ^[0-9]{1,7}$ ]] || { echo "emit_c_check: QEMU_RECORDS: expected a whole number, found '$qemu_records'" >&2; exit 2; }
for f in "$build/bin/finch" "$build/bin/emit_c_check" "$program" "$list"; do
  [ -f "$f" ] || { echo "emit_c_check: $f: expected a file, found none (build the finch and emit_c_check targets)" >&2; exit 1; }
done
mkdir -p "$out"
echo "load: $(uptime | sed 's/.*load average: //')"
"$build/bin/finch" emit-c "$program" --out "$out/src" --name net
g++ -O2 -o "$out/net" "$out/src/net.c" "$out/src/net_main.c" -lm
strip -o "$out/net.stripped" "$out/net"
"$build/bin/emit_c_check" "$program" "$list" "$out/records.f32" "$out/runtime.bin"
"$out/net" "$out/records.f32" --out "$out/emitted.bin" --quiet
# Latency side by side, three alternating rounds (the machine is shared): batch 1, 1 thread, the
# first image, median of REPEAT runs each.
head -n 1 "$list" > "$out/first.txt"
for round in 1 2 3; do
  both=$("$build/bin/emit_c_check" "$program" "$out/first.txt" "$out/first.f32" "$out/first.bin" --bench "$repeat")
  rt=$(grep '^runtime: .* runs' <<< "$both") ref_cpu=$(sed -n 's/^runtime reference kernels.*median \([0-9.]*\) ms.*/\1/p' <<< "$both")
  em=$("$out/net" "$out/first.f32" --quiet --repeat "$repeat" 2>&1)
  rt_wall=$(sed -n 's/.*: median \([0-9.]*\) ms.*/\1/p' <<< "$rt") rt_cpu=$(sed -n 's/.*cpu time median \([0-9.]*\) ms.*/\1/p' <<< "$rt")
  em_wall=$(sed -n 's/.*: median \([0-9.]*\) ms.*/\1/p' <<< "$em") em_cpu=$(sed -n 's/.*cpu time median \([0-9.]*\) ms.*/\1/p' <<< "$em")
  echo "round $round: median wall ms runtime $rt_wall, emitted (g++ -O2) $em_wall ($(awk -v a="$em_wall" -v b="$rt_wall" 'BEGIN { printf "%.1fx", a / b }'));" \
       "median cpu ms runtime $rt_cpu, emitted $em_cpu ($(awk -v a="$em_cpu" -v b="$rt_cpu" 'BEGIN { printf "%.1fx", a / b }'))," \
       "runtime reference kernels $ref_cpu ($(awk -v a="$em_cpu" -v b="$ref_cpu" 'BEGIN { printf "emitted %.2fx of it", a / b }'))"
done
records=$(( $(stat -c %s "$out/records.f32") / $(grep -m1 -o 'net_INPUT_SIZE [0-9]*' "$out/src/net.h" | cut -d' ' -f2) / 4 ))
if cmp -s "$out/runtime.bin" "$out/emitted.bin"; then
  echo "outputs: emitted (x86) = runtime byte for byte on all $records images"
else
  echo "outputs: emitted (x86) differs from the runtime in $(cmp -l "$out/runtime.bin" "$out/emitted.bin" | wc -l) bytes"
  status=1
fi
if command -v aarch64-linux-gnu-g++ > /dev/null; then
  aarch64-linux-gnu-g++ -O2 -static -o "$out/net.aarch64" "$out/src/net.c" "$out/src/net_main.c" -lm
  aarch64-linux-gnu-strip -o "$out/net.aarch64.stripped" "$out/net.aarch64"
  echo "aarch64 -O2 -static: $(stat -c %s "$out/net.aarch64") bytes, stripped $(stat -c %s "$out/net.aarch64.stripped")"
  if [ "$qemu_records" -gt 0 ] && command -v qemu-aarch64 > /dev/null; then
    n=$(( qemu_records < records ? qemu_records : records ))
    bytes_in=$(( n * $(stat -c %s "$out/records.f32") / records ))
    bytes_out=$(( n * $(stat -c %s "$out/runtime.bin") / records ))
    head -c "$bytes_in" "$out/records.f32" > "$out/records.qemu.f32"
    qemu-aarch64 -cpu cortex-a72 "$out/net.aarch64" "$out/records.qemu.f32" --out "$out/emitted.aarch64.bin" --quiet
    if cmp -s <(head -c "$bytes_out" "$out/runtime.bin") "$out/emitted.aarch64.bin"; then
      echo "outputs: emitted (aarch64, qemu cortex-a72) = x86 runtime byte for byte on the first $n images"
    else
      echo "outputs: emitted (aarch64, qemu) differs from the x86 runtime on the first $n images"
      status=1
    fi
  fi
fi
echo "source: net.c $(stat -c %s "$out/src/net.c") bytes, net.h $(stat -c %s "$out/src/net.h"), net_main.c $(stat -c %s "$out/src/net_main.c")"
echo "x86 g++ -O2: $(stat -c %s "$out/net") bytes, stripped $(stat -c %s "$out/net.stripped")"
echo "load: $(uptime | sed 's/.*load average: //')"
exit ${status:-0}
