#!/usr/bin/env bash
# The sanitizer phase of ./tests/run.sh: builds build-asan/ (clang,
# ASan+UBSan, libFuzzer coverage; RINGWARDEN_SANITIZE=ON RINGWARDEN_FUZZ=ON),
# runs each fuzz target for RINGWARDEN_FUZZ_SECONDS (default 20), then the unit
# tests there (they include a replay of every committed fuzz seed). Exits non-zero on any
# failure or sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)
export CCACHE_BASEDIR="$(pwd)"
export CCACHE_NOHASHDIR=1
source tests/sanitizer_options.sh

start=${SECONDS}
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Sanitize \
  -DCMAKE_CXX_COMPILER=clang++ -DRINGWARDEN_SANITIZE=ON -DRINGWARDEN_FUZZ=ON >/dev/null
cmake --build build-asan -j "${jobs}"
built=${SECONDS}
echo "sanitizer tree built in $(( built - start )) s"

./tests/fuzz/run.sh build-asan "${RINGWARDEN_FUZZ_SECONDS:-20}"
fuzzed=${SECONDS}
echo "fuzz targets ran in $(( fuzzed - built )) s; the sanitized unit tests follow"

ctest --test-dir build-asan --output-on-failure --timeout 900 -j "${jobs}" -L unit
echo "sanitized unit tests ran in $(( SECONDS - fuzzed )) s; sanitizer phase took $(( SECONDS - start )) s"
