#!/usr/bin/env bash
# Runs every test: installs missing packages, builds, starts a throwaway
# PostgreSQL, runs ctest (unit and integration), tears the database down, then
# the sanitizer phase (tests/sanitize.sh: unit tests under ASan+UBSan and every
# fuzz target for 20 s). Exits non-zero on any failure.
# RINGWARDEN_SKIP_SANITIZERS=1 skips the sanitizer phase for a quick local run;
# CI (CI=true) always runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-deps.sh
./deploy/build.sh

pgdir=$(mktemp -d /tmp/ringwarden-test-pg.XXXXXX)
cleanup() {
  ./deploy/pg.sh stop "${pgdir}" || true
  rm -rf "${pgdir}"
}
trap cleanup EXIT
port=$(( 20000 + RANDOM % 20000 ))
RINGWARDEN_TEST_PG=$(./deploy/pg.sh start "${pgdir}" "${port}")
export RINGWARDEN_TEST_PG

jobs=$(nproc 2>/dev/null || echo 2)
ctest --test-dir build --output-on-failure --timeout 900 -j "${jobs}"

if [[ "${RINGWARDEN_SKIP_SANITIZERS:-0}" == 1 && "${CI:-}" != true ]]; then
  echo "RINGWARDEN_SKIP_SANITIZERS=1: sanitizer and fuzz phase skipped"
  exit 0
fi
cleanup
trap - EXIT
./tests/sanitize.sh
