#!/usr/bin/env bash
# Synchronized BatchNorm A/B: ResNet-20 training throughput of `mpirun -np 2` × 1 thread with
# per-process BN against the same run with --sync-bn, alternated REPEATS times so both see the
# same machine load, plus what sync BN adds per step (collectives, bytes, time) from summary.json.
# Usage: bench/bench_sync_bn.sh BUILD_DIR [REPEATS] [LIMIT_TRAIN] [PER_RANK_BATCH]
set -euo pipefail
build=${1:?build dir}; repeats=${2:-3}; limit=${3:-1024}; b=${4:-32}
data=${FINCH_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
common=(--model resnet20 --dataset fashion-mnist --data "$data" --epochs 1 --limit-train "$limit" --limit-test 64
        --lr 0.05 --schedule step --warmup-epochs 0 --workers 0 --seed 1 --threads 1 --batch-size "$b")
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
field() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); d=s.get('distributed',{}); print(eval(sys.argv[2]))" "$@"; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$repeats"); do
  "${mpi[@]}" "$build/bin/train_cifar" "${common[@]}" --out "$tmp/plain" >/dev/null 2>&1
  "${mpi[@]}" "$build/bin/train_cifar" "${common[@]}" --sync-bn --out "$tmp/sync" >/dev/null 2>&1
  plain=$(field "$tmp/plain/summary.json" "s['train_images_per_second']")
  sync=$(field "$tmp/sync/summary.json" "s['train_images_per_second']")
  echo "run $i: 2 procs x 1 thread (batch $b each): per-process BN $plain img/s | --sync-bn $sync img/s" \
       "| ratio $(python3 -c "print(round($sync / $plain, 3))") | load $(cut -d' ' -f1 /proc/loadavg)"
  field "$tmp/plain/summary.json" \
    "'  per-process BN: step %.4g s, gradient all-reduce %.4g s, waited %.4g s' % (d['step_seconds'], d['allreduce_seconds_per_step'], d['wait_seconds_per_step'])"
  field "$tmp/sync/summary.json" \
    "'  --sync-bn: step %.4g s, gradient all-reduce %.4g s, waited %.4g s; BN: %g collectives, %g bytes, %.4g s per step (%.3g of the step)' % (d['step_seconds'], d['allreduce_seconds_per_step'], d['wait_seconds_per_step'], d['sync_bn_collectives_per_step'], d['sync_bn_bytes_per_step'], d['sync_bn_seconds_per_step'], d['sync_bn_share_of_step'])"
done
