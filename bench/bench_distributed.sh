#!/usr/bin/env bash
# Data-parallel A/B on one machine: ResNet-20 training throughput of `mpirun -np 2` × 1 thread
# (per-rank batch B) against 1 process × 2 threads (batch 2B), alternated REPEATS times so both
# see the same machine load, plus the communication per step from summary.json's "distributed".
# Usage: bench/bench_distributed.sh BUILD_DIR [REPEATS] [LIMIT_TRAIN] [PER_RANK_BATCH] [BUCKET_MB]
set -euo pipefail
build=${1:?build dir}; repeats=${2:-3}; limit=${3:-1024}; b=${4:-32}; bucket=${5:-1}
data=${FINCH_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
common=(--model resnet20 --dataset fashion-mnist --data "$data" --epochs 1 --limit-train "$limit" --limit-test 64
        --lr 0.05 --schedule step --warmup-epochs 0 --workers 0 --seed 1)
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
field() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); d=s.get('distributed',{}); print(eval(sys.argv[2]))" "$@"; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$repeats"); do
  "$build/bin/train_cifar" "${common[@]}" --threads 2 --batch-size $((2 * b)) --out "$tmp/one" >/dev/null 2>&1
  "${mpi[@]}" "$build/bin/train_cifar" "${common[@]}" --threads 1 --batch-size "$b" --bucket-mb "$bucket" \
    --out "$tmp/two" >/dev/null 2>&1
  one=$(field "$tmp/one/summary.json" "s['train_images_per_second']")
  two=$(field "$tmp/two/summary.json" "s['train_images_per_second']")
  echo "run $i: 1 proc x 2 threads (batch $((2 * b))): $one img/s | 2 procs x 1 thread (batch $b each): $two img/s" \
       "| ratio $(python3 -c "print(round($two / $one, 3))") | load $(cut -d' ' -f1 /proc/loadavg)"
  field "$tmp/two/summary.json" \
    "'  comm: %s buckets, %d bytes/step, step %.4g s, all-reduce %.4g s (%.3g of the step), waited %.4g s (%.3g)' % (d['buckets'], d['gradient_bytes_per_step'], d['step_seconds'], d['allreduce_seconds_per_step'], d['allreduce_share_of_step'], d['wait_seconds_per_step'], d['wait_share_of_step'])"
done
