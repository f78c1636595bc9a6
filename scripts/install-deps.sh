#!/usr/bin/env bash
# Installs the Debian (bookworm) packages finch builds and tests with. Idempotent; uses sudo
# when not root. FINCH_SKIP_APT=1 skips it (for machines that already have everything).
set -euo pipefail
[ "${FINCH_SKIP_APT:-0}" = 1 ] && exit 0
pkgs=(g++ cmake make pkg-config libopenblas-dev libhwy-dev libstb-dev zlib1g-dev
      libsentencepiece-dev libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev
      libgpiod-dev ccache libopenmpi-dev openmpi-bin)  # OpenMPI: optional (data-parallel training, docs/distributed.md)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
