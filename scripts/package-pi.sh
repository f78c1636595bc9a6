#!/usr/bin/env bash
# Builds the Raspberry Pi (4 or 5, 64-bit OS) package of the sorter: cross-compiles the
# runtime-only build (FINCH_RUNTIME_ONLY: framework, ops, kernels, runtime) for aarch64 with
# cmake/aarch64-linux-gnu.cmake, strips `sorter` and `finch_run`, and packs them with a program,
# the systemd unit, an example GPIO config and the Pi's README (scripts/pi/) into a tarball.
#
#   scripts/package-pi.sh [--program MODEL.finch] [--out DIR] [--static-runtime]   (DIR: out/pi)
#
# OpenBLAS, Highway, zlib, libgpiod and libstdc++ are the OS's shared libraries (64-bit Raspberry
# Pi OS bookworm / Debian 12 have the versions this cross compiler targets; the README lists the
# apt line). --static-runtime links libstdc++ and libgcc in (for older OS images; about 1.5 MB
# more per binary). The binaries are built for size where it costs no speed: link-time optimization
# plus one section per function and datum, which the linker's --gc-sections then drops when unused
# (measured on sorter: 2.69 MB plain, 2.24 MB with --gc-sections, 1.58 MB with LTO as well; the
# kernels are the same code, and -ffp-contract=off keeps LTO from fusing float operations across
# files). FINCH_PI_LTO=0 builds without LTO. Installs the cross toolchain and
# the arm64 -dev packages first like scripts/test-arm.sh (FINCH_SKIP_APT=1 skips that).
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: scripts/package-pi.sh [--program MODEL.finch] [--out DIR] [--static-runtime]"
program=""; out=out/pi; link_flags=""
while [ $# -gt 0 ]; do
  case "$1" in
    --program) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; program=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; out=$2; shift 2 ;;
    --static-runtime) link_flags="-static-libstdc++ -static-libgcc"; shift ;;
    *) echo "package-pi: unknown argument $1 ($usage)" >&2; exit 2 ;;
  esac
done
if [ -n "$program" ] && [ ! -f "$program" ]; then
  echo "package-pi: --program $program: expected a .finch program, found no file" >&2; exit 2
fi

if [ "${FINCH_SKIP_APT:-0}" != 1 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  update=0
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
    update=1
  fi
  pkgs=(g++-aarch64-linux-gnu binutils-aarch64-linux-gnu qemu-user cmake make pkg-config nlohmann-json3-dev
        libstb-dev libhwy-dev:arm64 libopenblas-dev:arm64 zlib1g-dev:arm64 libgpiod-dev:arm64)
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ] || [ $update = 1 ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

source scripts/ccache-env.sh
size_cxx="-ffunction-sections -fdata-sections"
size_link="-Wl,--gc-sections"
size_tools=()
if [ "${FINCH_PI_LTO:-1}" != 0 ]; then
  # gcc-ar/gcc-ranlib: the static layer libraries hold LTO bytecode, which plain ar cannot index.
  size_cxx="$size_cxx -flto=auto"
  size_link="$size_link -flto=auto"
  size_tools=(-DCMAKE_AR="$(command -v aarch64-linux-gnu-gcc-ar)" -DCMAKE_RANLIB="$(command -v aarch64-linux-gnu-gcc-ranlib)")
fi
cmake -S . -B build-pi -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake "${launcher[@]}" \
      -DFINCH_RUNTIME_ONLY=ON -DFINCH_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_FLAGS="$size_cxx" -DCMAKE_EXE_LINKER_FLAGS="$size_link $link_flags" "${size_tools[@]}"
cmake --build build-pi -j"${FINCH_JOBS:-$(nproc)}" --target sorter finch_run

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg="$stage/finch-sorter"
mkdir -p "$pkg/bin"
for b in sorter finch_run; do
  aarch64-linux-gnu-strip -o "$pkg/bin/$b" "build-pi/bin/$b"
done
cp scripts/pi/README.md scripts/pi/finch-sorter.service scripts/pi/gpio.conf.example "$pkg/"
[ -n "$program" ] && cp "$program" "$pkg/model.finch"
grep -q "^GPIOD_FOUND:INTERNAL=1" build-pi/CMakeCache.txt ||
  echo "package-pi: warning: built without libgpiod (install libgpiod-dev:arm64): --gpio-config will refuse" >&2

mkdir -p "$out"
tarball="$out/finch-sorter-aarch64.tar.gz"
tar czf "$tarball.tmp" -C "$stage" finch-sorter
mv "$tarball.tmp" "$tarball"
for b in sorter finch_run; do
  printf 'package-pi: %-9s %8d bytes stripped (aarch64); needs %s\n' "$b" "$(stat -c %s "$pkg/bin/$b")" \
    "$(aarch64-linux-gnu-readelf -d "$pkg/bin/$b" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
done
echo "package-pi: $tarball ($(stat -c %s "$tarball") bytes)"
