#!/usr/bin/env bash
# ringwarden scale demo: three ringwarden-server replicas on one PostgreSQL behind HAProxy
# (HTTP/2 to the replicas, gRPC health checks), a simulated fleet of 100,000 agents polling
# through the balancer, and a real signed rollout through canary, early and both broad waves.
# At the end it prints what each replica spent (CPU seconds, resident memory, calls answered)
# and what the fleet saw (polls made, polls failed), then stops everything.
#
#   ./deploy/scale-demo.sh
#   RINGWARDEN_SCALE_AGENTS=20000 RINGWARDEN_SCALE_POLL=30 ./deploy/scale-demo.sh
#
# Everything lives under ./.ringwarden-scale/ and is removed at the start of the next run.
# The replicas serve plaintext HTTP/2 on loopback behind the balancer, as FailoverTest runs
# them; docs/scaling.md describes TLS across hosts. Slow start is off in this demo's policy:
# it shows scale, not the exposure budget (the quickstart and BlastRadiusTest show that).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
state="${root}/.ringwarden-scale"
AGENTS=${RINGWARDEN_SCALE_AGENTS:-100000}
POLL=${RINGWARDEN_SCALE_POLL:-60}
HEARTBEAT=${RINGWARDEN_SCALE_HEARTBEAT:-60}
PG_PORT=${RINGWARDEN_SCALE_PG_PORT:-7659}
# The balancer on 7660, the replicas on 7661-7663, their metrics on 7671-7673.
LB=127.0.0.1:7660
CHANNEL=rules.behavioral
pids=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
  for pid in "${pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "${pid}" 2>/dev/null || true; done
  ./deploy/pg.sh stop "${state}/pg" >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "Installing missing packages and building"
./deploy/install-deps.sh
./deploy/build.sh
command -v haproxy >/dev/null || { echo "scale-demo: haproxy is not installed" >&2; exit 1; }
started=$(date +%s)
./deploy/pg.sh stop "${state}/pg" >/dev/null 2>&1 || true
rm -rf "${state}"
mkdir -p "${state}"

say "PostgreSQL on 127.0.0.1:${PG_PORT}; keys, root of trust, the first admin token"
admin_db=$(./deploy/pg.sh start "${state}/pg" "${PG_PORT}")
psql "${admin_db}" -qc "CREATE DATABASE ringwarden"
DB="host=127.0.0.1 port=${PG_PORT} user=postgres dbname=ringwarden"
for k in root release server; do
  openssl genpkey -algorithm ed25519 -out "${state}/${k}.pem" 2>/dev/null
  openssl pkey -in "${state}/${k}.pem" -pubout -out "${state}/${k}.pub"
done
./build/cli/ringctl keys root create --version 1 --expires 30d --root-key "${state}/root.pub" \
  --release-key "${state}/release.pub" --server-key "${state}/server.pub" \
  --sign-with "${state}/root.pem" -o "${state}/root.json" >/dev/null
TOKEN=$(./build/server/ringwarden-server bootstrap-admin --database "${DB}" --name scale-demo \
  --ttl 1d 2>/dev/null)

say "Three replicas (poll every ${POLL} s, heartbeats every ${HEARTBEAT} s) behind HAProxy on ${LB}"
backends=()
replica_pids=()
for i in 1 2 3; do
  ./build/server/ringwarden-server --database "${DB}" --listen "127.0.0.1:$((7660 + i))" \
    --metrics-listen "127.0.0.1:$((7670 + i))" --root "${state}/root.json" \
    --server-key "${state}/server.pem" --insecure --no-migrate --poll-interval "${POLL}" \
    --heartbeat-interval "${HEARTBEAT}" --max-tracked-agents "$((AGENTS + 1000))" \
    2>"${state}/replica-${i}.log" &
  pids+=($!)
  replica_pids+=($!)
  backends+=("127.0.0.1:$((7660 + i))")
done
./deploy/haproxy/config.sh "${LB}" "${backends[@]}" >"${state}/haproxy.cfg"
haproxy -db -f "${state}/haproxy.cfg" 2>"${state}/haproxy.log" &
pids+=($!)
export RINGWARDEN_SERVER="${LB}" RINGWARDEN_TOKEN="${TOKEN}"
ringctl() { "${root}/build/cli/ringctl" --insecure "$@"; }
for _ in $(seq 1 100); do
  ringctl rollout list >/dev/null 2>&1 && break
  sleep 0.3
done
ringctl rollout list >/dev/null
for pid in "${replica_pids[@]}"; do
  kill -0 "${pid}" 2>/dev/null || { tail -n 3 "${state}"/replica-*.log >&2; exit 1; }
done

# Silence and probation must exceed a normal gap between reports: poll x 1.2 + heartbeat.
silence=$(( POLL * 12 / 10 + HEARTBEAT + 15 ))
# Gates sized to the fleet: rings are 1% + the dogfood hosts (canary), 10% (early) and the rest.
canary_healthy=$(( AGENTS / 400 > 5 ? AGENTS / 400 : 5 ))
ring_healthy=$(( AGENTS / 40 > 10 ? AGENTS / 40 : 10 ))
# The sequential test proves health against the baseline failure rate: a 1% baseline needs
# more canary hosts than a small fleet has (about 100), so small runs judge against 10%.
baseline=0.01
[[ "${AGENTS}" -lt 20000 ]] && baseline=0.1
cat >"${state}/policy.json" <<JSON
{
  "canary": {"min_bake_seconds": 30, "min_healthy": ${canary_healthy}, "silence_timeout_seconds": ${silence},
             "baseline_failure_rate": ${baseline}, "auto_action": "halt", "promotion": "auto"},
  "early":  {"min_bake_seconds": 30, "min_healthy": ${ring_healthy}, "silence_timeout_seconds": ${silence},
             "baseline_failure_rate": ${baseline}, "auto_action": "halt", "promotion": "auto"},
  "broad":  {"min_bake_seconds": 30, "min_healthy": ${ring_healthy}, "silence_timeout_seconds": ${silence},
             "baseline_failure_rate": ${baseline}, "auto_action": "halt", "promotion": "auto"},
  "broad_waves": [0.5, 1.0],
  "slow_start": {"enabled": false},
  "watch_after_completion_seconds": 30
}
JSON
ringctl policy set scale --file "${state}/policy.json" --reason "scale demo" >/dev/null

say "A simulated fleet of ${AGENTS} agents through the balancer (0.5% enroll into canary)"
enroll=$(ringctl enroll-token create --ttl 2h --max-uses "${AGENTS}" --description "scale fleet")
dogfood=$(ringctl enroll-token create --ttl 2h --max-uses "${AGENTS}" --label group=dogfood \
  --description "scale dogfood hosts")
spread=$(( AGENTS / 1000 > POLL ? AGENTS / 1000 : POLL ))
./build/agent-client/ringwarden-fleet --agents "${AGENTS}" --server "${LB}" --insecure \
  --root "${state}/root.json" --enrollment-token "${enroll}" --token-fraction "${dogfood}:0.005" \
  --id-prefix "scale-" --channel "${CHANNEL}" --start-spread "${spread}" \
  --heartbeat-interval "${HEARTBEAT}" --threads 128 --connections 16 --status-every 15 \
  --summary-json "${state}/fleet-summary.json" >"${state}/fleet.log" 2>&1 &
fleet_pid=$!
pids+=("${fleet_pid}")
enroll_start=$(date +%s)
total=0
for _ in $(seq 1 $(( spread * 4 + 120 ))); do
  total=$(ringctl agents list --limit 1 -o json 2>/dev/null | sed -n 's/.*"total":\([0-9]*\).*/\1/p')
  [[ "${total:-0}" -ge "${AGENTS}" ]] && break
  sleep 1
done
[[ "${total:-0}" -ge "${AGENTS}" ]] || { tail -3 "${state}/fleet.log" >&2; exit 1; }
echo "${total} agents enrolled in $(( $(date +%s) - enroll_start )) s"

say "Rolling out ${CHANNEL} v1, signed with the release key"
head -c 4096 /dev/urandom | base64 >"${state}/rules-v1.bin"
ringctl content sign --key "${state}/release.pem" --channel "${CHANNEL}" --version 1 \
  --description "scale demo" "${state}/rules-v1.bin" >/dev/null
ringctl content upload "${state}/rules-v1.bin" >/dev/null
rollout_start=$(date +%s)
# Turns the fleet started late before the rollout (enrollment) are left out of its figure.
late_before=$(tail -n 1 "${state}/fleet.log" | sed -n 's/.* late \([0-9]*\).*/\1/p')
# Baseline CPU of each replica, so the figures below cover the rollout only.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
declare -A cpu_before
for pid in "${replica_pids[@]}"; do cpu_before[${pid}]=$(cpu_ticks "${pid}"); done
id=$(ringctl rollout start --channel "${CHANNEL}" --version 1 --policy scale \
  --reason "scale demo" -o json | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
ringctl rollout wait "${id}" --until COMPLETED --for $(( 40 * POLL + 600 )) ||
  { ringctl rollout explain "${id}"; exit 1; }
elapsed=$(( $(date +%s) - rollout_start ))
ringctl rollout status "${id}"
ringctl audit --rollout "${id}" | sed 's/^/  /'

say "What it cost"
hz=$(getconf CLK_TCK)
i=1
for pid in "${replica_pids[@]}"; do
  ticks=$(( $(cpu_ticks "${pid}") - cpu_before[${pid}] ))
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/${pid}/status")
  calls=$(curl -s "http://127.0.0.1:$((7670 + i))/metrics" |
    awk '/^ringwarden_rpc_duration_seconds_count/ { s += $2 } END { print s + 0 }')
  leader=$(curl -s "http://127.0.0.1:$((7670 + i))/metrics" |
    awk '/^ringwarden_controller_leader / { print ($2 == 1) ? " (leader)" : "" }')
  awk -v i="${i}" -v t="${ticks}" -v hz="${hz}" -v e="${elapsed}" -v rss="${rss}" -v c="${calls}" \
    -v l="${leader}" 'BEGIN { printf "replica %d%s: %.0f%% of a core over the rollout, %.0f MB resident, %d calls answered\n", i, l, 100 * t / hz / e, rss / 1024, c }'
  i=$((i + 1))
done
kill -TERM "${fleet_pid}"
wait "${fleet_pid}" || true
summary_field() { sed -n "s/^ *\"$1\": *\([0-9.]*\).*/\1/p" "${state}/fleet-summary.json"; }
polls=$(summary_field polls)
errors=$(summary_field rpc_errors)
late=$(summary_field late_turns)
echo "fleet: ${polls:-?} polls, ${errors:-?} failed;" \
  "$(( ${late:-0} - ${late_before:-0} )) turns started over 1 s late during the rollout" \
  "(the fleet, not the servers, falling behind shows here first); rollout completed in ${elapsed} s"
say "Done in $(( $(date +%s) - started )) s after the build; logs in ${state}/"
