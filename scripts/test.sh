#!/usr/bin/env bash
# Installs the dependencies, builds finch (Release) and runs the default test suite (everything
# but the ctest label "long"). Extra arguments go to ctest, e.g. `scripts/test.sh -L long`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
source scripts/ccache-env.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${launcher[@]}"
cmake --build build -j"$jobs"
if [ $# -eq 0 ]; then set -- -LE long; fi
ctest --test-dir build --output-on-failure -j"$jobs" "$@"
