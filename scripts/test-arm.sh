#!/usr/bin/env bash
# Cross-compiles the deployable part of finch (FINCH_RUNTIME_ONLY: framework, ops, kernels,
# runtime, finch_run and their tests) for aarch64 and runs its tests under qemu-aarch64
# twice: QEMU_CPU=cortex-a72 (Raspberry Pi 4: ARMv8.0, no dot product) and cortex-a76 (Pi 5:
# ARMv8.2 with SDOT/UDOT and FP16 arithmetic). Installs the cross compiler, qemu and the arm64 -dev packages first
# (idempotent apt-get, through sudo when not root; FINCH_SKIP_APT=1 skips it). Extra arguments go
# to ctest (default: -LE long), e.g. `scripts/test-arm.sh -R Reference`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${FINCH_SKIP_APT:-0}" != 1 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  # Debian multiarch: the arm64 -dev packages install beside the amd64 ones (same versions are
  # required, so apt may upgrade an amd64 library, e.g. zlib, to the arm64 one's version).
  update=0
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
    update=1
  fi
  pkgs=(g++-aarch64-linux-gnu qemu-user cmake make pkg-config nlohmann-json3-dev
        libhwy-dev:arm64 libopenblas-dev:arm64 zlib1g-dev:arm64 libgtest-dev:arm64 libstb-dev
        libgpiod-dev:arm64)
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ] || [ $update = 1 ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

jobs=${FINCH_JOBS:-$(nproc)}
start=$SECONDS
source scripts/ccache-env.sh
cmake -S . -B build-arm -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake "${launcher[@]}" \
      -DFINCH_RUNTIME_ONLY=ON -DCMAKE_BUILD_TYPE=Release
cmake --build build-arm -j"$jobs"
echo "test-arm: cross build took $((SECONDS - start)) s"

if [ $# -eq 0 ]; then set -- -LE long; fi
# FINCH_EXPECT_ARM_DOTPROD and FINCH_EXPECT_ARM_FP16 tell the CpuFeatures, Qs8Gemm, F16Gemm and
# F16Program tests what the modelled CPU has (the a72 has neither, the a76 both).
for cpu in cortex-a72:0 cortex-a76:1; do
  start=$SECONDS
  QEMU_CPU=${cpu%:*} FINCH_EXPECT_ARM_DOTPROD=${cpu#*:} FINCH_EXPECT_ARM_FP16=${cpu#*:} \
    ctest --test-dir build-arm --output-on-failure -j"$jobs" "$@"
  echo "test-arm: tests under QEMU_CPU=${cpu%:*} took $((SECONDS - start)) s"
done
# The switch that forces the ARMv8.0 path on a dot-product CPU, and the int8 GEMM tests once more
# under it (the sdot kernels' portable fallback on a Pi 5).
QEMU_CPU=cortex-a76 FINCH_DISABLE_DOTPROD=1 FINCH_EXPECT_ARM_DOTPROD=0 \
  ctest --test-dir build-arm --output-on-failure -j"$jobs" -R '^(CpuFeatures|Qs8Gemm|QConv2d|QLinear)\.'
# The switch that turns native fp16 arithmetic off on an FP16 CPU (fp16 programs then compute in
# fp32 as on a Pi 4), and the fp16 tests once more under it.
QEMU_CPU=cortex-a76 FINCH_DISABLE_FP16=1 FINCH_EXPECT_ARM_FP16=0 \
  ctest --test-dir build-arm --output-on-failure -j"$jobs" -R '^(CpuFeatures|F16Gemm|F16Conv2d|F16Linear|F16Program)\.'
