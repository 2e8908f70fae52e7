#!/usr/bin/env bash
# Configures and builds ringwarden into ./build (ccache makes rebuilds cheap).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
export CCACHE_BASEDIR="$(pwd)"  # clones and CI share cache entries
export CCACHE_NOHASHDIR=1       # ...even though debug info names the build directory
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "${jobs}"
