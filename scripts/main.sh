#!/usr/bin/env bash
# The main job: installs the dependencies and Fashion-MNIST (Debian's dataset-fashion-mnist),
# builds finch, and trains the example CNN (about a minute on 2 cores). Extra arguments go to
# the program, e.g. `scripts/main.sh --epochs 5`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "${FINCH_SKIP_APT:-0}" != 1 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target fashion_mnist_example
build/bin/fashion_mnist_example --out out/fashion_mnist "$@"
