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
root=$(pwd)
port=${RINGWARDEN_FLOOD_PG_PORT:-$((56500 + RANDOM % 400))}
work=$(mktemp -d /tmp/ringwarden-flood.XXXXXX)
server_pid=""
cleanup() {
  [[ -n "${server_pid}" ]] && kill "${server_pid}" 2>/dev/null && wait "${server_pid}" 2>/dev/null
  "${root}/deploy/pg.sh" stop "${work}/pg" >/dev/null 2>&1 || true
  rm -rf "${work}"
}
trap cleanup EXIT

admin_db=$("${root}/deploy/pg.sh" start "${work}/pg" "${port}")
psql "${admin_db}" -qc "CREATE DATABASE ringwarden"
db="host=127.0.0.1 port=${port} user=postgres dbname=ringwarden"

for k in root release server; do
  openssl genpkey -algorithm ed25519 -out "${work}/${k}.pem" 2>/dev/null
  openssl pkey -in "${work}/${k}.pem" -pubout -out "${work}/${k}.pub"
done
./build/cli/ringctl keys root create --version 1 --expires 30d --root-key "${work}/root.pub" \
  --release-key "${work}/release.pub" --server-key "${work}/server.pub" \
  --sign-with "${work}/root.pem" -o "${work}/root.json" >/dev/null
token=$(./build/server/ringwarden-server bootstrap-admin --database "${db}" --name bench --ttl 1h 2>/dev/null)

# Polls every 5 s, so each agent may make 2 calls/s (burst 40) by default.
./build/server/ringwarden-server --database "${db}" --listen 127.0.0.1:0 --metrics-listen "" \
  --port-file "${work}/port" --root "${work}/root.json" --server-key "${work}/server.pem" \
  --insecure --poll-interval 5 --no-controller \
  ${RINGWARDEN_FLOOD_SERVER_ARGS:-} 2>"${work}/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
  [[ -s "${work}/port" ]] && break
  sleep 0.1
done
[[ -s "${work}/port" ]] || { cat "${work}/server.log" >&2; exit 1; }
server="127.0.0.1:$(cat "${work}/port")"
enroll=$(RINGWARDEN_TOKEN="${token}" ./build/cli/ringctl --server "${server}" --insecure \
  enroll-token create --max-uses 2000 --ttl 1h --description flood-bench -o json |
  grep -o '"token": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
[[ -n "${enroll}" ]] || { echo "flood: no enrollment token" >&2; exit 1; }

echo "machine: $(nproc) cores, $(uname -sr); $(date -u '+%Y-%m-%d %H:%M UTC')"
./build/bench/ringwarden_flood_bench --server "${server}" --token "${enroll}" "$@"
