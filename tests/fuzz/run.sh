#!/usr/bin/env bash
# Runs every fuzz target of a sanitizer tree for a bounded time, each on a
# copy of its committed corpus (tests/fuzz/corpus/<target>/), so the
# repository is never modified. Fails on any crash, leak, timeout, out-of-memory
# or sanitizer report; the input that failed is kept in
# BUILD_DIR/fuzz-artifacts/<target>/.
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

work=$(mktemp -d /tmp/ringwarden-fuzz.XXXXXX)
trap 'rm -rf "${work}"' EXIT
source "${root}/tests/sanitizer_options.sh"

failed=()
for target in "${targets[@]}"; do
  bin="${build}/tests/fuzz/${target}"
  artifacts="${build}/fuzz-artifacts/${target}"
  mkdir -p "${work}/${target}" "${artifacts}"
  cp -R "${root}/tests/fuzz/corpus/${target}/." "${work}/${target}/"
  log="${work}/${target}.log"
  status=0
  "${bin}" -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="${artifacts}/" "${work}/${target}" >"${log}" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "${log}" | tail -1)
  corpus=$(find "${work}/${target}" -type f | wc -l)
  if [[ ${status} -ne 0 ]]; then
    failed+=("${target}")
    echo "fuzz ${target}: FAILED (exit ${status}) after ${execs:-?} inputs; input kept in ${artifacts}/"
    grep -v '^#[0-9]' "${log}" | tail -80
  else
    echo "fuzz ${target}: ${execs:-?} inputs in ${seconds} s, corpus ${corpus}, no finding"
  fi
done
if [[ ${#failed[@]} -ne 0 ]]; then
  echo "fuzz targets that failed: ${failed[*]}"
  exit 1
fi
