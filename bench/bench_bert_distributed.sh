#!/usr/bin/env bash
# Data-parallel A/B for BERT on one machine: train_bert (masked-LM, sequences of 128) throughput of
# `mpirun -np 2` × 1 thread (micro-batch B each) against 1 process × 2 threads (micro-batch 2B),
# alternated REPEATS times so both see the same machine load, plus the communication per step from
# summary.json's "distributed" block. Each run has 2 metrics rows of STEPS/2 steps; the second
# row's sequences/s is reported (the first includes the first steps' allocations).
# Usage: bench/bench_bert_distributed.sh BUILD_DIR [REPEATS] [PER_RANK_BATCH] [STEPS] [BUCKET_MB] [PRESET]
set -euo pipefail
build=${1:?build dir}; repeats=${2:-3}; b=${3:-16}; steps=${4:-8}; bucket=${5:-1}; preset=${6:-mini}
vocab=${FINCH_BERT_VOCAB:-/work/shared/data/text/bert-base-uncased-vocab.txt}
text=${FINCH_BERT_TEXT:-/work/shared/data/text/botchan.txt}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
common=(--vocab "$vocab" --text "$text" --preset "$preset" --seq-len 128 --steps "$steps" --log-every $((steps / 2))
        --eval-samples 0 --lr 1e-4 --seed 1 --quiet)
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
last_row() { python3 -c "import csv,sys; print(list(csv.DictReader(open(sys.argv[1])))[-1]['images_per_second'])" "$1"; }
field() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); d=s.get('distributed',{}); print(eval(sys.argv[2]))" "$@"; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$repeats"); do
  "$build/bin/train_bert" "${common[@]}" --threads 2 --batch-size $((2 * b)) --out "$tmp/one" >/dev/null 2>&1
  "${mpi[@]}" "$build/bin/train_bert" "${common[@]}" --threads 1 --batch-size "$b" --bucket-mb "$bucket" \
    --out "$tmp/two" >/dev/null 2>&1
  one=$(last_row "$tmp/one/metrics.csv"); two=$(last_row "$tmp/two/metrics.csv")
  echo "run $i: 1 proc x 2 threads (batch $((2 * b))): $one seq/s | 2 procs x 1 thread (batch $b each): $two seq/s" \
       "| ratio $(python3 -c "print(round($two / $one, 3))") | load $(cut -d' ' -f1 /proc/loadavg)"
  field "$tmp/two/summary.json" \
    "'  comm: %s buckets, %d bytes/step, step %.4g s, all-reduce %.4g s (%.3g of the step), waited %.4g s (%.3g)' % (d['buckets'], d['gradient_bytes_per_step'], d['step_seconds'], d['allreduce_seconds_per_step'], d['allreduce_share_of_step'], d['wait_seconds_per_step'], d['wait_share_of_step'])"
done
