#!/usr/bin/env bash
# Arranges the CIFAR-10 JPEGs (../shared/data/cifar10/cifar10-jpeg.tar.gz: 50,000 train and
# 10,000 test 32x32 JPEGs) as the photo folder `train_cifar --dataset folder` reads:
# OUT/train/<class>/*.jpg and OUT/test/<class>/*.jpg (torchvision's ImageFolder layout).
# A real photo set for the sorter's pipeline; there are no photos of bottles or cans here.
#
#   scripts/cifar-folders.sh OUT [--train-per-class N] [--test-per-class N] [--tar FILE]
#
# --*-per-class keeps the first N files of each class by name (a quick subset; default: all).
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: scripts/cifar-folders.sh OUT [--train-per-class N] [--test-per-class N] [--tar FILE]"
out=""; train_n=0; test_n=0; tarball=../shared/data/cifar10/cifar10-jpeg.tar.gz
count() {  # a whole number > 0, or one sentence and exit 2
  [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] && [ "${#2}" -le 9 ] || { echo "cifar-folders: $1: expected a whole number > 0, found '$2'" >&2; exit 2; }
}
while [ $# -gt 0 ]; do
  case "$1" in
    --train-per-class) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; count "$1" "$2"; train_n=$2; shift 2 ;;
    --test-per-class) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; count "$1" "$2"; test_n=$2; shift 2 ;;
    --tar) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; tarball=$2; shift 2 ;;
    -*) echo "cifar-folders: unknown option $1 ($usage)" >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "$usage" >&2; exit 2; }; out=$1; shift ;;
  esac
done
[ -n "$out" ] || { echo "$usage" >&2; exit 2; }
[ -f "$tarball" ] || { echo "cifar-folders: $tarball: expected the CIFAR-10 JPEG tarball, found no file" >&2; exit 1; }
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
  echo "cifar-folders: $out: expected a new or empty folder, found files in it" >&2; exit 1
fi

# Unpack beside OUT, then move the kept files into place: a failed run never leaves a
# half-filled OUT that looks complete.
mkdir -p "$out"
stage=$(mktemp -d "$out/.unpack.XXXXXX")
trap 'rm -rf "$stage"' EXIT
tar xzf "$tarball" -C "$stage"
src="$stage/cifar10-jpeg"
for split in train test; do
  [ -d "$src/$split" ] || { echo "cifar-folders: $tarball: expected $split/<class>/ folders, found none" >&2; exit 1; }
  n=$train_n; [ $split = test ] && n=$test_n
  classes=0
  for dir in "$src/$split"/*/; do
    cls=$(basename "$dir")
    mkdir -p "$out/$split/$cls"
    if [ "$n" -gt 0 ]; then
      find "$dir" -maxdepth 1 -name '*.jpg' | sort | sed -n "1,${n}p" | xargs -r mv -t "$out/$split/$cls"
    else
      find "$dir" -maxdepth 1 -name '*.jpg' -print0 | xargs -0 -r mv -t "$out/$split/$cls"
    fi
    classes=$((classes + 1))
  done
  [ $classes -eq 10 ] || { echo "cifar-folders: $tarball: expected 10 classes in $split/, found $classes" >&2; exit 1; }
  echo "cifar-folders: $out/$split: $(find "$out/$split" -name '*.jpg' | wc -l) JPEGs in $classes class folders"
done
