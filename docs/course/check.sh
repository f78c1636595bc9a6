#!/usr/bin/env bash
# check.sh: runs one course example and checks that its output still matches the block its
# chapter quotes (docs/course/*.md, a fence opened with "```text example=NAME rtol=R atol=A").
# Usage: docs/course/check.sh BINARY NAME. Exit 0 only when the example succeeds and matches.
set -euo pipefail
bin=$1
name=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
chapter=$(grep -lE "^\`\`\`text example=$name( |\$)" "$here"/*.md | head -n 1 || true)
if [[ -z "$chapter" ]]; then
  echo "check.sh: no chapter in $here quotes example $name (expected a fence \`\`\`text example=$name)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s.%N)
if ! "$bin" > "$tmp/got" 2> "$tmp/err"; then
  echo "check.sh: $bin failed:" >&2
  cat "$tmp/err" >&2
  exit 1
fi
end=$(date +%s.%N)
# The quoted block and its tolerances (defaults: exact to print precision).
header=$(grep -m1 -E "^\`\`\`text example=$name( |\$)" "$chapter")
rtol=$(sed -n 's/.* rtol=\([^ ]*\).*/\1/p' <<< "$header")
atol=$(sed -n 's/.* atol=\([^ ]*\).*/\1/p' <<< "$header")
# Tolerances are read from a file anyone edits: accept only plain non-negative numbers.
for tol in "${rtol:-0}" "${atol:-0}"; do
  if ! [[ "$tol" =~ ^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]]; then
    echo "check.sh: $chapter: expected rtol/atol to be non-negative numbers on the fence of $name, found '$tol'" >&2
    exit 1
  fi
done
awk -v name="$name" '
  $0 ~ "^```text example=" name "( |$)" { inside = 1; next }
  inside && /^```/ { exit }
  inside { print }' "$chapter" > "$tmp/want"
if ! awk -v rtol="${rtol:-0}" -v atol="${atol:-0}" -f "$here/compare.awk" "$tmp/got" "$tmp/want"; then
  echo "check.sh: $name's output no longer matches $chapter (rtol ${rtol:-0}, atol ${atol:-0});" \
       "if the change is intended, run docs/course/make.sh and review the diff" >&2
  exit 1
fi
printf 'check.sh: %s matches %s (%d lines, rtol %s, atol %s, %.2f s)\n' "$name" \
  "$(basename "$chapter")" "$(wc -l < "$tmp/want")" "${rtol:-0}" "${atol:-0}" \
  "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"
