#!/usr/bin/env bash
# ringwarden quickstart: a local server on a throwaway PostgreSQL, a simulated
# fleet, and a real signed rollout through canary, early and broad.
#
#   ./deploy/quickstart.sh        build, start everything, run the demo, leave it running
#   ./deploy/quickstart.sh stop   stop the fleet, the server and the database
#
# Everything lives under ./.ringwarden/ (remove it to start from scratch).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
state="${root}/.ringwarden"
PG_PORT=${RINGWARDEN_PG_PORT:-7632}
GRPC_ADDR=${RINGWARDEN_LISTEN:-127.0.0.1:7600}
METRICS_ADDR=${RINGWARDEN_METRICS_LISTEN:-127.0.0.1:7601}
AGENTS=${RINGWARDEN_DEMO_AGENTS:-1000}
CHANNEL=rules.behavioral

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

stop_pid() {
  local file=$1
  if [[ -f "${file}" ]]; then
    local pid
    pid=$(cat "${file}")
    if kill -0 "${pid}" 2>/dev/null; then
      kill "${pid}" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
      kill -9 "${pid}" 2>/dev/null || true
    fi
    rm -f "${file}"
  fi
}

stop_all() {
  stop_pid "${state}/fleet.pid"
  stop_pid "${state}/server.pid"
  ./deploy/pg.sh stop "${state}/pg" 2>/dev/null || true
}

if [[ "${1:-}" == "stop" ]]; then
  stop_all
  echo "stopped (state kept in ${state}; rm -rf .ringwarden to start over)"
  exit 0
fi

say "Installing missing packages and building"
./deploy/install-deps.sh
./deploy/build.sh
start_time=$(date +%s)

mkdir -p "${state}"
stop_all

say "Starting a throwaway PostgreSQL on 127.0.0.1:${PG_PORT} (as the postgres user)"
admin_db=$(./deploy/pg.sh start "${state}/pg" "${PG_PORT}")
if ! psql "${admin_db}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'ringwarden'" | grep -q 1; then
  psql "${admin_db}" -qc "CREATE DATABASE ringwarden"
fi
DB="host=127.0.0.1 port=${PG_PORT} user=postgres dbname=ringwarden"

say "Generating demo keys: root, release, two server keys (openssl genpkey -algorithm ed25519)"
for k in root release server-1 server-2; do
  if [[ ! -f "${state}/${k}.pem" ]]; then
    openssl genpkey -algorithm ed25519 -out "${state}/${k}.pem"
    chmod 600 "${state}/${k}.pem"
  fi
  openssl pkey -in "${state}/${k}.pem" -pubout -out "${state}/${k}.pub"
done
if [[ ! -f "${state}/root-v1.json" ]]; then
  # Root version 1 (threshold 1): root key, release key, server key 1. Made offline.
  ./build/cli/ringctl keys root create --version 1 --expires 365d \
    --root-key "${state}/root.pub" --release-key "${state}/release.pub" \
    --server-key "${state}/server-1.pub" --sign-with "${state}/root.pem" \
    -o "${state}/root-v1.json"
fi
./build/cli/ringctl keys inspect "${state}/root-v1.json" | sed 's/^/  /'

say "Making a throwaway TLS PKI (deploy/tls.sh): server certificate and agent CA"
if [[ ! -f "${state}/tls/server.crt" ]]; then
  ./deploy/tls.sh "${state}/tls" >/dev/null
fi
CA="${state}/tls/server-ca.crt"

say "Bootstrapping the first admin token (ringwarden-server bootstrap-admin; migrates first)"
if [[ ! -s "${state}/admin-token" ]]; then
  # Written straight to the database, hashed; the text is printed once, kept here.
  if ! (umask 077 && ./build/server/ringwarden-server bootstrap-admin --database "${DB}" \
      --name quickstart --ttl 30d > "${state}/admin-token.new"); then
    rm -f "${state}/admin-token.new"
    echo "bootstrap-admin refused; remove ${state} to start over" >&2
    exit 1
  fi
  mv "${state}/admin-token.new" "${state}/admin-token"
fi
TOKEN=$(cat "${state}/admin-token")
printf 'export RINGWARDEN_SERVER=%s\nexport RINGWARDEN_TOKEN=%s\nexport RINGWARDEN_CA=%s\n' \
  "${GRPC_ADDR}" "${TOKEN}" "${CA}" > "${state}/env"

say "Starting ringwarden-server on ${GRPC_ADDR} (metrics on http://${METRICS_ADDR}/metrics)"
./build/server/ringwarden-server migrate --database "${DB}"
# start_server KEY: the server signs every assignment with KEY; it never holds root
# or release keys, and verifies uploads against the root's release role.
start_server() {
  nohup ./build/server/ringwarden-server --database "${DB}" --listen "${GRPC_ADDR}" \
    --metrics-listen "${METRICS_ADDR}" --root "${state}/root-v1.json" --server-key "$1" \
    --tls-cert "${state}/tls/server.crt" --tls-key "${state}/tls/server.key" \
    --client-ca "${state}/tls/agent-ca.crt" --agent-ca-key "${state}/tls/agent-ca.key" --no-migrate \
    --poll-interval 2 --heartbeat-interval 1 >> "${state}/server.log" 2>&1 &
  echo $! > "${state}/server.pid"
}
: > "${state}/server.log"
server_key="${state}/server-1.pem"
[[ -f "${state}/root-v2.json" ]] && server_key="${state}/server-2.pem"
start_server "${server_key}"
export RINGWARDEN_SERVER="${GRPC_ADDR}" RINGWARDEN_TOKEN="${TOKEN}" RINGWARDEN_CA="${CA}"
ringctl() { "${root}/build/cli/ringctl" "$@"; }
for _ in $(seq 1 100); do
  ringctl rollout list >/dev/null 2>&1 && break
  sleep 0.2
done
ringctl rollout list >/dev/null

# The next versions: one above the newest uploaded is healthy, the one after is bad.
newest=$(ringctl content list --channel "${CHANNEL}" -o json |
  grep -o '"version":[0-9]*' | head -n 1 | cut -d: -f2 || true)
good=$(( ${newest:-0} + 1 ))
bad=$(( good + 1 ))

say "Setting the demo rollout policy (deploy/demo-policy.json: 5 s bake, 6 s silence timeout)"
ringctl policy set demo --file deploy/demo-policy.json --reason "quickstart demo" >/dev/null
ringctl policy show demo | head -n 1

# A simulated host keeps its credential in memory only: the hosts of an earlier
# run are gone for good, so forget them (a real fleet's agents keep theirs on disk).
psql "${DB}" -qc "DELETE FROM agents WHERE agent_id LIKE 'fleet-%'" >/dev/null
say "Making enrollment tokens: one for the fleet, one whose label group=dogfood puts its hosts in canary"
enroll=$(ringctl enroll-token create --ttl 1h --max-uses "${AGENTS}" --description "quickstart fleet")
dogfood=$(ringctl enroll-token create --ttl 1h --max-uses "${AGENTS}" --label group=dogfood \
  --description "quickstart dogfood hosts")
ringctl enroll-token list | sed 's/^/  /'
say "Starting a simulated fleet of ${AGENTS} agents over TLS (0.5% enroll with the dogfood token -> canary)"
echo "fault injection: v${bad} boot-loops 80% of the hosts that apply it; the other 20% go silent"
nohup ./build/agent-client/ringwarden-fleet --agents "${AGENTS}" --server "${GRPC_ADDR}" \
  --root "${state}/root-v1.json" --ca "${CA}" --enrollment-token "${enroll}" \
  --token-fraction "${dogfood}:0.005" --id-prefix "fleet-$(date +%s)-" \
  --channel "${CHANNEL}" --start-spread 3 \
  --heartbeat-interval 1 --healthy-interval 5 --restart-delay 5 --status-every 1 \
  --fault "${bad}:crash=0.8,silence=1.0" > "${state}/fleet.log" 2>&1 &
echo $! > "${state}/fleet.pid"
for _ in $(seq 1 100); do
  total=$(ringctl agents list --limit 1 -o json 2>/dev/null | sed -n 's/.*"total":\([0-9]*\).*/\1/p')
  [[ "${total:-0}" -ge "${AGENTS}" ]] && break
  sleep 0.3
done
echo "${total:-0} agents enrolled"

publish() {
  local version=$1 note=$2
  local content="${state}/rules-v${version}.bin"
  { echo "# detection rules v${version}: ${note}"; head -c 4096 /dev/urandom | base64; } > "${content}"
  ringctl content sign --key "${state}/release.pem" --channel "${CHANNEL}" \
    --version "${version}" --description "${note}" "${content}"
  ringctl content upload "${content}"
}

say "Healthy update: signing and uploading ${CHANNEL} v${good}"
publish "${good}" "quickstart healthy update"
say "Rolling out v${good}: the controller promotes it through every ring by itself"
id=$(ringctl rollout start --channel "${CHANNEL}" --version "${good}" --policy demo --supersede \
  --reason "quickstart healthy update" -o json | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
ringctl rollout wait "${id}" --until COMPLETED --for 300

say "Rotating the server key: root v2 names server key 2, signed offline with the root key"
if [[ ! -f "${state}/root-v2.json" ]]; then
  # Both server keys are named in v2, so agents keep trusting answers while the
  # server restarts with the new key; a later root can drop key 1.
  ringctl keys root create --version 2 --expires 365d \
    --root-key "${state}/root.pub" --release-key "${state}/release.pub" \
    --server-key "${state}/server-1.pub" --server-key "${state}/server-2.pub" \
    --sign-with "${state}/root.pem" -o "${state}/root-v2.json.tmp"
  ringctl keys root upload "${state}/root-v2.json.tmp" --reason "quickstart: rotate the server key"
  mv "${state}/root-v2.json.tmp" "${state}/root-v2.json"
  # Wait for the old server to let go of its ports before the new one binds them.
  stop_pid "${state}/server.pid"
  start_server "${state}/server-2.pem"
  for _ in $(seq 1 100); do
    ringctl rollout list >/dev/null 2>&1 && break
    sleep 0.2
  done
fi
ringctl keys inspect "${state}/root-v2.json" --trusted-root "${state}/root-v1.json" | sed 's/^/  /'
ringctl trust list
echo "agents pinned to root v1 walk to v2 on their next poll and accept answers signed by server key 2"

say "Release floor: ${CHANNEL} never goes below v${good} (signed offline with the release key)"
ringctl floor sign --key "${state}/release.pem" --channel "${CHANNEL}" --version "${good}" \
  -o "${state}/floor-v${good}.json"
ringctl floor upload "${state}/floor-v${good}.json" --reason "quickstart: v${good} is the floor"

say "Bad update: signing and uploading ${CHANNEL} v${bad} (it boot-loops hosts)"
publish "${bad}" "quickstart bad update"
say "Rolling out v${bad}: nobody is watching; the controller must stop it in canary"
bad_id=$(ringctl rollout start --channel "${CHANNEL}" --version "${bad}" --policy demo --supersede \
  --reason "quickstart bad update" -o json | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
ringctl rollout wait "${bad_id}" --until HALTED --for 180
say "Why it stopped: ringctl rollout explain ${bad_id}"
ringctl rollout explain "${bad_id}"
early_broad=$(ringctl rollout status "${bad_id}" -o json |
  grep -o '"applied":[0-9]*,"failed":[0-9]*,"healthy":[0-9]*,"ring":"\(early\|broad\)"' |
  sed -n 's/"applied":\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
echo
echo "Agents in early and broad reporting v${bad} in effect: ${early_broad:-0}"
# The fleet itself counts every host that ever loaded a version (it prints a status line every
# second); two more lines after the halt show that nobody took v${bad} later.
sleep 2.5
reached=$(grep -o "(ever loaded:[^)]*)" "${state}/fleet.log" | tail -n 1 |
  sed -n "s/.* v${bad}=\([0-9]*\).*/\1/p")
echo "v${bad} reached ${reached:-0} of ${AGENTS} hosts before it was stopped (counted by the fleet)"

say "Rolling v${bad} back: every agent returns to v${good}, v${bad} is revoked for good"
ringctl rollout rollback "${bad_id}" --reason "quickstart: boot loops in canary" >/dev/null
ringctl rollout status "${bad_id}"

say "Done in $(( $(date +%s) - start_time ))s after the build"
cat <<EOF2

The server, the fleet and PostgreSQL keep running. Try:

  source .ringwarden/env
  ./build/cli/ringctl rollout list
  ./build/cli/ringctl rollout status ${id}
  ./build/cli/ringctl agents list --ring canary
  ./build/cli/ringctl rollout explain ${bad_id}
  ./build/cli/ringctl audit --rollout ${bad_id}
  curl -s http://${METRICS_ADDR}/metrics | grep ^ringwarden_

Logs: .ringwarden/server.log, .ringwarden/fleet.log
Stop everything: ./deploy/quickstart.sh stop
EOF2
