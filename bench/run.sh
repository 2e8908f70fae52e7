#!/usr/bin/env bash
# Runs the benchmarks and reports each as a ratio to BM_Sha256Baseline measured
# in the same run, against the targets below. Machines here are shared and
# noisy: ratios, not absolute times, are what we hold ourselves to.
#
#   ./bench/run.sh            build (if needed), run the micro-benchmarks, then the ones
#                             that drive a real server on a throwaway PostgreSQL:
#                             bench/flood.sh (overload), bench/ingest.sh (B3, telemetry
#                             ingest against psql \copy and single-row INSERT),
#                             bench/footprint.sh (B5, server RSS and database bytes per
#                             agent at 1M agents; B4, the leader's period) and
#                             bench/poll.sh (B1, the poll path against an echo server;
#                             B2, hosts per server vCPU)
#   ./bench/run.sh --no-flood the micro-benchmarks only
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/build.sh >/dev/null || { echo "bench: build failed" >&2; exit 1; }
out=$(./build/bench/ringwarden_bench --benchmark_format=csv --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true 2>/dev/null)

# name -> maximum ratio to the baseline (per operation; BM_JudgeRing per agent).
declare -A target=(
  [BM_AssignRing]=3
  [BM_PollResolve]=6
  [BM_RateLimiterAdmit/100000]=4
  [BM_RateLimiterAdmit/1000000]=10
  [BM_VerifyAgentToken/3]=6
  [BM_JudgeRing/10000]=20
  [BM_JudgeRing/100000]=20
)

micro=0
echo "${out}" | awk -F, -v targets="$(for k in "${!target[@]}"; do printf '%s=%s;' "$k" "${target[$k]}"; done)" '
  BEGIN {
    n = split(targets, pairs, ";")
    for (i = 1; i <= n; i++) { if (split(pairs[i], kv, "=") == 2) limit[kv[1]] = kv[2] }
  }
  /_median"?,/ {
    name = $1; gsub(/"/, "", name); sub(/_median$/, "", name)
    cpu = $4; unit = $5; gsub(/"/, "", unit)
    scale = (unit == "ms") ? 1e6 : (unit == "us") ? 1e3 : 1
    ns[name] = cpu * scale; iters[name] = $2; order[++count] = name
    # A benchmark that measures memory labels itself bytes_per_agent=N.
    if (match($0, /bytes_per_agent=[0-9]+/)) bytes[name] = substr($0, RSTART + 16, RLENGTH - 16)
  }
  END {
    base = ns["BM_Sha256Baseline"]
    printf "%-24s %14s %12s %8s  %s\n", "benchmark", "ns/op", "ratio", "target", "verdict"
    fail = 0
    for (i = 1; i <= count; i++) {
      name = order[i]; per = ns[name]
      if (name ~ /^BM_JudgeRing\//) { split(name, p, "/"); per = per / p[2] }
      ratio = per / base
      t = (name in limit) ? limit[name] : "-"
      verdict = (t == "-") ? "baseline" : (ratio <= t ? "ok" : "OVER")
      if (verdict == "OVER") fail = 1
      printf "%-24s %14.1f %12.2f %8s  %s\n", name, per, ratio, t, verdict
      if (name in bytes) {
        # Heap per remembered agent: the LRU table this replaced held 160-180 bytes.
        bv = (bytes[name] <= 96) ? "ok" : "OVER"
        if (bv == "OVER") fail = 1
        printf "%-24s %14s %12s %8s  %s\n", "  bytes per agent", bytes[name], "", "96", bv
      }
    }
    exit fail
  }' || micro=$?

served=0
if [[ "${1:-}" != "--no-flood" ]]; then
  for b in flood ingest footprint poll; do
    echo
    ./bench/${b}.sh || served=1
  done
fi
exit $(( micro != 0 || served != 0 ))
