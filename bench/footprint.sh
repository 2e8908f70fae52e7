#!/usr/bin/env bash
# B5, cost per known agent: a real ringwarden-server's resident memory with
# --agents agents on record, against the same server with none (both measured
# in this run), and the database's bytes per agent. The agents are written
# straight into PostgreSQL, as enrollment leaves them: one in a hundred with a
# label (group=dogfood, so the snapshot keeps it), each with a version in
# effect on one channel and a recent heartbeat. Also reports how long a
# snapshot refresh takes at that size against the same server with no agents
# (the work every replica repeats on its refresh timer, which reads only the
# agent gates changed since the last refresh: it must not grow with the fleet;
# target at most 1.5x the anchor plus 0.5 ms), and (B4) how long the full read of a rollout's
# agents takes at 100k and at --agents agents (what a new leader pays once), then
# bench/ledger_bench.cc: the leader's period with the health tracker, which
# re-reads only the agents heard from since the last period, against that full
# read in the same run. The heartbeat merge is timed with the change feed's
# triggers (migration 0015) and without them. Target: <= 128 bytes of server RSS
# per agent.
#
#   ./bench/footprint.sh [--agents 1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
agents=1000000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --agents) agents=$2; shift 2 ;;
    *) echo "footprint: unknown option $1" >&2; exit 2 ;;
  esac
done
source bench/lib.sh
metrics_port=$((57000 + RANDOM % 400))
metrics_listen="127.0.0.1:${metrics_port}"
# Refreshes every 0.25 s (the default is 30 s, and at each notified change): a database connection idle for 2 s on
# this VM answers its next statement 1.5-2.5 ms late once the database holds a million agents
# (the VM reclaims idle memory), which says nothing about the refresh's own work. A busy
# deployment's database is never idle that long.
flags=(--no-controller --refresh-interval 0.25)
bench_start_server footprint-bench "${flags[@]}"

# rss_kib waits for a few snapshot refreshes, then prints the server's VmRSS in KiB.
rss_kib() {
  sleep 8
  awk '/^VmRSS:/ { print $2 }' "/proc/${server_pid}/status"
}
# refresh_stats OPERATION prints "seconds count": the time spent in the snapshot's catalog loads
# of that kind so far, and how many. load_catalog reads every agent gate (the first refresh,
# then every 10 minutes), load_catalog_changes the gates changed since the last refresh (every
# other refresh).
refresh_stats() {
  curl -s "http://${metrics_listen}/metrics" | awk -v op="$1" '
    index($0, "ringwarden_db_operation_duration_seconds_sum{") == 1 && index($0, "operation=\"" op "\"") { s = $2 }
    index($0, "ringwarden_db_operation_duration_seconds_count{") == 1 && index($0, "operation=\"" op "\"") { c = $2 }
    END { printf "%.6f %d\n", s, c }'
}
# steady_refresh_ms prints the mean duration of the refreshes (reads of the changes) over 10 s,
# after the first few: each database connection plans its statements at its first loads, a cost
# that grows with the tables' statistics and is paid once.
steady_refresh_ms() {
  local s0 c0 s1 c1
  read -r s0 c0 < <(refresh_stats load_catalog_changes)
  sleep 10
  read -r s1 c1 < <(refresh_stats load_catalog_changes)
  awk -v s0="${s0}" -v c0="${c0}" -v s1="${s1}" -v c1="${c1}" \
    'BEGIN { printf "%.2f", (c1 > c0) ? 1000 * (s1 - s0) / (c1 - c0) : 0 }'
}

echo "machine: $(nproc) cores, $(uname -sr); $(date -u '+%Y-%m-%d %H:%M UTC')"
rss_empty=$(rss_kib)
refresh_empty=$(steady_refresh_ms)
bench_stop_server

# load_agents FROM TO writes agents FROM..TO (and their versions in effect).
load_agents() {
  psql "${db}" -q <<SQL
INSERT INTO agents (agent_id, labels, ring, hostname, enrolled_at, last_seen_at, boot_id,
                    boot_since, enrolled_with)
SELECT format('agent-%s', md5(g::text)),
       CASE WHEN g % 100 = 0 THEN '{"group": "dogfood"}'::jsonb ELSE '{}'::jsonb END,
       CASE WHEN g % 100 = 0 THEN 'canary' WHEN g % 10 = 0 THEN 'early' ELSE 'broad' END,
       format('host-%s.corp.example.com', g), now() - interval '30 days', now(),
       md5((g * 7)::text), now() - interval '2 days', 'enroll-token-1'
FROM generate_series($1, $2) g;
INSERT INTO agent_versions (agent_id, channel, version, since, reported_at)
SELECT format('agent-%s', md5(g::text)), 'rules.behavioral', 7, now() - interval '1 day', now()
FROM generate_series($1, $2) g;
VACUUM ANALYZE agents;
VACUUM ANALYZE agent_versions;
SQL
}

# health_read_ms prints the median of 3 runs of the controller's per-rollout read of every
# agent's version and last heartbeat (sql::kHealthAgents with no holding pins), in ms.
health_read_ms() {
  for _ in 1 2 3; do
    psql "${db}" -qAt <<'SQL' | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
\timing on
\o /dev/null
SELECT a.agent_id, a.ring, coalesce(v.version, 0),
       (extract(epoch from v.since) * 1000000)::bigint,
       (extract(epoch from a.last_seen_at) * 1000000)::bigint,
       (extract(epoch from a.boot_since) * 1000000)::bigint
FROM agents a
LEFT JOIN agent_versions v ON v.agent_id = a.agent_id AND v.channel = 'rules.behavioral'
WHERE NOT EXISTS (
  SELECT 1 FROM unnest('{}'::text[], '{}'::text[]) AS held (label_key, label_value)
  WHERE a.labels ->> held.label_key = held.label_value);
SQL
  done | sort -n | sed -n 2p
}

# heartbeat_merge_ms [FIRST_RUN] [SESSION_SETTING] prints the median of 3 merges of 33,000
# heartbeats of distinct agents (one second of a 10M fleet at a 5-minute heartbeat): the two
# statements every telemetry flush runs (sql::kMergeHeartbeatsIntoAgents and
# kMergeHeartbeatsIntoVersions), from the staging table. session_replication_role = replica
# leaves the change feed's triggers out, for the anchor.
heartbeat_merge_ms() {
  local first=${1:-1} setting=${2:-"session_replication_role = origin"}
  for run in $((first)) $((first + 1)) $((first + 2)); do
    psql "${db}" -qAt <<SQL | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | awk '{ s += $1 } END { print s }'
SET ${setting};
CREATE TEMP TABLE hb_in (agent_id text, channel text, version bigint, boot_id text, at_us bigint);
INSERT INTO hb_in
SELECT format('agent-%s', md5(g::text)), 'rules.behavioral', 7, md5((g * 7)::text),
       (extract(epoch from now()) * 1000000)::bigint
FROM generate_series(${run} * 33000, ${run} * 33000 + 32999) g;
\timing on
\o /dev/null
UPDATE agents a SET last_seen_at = h.at, boot_id = h.boot_id,
  boot_since = CASE WHEN a.boot_id = h.boot_id AND a.boot_since IS NOT NULL THEN a.boot_since
                    ELSE h.first_at END
FROM (SELECT DISTINCT ON (agent_id) agent_id, boot_id,
             timestamptz 'epoch' + at_us * interval '1 microsecond' AS at,
             timestamptz 'epoch' + min(at_us) OVER (PARTITION BY agent_id, boot_id)
               * interval '1 microsecond' AS first_at
      FROM hb_in ORDER BY agent_id, at_us DESC) h
WHERE a.agent_id = h.agent_id AND (a.last_seen_at IS NULL OR a.last_seen_at <= h.at);
INSERT INTO agent_versions (agent_id, channel, version, since, reported_at)
SELECT DISTINCT ON (h.agent_id, h.channel) h.agent_id, h.channel, h.version,
       timestamptz 'epoch' + h.at_us * interval '1 microsecond',
       timestamptz 'epoch' + h.at_us * interval '1 microsecond'
FROM hb_in h JOIN agents a USING (agent_id)
WHERE h.version >= 0
ORDER BY h.agent_id, h.channel, h.at_us DESC
ON CONFLICT (agent_id, channel) DO UPDATE SET
  version = EXCLUDED.version,
  since = CASE WHEN agent_versions.version = EXCLUDED.version THEN agent_versions.since
               ELSE EXCLUDED.since END,
  reported_at = EXCLUDED.reported_at
WHERE agent_versions.reported_at <= EXCLUDED.reported_at;
SQL
  done | sort -n | sed -n 2p
}

t0=$(date +%s)
small=$(( agents < 100000 ? agents : 100000 ))
load_agents 1 "${small}"
read_small=$(health_read_ms)
[[ "${agents}" -gt "${small}" ]] && load_agents $((small + 1)) "${agents}"
read_full=$(health_read_ms)
t1=$(date +%s)
merge_bare=$(heartbeat_merge_ms 1 "session_replication_role = replica")
merge=$(heartbeat_merge_ms 4)
ledger=$(./build/bench/ringwarden_ledger_bench --db "${db}" --agents "${agents}" \
  --changed $(( agents / 60 )) --periods 5) || { echo "${ledger}"; exit 1; }
pg_bytes=$(psql "${db}" -qAt -c "SELECT pg_total_relation_size('agents') +
  pg_total_relation_size('agent_versions')")

bench_run_server "${flags[@]}"
rss_full=$(rss_kib)
refresh_whole=$(refresh_stats load_catalog | awk '{ printf "%.2f", ($2 > 0) ? 1000 * $1 / $2 : 0 }')
refresh=$(steady_refresh_ms)

echo "loaded ${agents} agents in $((t1 - t0)) s"
status=0
awk -v n="${agents}" -v e="${rss_empty}" -v f="${rss_full}" -v pg="${pg_bytes}" -v r="${refresh}" \
  -v r0="${refresh_empty}" -v rw="${refresh_whole}" \
  -v small="${small}" -v rs="${read_small}" -v rf="${read_full}" -v m="${merge}" \
  -v mb="${merge_bare}" 'BEGIN {
  per = (f - e) * 1024 / n
  printf "%-44s %14s %8s  %s\n", "B5 cost per known agent", "value", "target", "verdict"
  printf "%-44s %11.1f MB %8s  %s\n", "server RSS, no agents (anchor)", e / 1024, "-", "anchor"
  printf "%-44s %11.1f MB %8s  %s\n", "server RSS, " n " agents", f / 1024, "-", ""
  v = (per <= 128) ? "ok" : "OVER"
  printf "%-44s %12.1f B %8s  %s\n", "server RSS per agent", per, "<=128", v
  printf "%-44s %12.0f B %8s  %s\n", "PostgreSQL per agent (agents, agent_versions)", pg / n, "-", "measured"
  printf "%-44s %11.2f ms %8s  %s\n", "snapshot refresh, no agents (anchor)", r0, "-", "anchor"
  printf "%-44s %11.2f ms %8s  %s\n", "snapshot refresh, " n " agents", r, "-", ""
  # No refresh timed on either side is no figure, not a pass.
  rv = (r > 0 && r0 > 0 && r <= 1.5 * r0 + 0.5) ? "ok" : "OVER"
  printf "%-44s %13.2fx %8s  %s\n", "  with the agents / without", (r0 > 0) ? r / r0 : 0, "~1", rv
  printf "%-44s %11.2f ms %8s  %s\n", "  every gate read (at start, every 10 min)", rw, "-", "measured"
  printf "%-44s %11.0f ms %8s  %s\n", "merge of 33,000 heartbeats, no feed (anchor)", mb, "-", "anchor"
  printf "%-44s %11.0f ms %8s  %s\n", "merge of 33,000 heartbeats (1 s at 10M/5 min)", m, "~1000", (m < 1000) ? "ok" : "over"
  fv = (m / mb <= 1.25) ? "ok" : "OVER"
  printf "%-44s %13.2fx %8s  %s\n", "  with the change feed / without", m / mb, "<=1.25", fv
  printf "\n%-44s %14s %8s  %s\n", "B4 controller read per rollout and period", "per agent", "target", "verdict"
  printf "%-44s %9.0f ms %6.0f ns  %s\n", "health read at " small " agents", rs, rs * 1e6 / small, "measured"
  printf "%-44s %9.0f ms %6.0f ns  %s\n", "health read at " n " agents", rf, rf * 1e6 / n, "measured"
  exit (v != "ok" || fv != "ok" || rv != "ok")
}' || status=$?
echo
echo "${ledger}"
exit "${status}"
