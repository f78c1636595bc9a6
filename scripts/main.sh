#!/usr/bin/env bash
# The main job: installs the dependencies and Fashion-MNIST (Debian's dataset-fashion-mnist),
# builds finch, and trains LeNet-5 with train_cifar's defaults (about 3 minutes on 2 cores,
# ~90.6 % test accuracy), leaving model, checkpoint, metrics, summary.json and report.html in
# out/lenet5-fashion-mnist. Extra arguments go to train_cifar, e.g. `--model resnet20`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "${FINCH_SKIP_APT:-0}" != 1 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target train_cifar
build/bin/train_cifar --model lenet5 --dataset fashion-mnist --data /usr/share/datasets/fashion-mnist \
  --out out/lenet5-fashion-mnist "$@"

