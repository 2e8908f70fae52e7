#!/usr/bin/env bash
# Configures and builds ringwarden into ./build (ccache makes rebuilds cheap).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
export CCACHE_BASEDIR="$(pwd)"  # clones and CI share cache entries
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "${jobs}"
