#!/usr/bin/env bash
# The flood benchmark: a real ringwarden-server on a throwaway PostgreSQL,
# 1,000 well-behaved agents polling and reporting, first alone, then while one
# agent floods the server. Reports the well-behaved agents' p99 latency ratio
# (flood / no flood; target <= 2) and how many RESOURCE_EXHAUSTED they got
# (target 0); exits non-zero when a target is missed. Called by bench/run.sh.
#
#   ./bench/flood.sh [--agents 1000] [--seconds 20] [--interval 5]
#   RINGWARDEN_FLOOD_SERVER_ARGS="--agent-rate 0" ./bench/flood.sh   # without the rate limit
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
# Polls every 5 s, so each agent may make 2 calls/s (burst 40) by default.
# shellcheck disable=SC2086
bench_start_server flood-bench --poll-interval 5 --no-controller ${RINGWARDEN_FLOOD_SERVER_ARGS:-}

echo "machine: $(nproc) cores, $(uname -sr); $(date -u '+%Y-%m-%d %H:%M UTC')"
./build/bench/ringwarden_flood_bench --server "${server}" --token "${enroll}" "$@"
