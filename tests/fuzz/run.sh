#!/usr/bin/env bash
# Runs every fuzz target of a sanitizer tree for a bounded time, each on a
# copy of its committed corpus (tests/fuzz/corpus/<target>/), so the
# repository is never modified. Fails on any crash, leak, timeout, out-of-memory
# or sanitizer report; the input that failed is kept in
# BUILD_DIR/fuzz-artifacts/<target>/. Targets run RINGWARDEN_FUZZ_JOBS at a time
# (default: one per core), each on one process.
#
#   tests/fuzz/run.sh build-asan            # 20 s per target
#   tests/fuzz/run.sh build-asan 300 policy_json_fuzz
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: tests/fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]}" && pwd)
seconds=${2:-20}
shift $(( $# >= 2 ? 2 : $# ))
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for dir in "${root}"/tests/fuzz/corpus/*/; do
    targets+=("$(basename "${dir}")")
  done
fi
jobs=${RINGWARDEN_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}

work=$(mktemp -d /tmp/ringwarden-fuzz.XXXXXX)
trap 'rm -rf "${work}"' EXIT
source "${root}/tests/sanitizer_options.sh"

# fuzz TARGET runs one target and leaves its exit status in WORK/TARGET.status.
fuzz() {
  local target=$1 status=0
  local artifacts="${build}/fuzz-artifacts/${target}"
  mkdir -p "${work}/${target}" "${artifacts}"
  cp -R "${root}/tests/fuzz/corpus/${target}/." "${work}/${target}/"
  "${build}/tests/fuzz/${target}" -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="${artifacts}/" "${work}/${target}" \
    >"${work}/${target}.log" 2>&1 || status=$?
  echo "${status}" >"${work}/${target}.status"
}

running=0
for target in "${targets[@]}"; do
  if (( running >= jobs )); then
    wait -n || true
    running=$(( running - 1 ))
  fi
  fuzz "${target}" &
  running=$(( running + 1 ))
done
wait || true

failed=()
for target in "${targets[@]}"; do
  log="${work}/${target}.log"
  status=$(cat "${work}/${target}.status" 2>/dev/null || echo 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "${log}" | tail -1)
  corpus=$(find "${work}/${target}" -type f | wc -l)
  if [[ ${status} -ne 0 ]]; then
    failed+=("${target}")
    echo "fuzz ${target}: FAILED (exit ${status}) after ${execs:-?} inputs; input kept in ${build}/fuzz-artifacts/${target}/"
    grep -v '^#[0-9]' "${log}" | tail -80
  else
    echo "fuzz ${target}: ${execs:-?} inputs in ${seconds} s, corpus ${corpus}, no finding"
  fi
done
if [[ ${#failed[@]} -ne 0 ]]; then
  echo "fuzz targets that failed: ${failed[*]}"
  exit 1
fi
