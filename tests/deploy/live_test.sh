#!/usr/bin/env bash
# deploy_live_test: the real Prometheus (Debian package) scrapes a real
# ringwarden-server with a simulated fleet and an active rollout, loads
# deploy/prometheus/rules.yml, and we check what it sees.
#
#   live_test.sh REPO_ROOT RINGWARDEN_SERVER_BIN RINGCTL_BIN RINGWARDEN_FLEET_BIN
#
# Needs RINGWARDEN_TEST_PG (libpq conninfo of a PostgreSQL where it may CREATE
# DATABASE; ./tests/run.sh sets it). Checks:
# - rollout metrics of the started rollout with the contract's labels
#   (ringwarden_rollouts states, ring agents by status, failure rates, the
#   "wait"/"gate_pending" decision, stage age and bake time), leader, agents;
# - every rule of rules.yml evaluates without error, the leader-filtered
#   recording rules produce series, and no alert is pending or firing;
# - every metric of the contract, and so every metric the dashboard queries,
#   is in the server's /metrics;
# - every dashboard query runs on Prometheus.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "${here}/lib.sh"

root=${1:?usage: live_test.sh REPO_ROOT SERVER_BIN RINGCTL_BIN FLEET_BIN}
server_bin=${2:?server binary}
ringctl_bin=${3:?ringctl binary}
fleet_bin=${4:?fleet binary}
root=$(cd "${root}" && pwd)
[[ -n "${RINGWARDEN_TEST_PG:-}" ]] ||
  die "RINGWARDEN_TEST_PG is not set; run the tests through ./tests/run.sh, which starts a throwaway PostgreSQL"
need prometheus psql openssl curl perl

CHANNEL=rules.behavioral
AGENTS=200
DEADLINE=$((SECONDS + 100))  # the checks below share this budget

work=$(mktemp -d /tmp/ringwarden-deploy-live.XXXXXX)
db="rw_deploy_$$_${RANDOM}"
pids=()
cleanup() {
  local rc=$? pid
  for pid in "${pids[@]}"; do kill -TERM "${pid}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pid}" 2>/dev/null || true
    wait "${pid}" 2>/dev/null || true
  done
  if [[ ${rc} -ne 0 ]]; then
    for log in server fleet; do
      [[ -f "${work}/${log}.log" ]] && { echo "--- ${log}.log (last 30 lines)"; tail -n 30 "${work}/${log}.log"; } >&2
    done
    [[ -f "${work}/prometheus.log" ]] &&
      { echo "--- prometheus.log (warnings and errors)"; grep -E 'level=(warn|error)' "${work}/prometheus.log"; } >&2
  fi
  psql "${RINGWARDEN_TEST_PG}" -qXc "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null 2>&1 ||
    echo "warning: could not drop database ${db}" >&2
  rm -rf "${work}"
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- database, keys, tokens -------------------------------------------------
psql "${RINGWARDEN_TEST_PG}" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE ${db}" >/dev/null
conninfo="$(sed -E 's/(^| )dbname=[^ ]*//g' <<<"${RINGWARDEN_TEST_PG}") dbname=${db}"
for k in root release server; do
  openssl genpkey -algorithm ed25519 -out "${work}/${k}.pem" 2>/dev/null
  openssl pkey -in "${work}/${k}.pem" -pubout -out "${work}/${k}.pub"
done
"${ringctl_bin}" keys root create --version 1 --expires 30d --root-key "${work}/root.pub" \
  --release-key "${work}/release.pub" --server-key "${work}/server.pub" \
  --sign-with "${work}/root.pem" -o "${work}/root.json" >/dev/null
token=$("${server_bin}" bootstrap-admin --database "${conninfo}" --name deploy-live-test \
  --ttl 1h 2>"${work}/bootstrap.log") || die "bootstrap-admin failed: $(cat "${work}/bootstrap.log")"
bash "${root}/deploy/tls.sh" "${work}/tls" >/dev/null || die "deploy/tls.sh failed"

# --- server -----------------------------------------------------------------
mport=$(free_port)
"${server_bin}" --database "${conninfo}" --listen 127.0.0.1:0 --port-file "${work}/port" \
  --metrics-listen "127.0.0.1:${mport}" --root "${work}/root.json" \
  --server-key "${work}/server.pem" \
  --tls-cert "${work}/tls/server.crt" --tls-key "${work}/tls/server.key" \
  --client-ca "${work}/tls/agent-ca.crt" --agent-ca-key "${work}/tls/agent-ca.key" \
  --poll-interval 0.3 --controller-interval 0.3 >"${work}/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do [[ -s "${work}/port" ]] && break; sleep 0.1; done
[[ -s "${work}/port" ]] || die "ringwarden-server did not start"
server="127.0.0.1:$(tr -d '[:space:]' <"${work}/port")"
ringctl() { "${ringctl_bin}" --server "${server}" --token "${token}" --ca "${work}/tls/server-ca.crt" "$@"; }
ok "ringwarden-server on ${server} (TLS), metrics on 127.0.0.1:${mport}"

# --- fleet and a rollout ------------------------------------------------------
enroll=$(ringctl enroll-token create --ttl 1h --max-uses "${AGENTS}") ||
  die "enroll-token create failed"
dogfood=$(ringctl enroll-token create --ttl 1h --max-uses "${AGENTS}" --label group=dogfood) ||
  die "enroll-token create --label group=dogfood failed"
"${fleet_bin}" --agents "${AGENTS}" --server "${server}" --root "${work}/root.json" \
  --ca "${work}/tls/server-ca.crt" --enrollment-token "${enroll}" \
  --token-fraction "${dogfood}:0.05" --channel "${CHANNEL}" \
  --heartbeat-interval 0.5 --start-spread 1 --status-every 5 >"${work}/fleet.log" 2>&1 &
pids+=($!)
{ echo "# deploy live test rules"; head -c 2048 /dev/urandom | base64; } >"${work}/rules-v1.bin"
ringctl content sign --key "${work}/release.pem" --channel "${CHANNEL}" --version 1 \
  "${work}/rules-v1.bin" >/dev/null
ringctl content upload "${work}/rules-v1.bin" >/dev/null
rollout=$(ringctl -o json rollout start --channel "${CHANNEL}" --version 1 --reason "deploy live test" |
  perl -MJSON::PP -e 'local $/; print JSON::PP->new->decode(<STDIN>)->{id}')
[[ -n "${rollout}" ]] || die "rollout start printed no id"
ok "rollout ${rollout} of ${CHANNEL} v1 started with ${AGENTS} simulated agents"

# --- Prometheus -------------------------------------------------------------
pport=$(free_port)
cat >"${work}/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - ${root}/deploy/prometheus/rules.yml
scrape_configs:
  - job_name: ringwarden
    static_configs:
      - targets: ["127.0.0.1:${mport}"]
EOF
prometheus --config.file="${work}/prometheus.yml" --storage.tsdb.path="${work}/tsdb" \
  --web.listen-address="127.0.0.1:${pport}" >"${work}/prometheus.log" 2>&1 &
pids+=($!)
api="http://127.0.0.1:${pport}"
for _ in $(seq 1 100); do curl -fsS "${api}/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "${api}/-/ready" >/dev/null || die "prometheus did not become ready"
ok "prometheus $(prometheus --version 2>&1 | head -n 1 | awk '{print $3}') on ${api}"

# query PROMQL: one line per series, 'name{label="value",...} VALUE' with
# labels sorted; exits non-zero if Prometheus refuses the query.
query() {
  curl -fsS -G --data-urlencode "query=$1" "${api}/api/v1/query" | perl -MJSON::PP -e '
    local $/; my $r = JSON::PP->new->decode(<STDIN>);
    die "query failed: $r->{error}\n" unless $r->{status} eq "success";
    for my $s (@{$r->{data}{result}}) {
      my %m = %{$s->{metric}}; my $n = delete $m{__name__} // "";
      print $n, "{", join(",", map { "$_=\"$m{$_}\"" } sort keys %m), "} ", $s->{value}[1], "\n";
    }'
}

# eventually DESCRIPTION PROMQL PERL_CONDITION: polls until the condition
# (Perl, over $_ = the whole query output) holds or the budget is spent.
eventually() {
  local what=$1 promql=$2 cond=$3 out=""
  while :; do
    out=$(query "${promql}" 2>&1 || true)
    if printf '%s' "${out}" | perl -e "\$_ = do { local \$/; <STDIN> } // ''; exit((${cond}) ? 0 : 1)"; then
      ok "${what}"
      return 0
    fi
    if [[ ${SECONDS} -ge ${DEADLINE} ]]; then
      fail "${what}: query ${promql} returned:"$'\n'"${out:-<nothing>}"
      return 0
    fi
    sleep 1
  done
}

r="rollout=\"${rollout}\""
eventually "the server is scraped" 'up{job="ringwarden"}' '/ 1$/m'
eventually "build info carries a version" 'ringwarden_build_info{job="ringwarden"}' '/version="[^"]+"\} 1$/m'
eventually "this replica leads the controller" 'ringwarden_controller_leader{job="ringwarden"}' '/\} 1$/m'
eventually "ringwarden_rollouts: 1 rollout of ${CHANNEL} in CANARY, all 8 states reported" \
  "ringwarden_rollouts{job=\"ringwarden\",channel=\"${CHANNEL}\"}" \
  '/state="CANARY"\} 1$/m && (() = /state="(PENDING|CANARY|EARLY|BROAD|COMPLETED|HALTED|ROLLED_BACK|CANCELLED)"/g) == 8'
eventually "ring agents by status for ${rollout} in canary" \
  "ringwarden_rollout_ring_agents{${r},channel=\"${CHANNEL}\",version=\"1\",ring=\"canary\"}" \
  'do { my $o = $_; 6 == grep { $o =~ /status="$_"/ } qw(targeted applied healthy crashed silent failed) }'
eventually "canary agents applied v1" \
  "ringwarden_rollout_ring_agents{${r},ring=\"canary\",status=\"applied\"} > 0" '/\S/'
eventually "failure rate of the canary ring is in [0, 1]" \
  "ringwarden_rollout_ring_failure_rate{${r},channel=\"${CHANNEL}\",version=\"1\",ring=\"canary\"}" \
  '/\} (0|1|0\.\d+)$/m'
eventually "control failure rate of the canary ring is in [0, 1]" \
  "ringwarden_rollout_ring_control_failure_rate{${r},channel=\"${CHANNEL}\",version=\"1\",ring=\"canary\"}" \
  '/\} (0|1|0\.\d+)$/m'
eventually "latest canary decision: wait, gate_pending (default policy bakes 1 h)" \
  "ringwarden_rollout_ring_decision{${r},channel=\"${CHANNEL}\",version=\"1\",ring=\"canary\"}" \
  '/kind="wait".*reason="gate_pending".*\} 1$/m && (() = /^\S/mg) == 1'
eventually "stage age of ${rollout} in CANARY" \
  "ringwarden_rollout_stage_age_seconds{${r},channel=\"${CHANNEL}\",version=\"1\",state=\"CANARY\"}" '/\} [0-9.e+-]+$/m'
eventually "canary bake time is the default policy's 3600 s" \
  "ringwarden_rollout_min_bake_seconds{${r},channel=\"${CHANNEL}\",version=\"1\",state=\"CANARY\"}" '/\} 3600$/m'
eventually "wait decisions counted" 'ringwarden_decisions_total{kind="wait"} > 0' '/\S/'
eventually "all ${AGENTS} agents enrolled, by ring" 'sum(ringwarden_agents{job="ringwarden"})' "/\\} ${AGENTS}\$/m"
eventually "agents report running v1" \
  "ringwarden_agents_by_version{channel=\"${CHANNEL}\",version=\"1\"} > 0" '/\S/'
eventually "agents heard from in the last 5 minutes" 'ringwarden_agents_seen{window="5m"} > 0' '/\S/'
eventually "leader-only recording rule sees the rollout" \
  "rollout:ringwarden_rollout_stage_age_seconds:leader{${r}}" '/\S/'
eventually "per-method error ratio recorded for GetAssignment" \
  'job_method:ringwarden_rpc_errors:ratio_rate5m{method="GetAssignment"}' '/\S/'

# Every rule loaded and evaluated without error.
rules_total=$(grep -cE '^\s*-\s*(alert|record):' "${root}/deploy/prometheus/rules.yml")
while :; do
  rules=$(curl -fsS "${api}/api/v1/rules" | perl -MJSON::PP -e '
    local $/; my $r = JSON::PP->new->decode(<STDIN>); my ($n, @bad) = (0);
    for my $g (@{$r->{data}{groups}}) { for my $rule (@{$g->{rules}}) {
      $n++; push @bad, "$rule->{name}: $rule->{lastError}" if $rule->{health} ne "ok" }}
    print "$n\n", map { "$_\n" } @bad;')
  [[ "$(head -n 1 <<<"${rules}")" == "${rules_total}" && $(wc -l <<<"${rules}") -eq 1 ]] && break
  if [[ ${SECONDS} -ge ${DEADLINE} ]]; then
    fail "rules: expected ${rules_total} healthy rules, Prometheus reports:"$'\n'"${rules}"
    break
  fi
  sleep 1
done
[[ $(wc -l <<<"${rules}") -eq 1 ]] && ok "all ${rules_total} rules of rules.yml evaluate without error"

# A healthy system: no alert pending or firing.
eventually "no alert is pending or firing" 'ALERTS' '!/\S/'

# Every contract metric (so every metric the dashboard queries) is exposed.
dashboard_exprs "${root}/deploy/grafana/ringwarden.json" >"${work}/exprs"
metric_names <"${work}/exprs" >"${work}/dashboard_metrics"
while :; do
  curl -fsS "http://127.0.0.1:${mport}/metrics" | sed -nE 's/^# TYPE (ringwarden_[a-z_]+) .*/\1/p' |
    sort -u >"${work}/scraped"
  missing=()
  for m in "${CONTRACT_METRICS[@]}"; do grep -qx "${m}" "${work}/scraped" || missing+=("${m}"); done
  while read -r m; do grep -qx "${m}" "${work}/scraped" || missing+=("${m} (dashboard)"); done \
    <"${work}/dashboard_metrics"
  [[ ${#missing[@]} -eq 0 || ${SECONDS} -ge ${DEADLINE} ]] && break
  sleep 1
done
if [[ ${#missing[@]} -eq 0 ]]; then
  ok "all ${#CONTRACT_METRICS[@]} contract metrics, and the $(wc -l <"${work}/dashboard_metrics") the dashboard queries, are in /metrics"
else
  fail "not in the server's /metrics: ${missing[*]}"
fi

# Every dashboard query runs on this Prometheus and, but for those that only
# show incidents (database errors; the automatic and emergency stop
# annotations), returns data in this scenario: a wrong label in a panel's
# selector shows up here as an empty result.
bad=0
while IFS= read -r expr; do
  q=$(grafana_to_promql <<<"${expr}")
  if ! out=$(query "${q}" 2>"${work}/err"); then
    fail "dashboard query refused: ${q}: $(cat "${work}/err")"
    bad=1
  elif [[ -z "${out}" ]] && ! grep -qE 'ringwarden_db_errors_total|(> 0|== 1)$' <<<"${q}"; then
    fail "dashboard query returned nothing: ${q}"
    bad=1
  fi
done <"${work}/exprs"
[[ ${bad} -eq 0 ]] && ok "all $(wc -l <"${work}/exprs") dashboard queries run on Prometheus and show data"

if [[ ${failures} -gt 0 ]]; then
  echo "deploy_live_test: ${failures} failure(s)" >&2
  exit 1
fi
echo "deploy_live_test: all checks passed in ${SECONDS}s"
