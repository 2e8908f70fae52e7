#!/usr/bin/env bash
# B3, telemetry ingest: health events sent by agents as gRPC batches, written by
# a real ringwarden-server into PostgreSQL, against the same rows loaded into the
# same table (its indexes, unique key and partitions included) by `psql \copy`
# and by single-row INSERTs, all in this run on this machine. Health events are
# the insert-heavy kind with the most to check (a unique key; ON CONFLICT).
# Targets: end to end >= 0.5x \copy and >= 10x single-row INSERT; exits
# non-zero when one is missed. Called by bench/run.sh.
#
#   ./bench/ingest.sh [--rows 500000] [--agents 200] [--single 20000]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=500000
agents=200
single=20000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) rows=$2; shift 2 ;;
    --agents) agents=$2; shift 2 ;;
    --single) single=$2; shift 2 ;;
    *) echo "ingest: unknown option $1" >&2; exit 2 ;;
  esac
done
source bench/lib.sh
# No per-agent rate limit or share: this measures the write path, not the overload protection.
bench_start_server ingest-bench --no-controller --agent-rate 0 --telemetry-agent-rows 2000000 \
  --telemetry-max-rows 2000000

echo "machine: $(nproc) cores, $(uname -sr); $(date -u '+%Y-%m-%d %H:%M UTC')"
e2e=$(./build/bench/ringwarden_ingest_bench --server "${server}" --token "${enroll}" \
  --database "${db}" --agents "${agents}" --rows "${rows}")
e2e_rate=$(sed 's/.*rows_per_second=\([0-9]*\).*/\1/' <<<"${e2e}")

# The same rows, as the server stored them, loaded again by \copy into the emptied table.
cols="agent_id, kind, channel, version, detail, at"
psql "${db}" -qc "\\copy (SELECT ${cols} FROM health_events) TO '${work}/rows.csv' CSV"
psql "${db}" -qc "TRUNCATE health_events"
t0=$(date +%s.%N)
psql "${db}" -qc "\\copy health_events (${cols}) FROM '${work}/rows.csv' CSV"
t1=$(date +%s.%N)
copy_rate=$(awk -v n="${rows}" -v a="${t0}" -v b="${t1}" 'BEGIN { printf "%.0f", n / (b - a) }')

# Single-row INSERTs, one statement (and so one commit) each, of the first rows.
head -n "${single}" "${work}/rows.csv" >"${work}/single.csv"
psql "${db}" -qc "TRUNCATE health_events"
psql "${db}" -qc "CREATE TABLE single_in AS SELECT ${cols} FROM health_events LIMIT 0"
psql "${db}" -qc "\\copy single_in (${cols}) FROM '${work}/single.csv' CSV"
psql "${db}" -qAt -c "SELECT format('INSERT INTO health_events (${cols}) VALUES (%L, %L, %L, %s, %L, %L);',
  ${cols}) FROM single_in" >"${work}/single.sql"
t0=$(date +%s.%N)
psql "${db}" -q -v ON_ERROR_STOP=1 -f "${work}/single.sql"
t1=$(date +%s.%N)
single_rate=$(awk -v n="${single}" -v a="${t0}" -v b="${t1}" 'BEGIN { printf "%.0f", n / (b - a) }')
[[ "$(psql "${db}" -qAtc "SELECT count(*) FROM health_events")" == "${single}" ]] ||
  { echo "ingest: single-row INSERTs did not store ${single} rows" >&2; exit 1; }

echo "end to end: ${e2e}"
awk -v e="${e2e_rate}" -v c="${copy_rate}" -v s="${single_rate}" 'BEGIN {
  printf "%-34s %12s %10s %8s  %s\n", "B3 telemetry ingest", "rows/s", "ratio", "target", "verdict"
  printf "%-34s %12d %10s %8s  %s\n", "psql \\copy (anchor)", c, "1.00", "-", "anchor"
  printf "%-34s %12d %10.3f %8s  %s\n", "single-row INSERT", s, s / c, "-", "anchor"
  v1 = (e / c >= 0.5) ? "ok" : "UNDER"
  v2 = (e / s >= 10) ? "ok" : "UNDER"
  printf "%-34s %12d %10.3f %8s  %s\n", "gRPC -> server -> PostgreSQL", e, e / c, ">=0.5", v1
  printf "%-34s %12s %10.1f %8s  %s\n", "  ... against single-row INSERT", "", e / s, ">=10", v2
  exit (v1 != "ok" || v2 != "ok")
}'
