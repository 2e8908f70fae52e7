# Shared by static_test.sh and live_test.sh (sourced, not run).
#
# JSON is read with Perl's JSON::PP: perl is on every machine that has git and
# PostgreSQL (deploy/install-deps.sh), python3 is not.

# The metric contract of ringwarden-server: every name the alert rules and the
# dashboard may use (histograms by their base name).
CONTRACT_METRICS=(
  ringwarden_build_info
  ringwarden_rpc_requests_total
  ringwarden_rpc_duration_seconds
  ringwarden_rollouts
  ringwarden_rollout_ring_agents
  ringwarden_rollout_ring_failure_rate
  ringwarden_rollout_ring_control_failure_rate
  ringwarden_rollout_ring_decision
  ringwarden_rollout_stage_age_seconds
  ringwarden_rollout_min_bake_seconds
  ringwarden_rollout_exposure_hosts
  ringwarden_decisions_total
  ringwarden_auto_stops_total
  ringwarden_auto_stop_seconds
  ringwarden_agents
  ringwarden_agents_by_version
  ringwarden_agents_seen
  ringwarden_emergency_stop_active
  ringwarden_telemetry_queue_rows
  ringwarden_telemetry_rows_written_total
  ringwarden_telemetry_dropped_rows_total
  ringwarden_telemetry_poison_rows_total
  ringwarden_requests_refused_total
  ringwarden_assignment_answers_total
  ringwarden_health_tracker_full_loads_total
  ringwarden_health_tracker_agents_reread_total
  ringwarden_health_tracker_heartbeats_applied_total
  ringwarden_health_tracker_rollouts
  ringwarden_health_tracker_sync_seconds
  ringwarden_health_feed_held_back_seconds
  ringwarden_db_operation_duration_seconds
  ringwarden_db_errors_total
  ringwarden_controller_leader
  ringwarden_snapshot_age_seconds
  ringwarden_snapshot_refresh_errors_total
  ringwarden_snapshot_refreshes_total
  ringwarden_telemetry_upkeep_errors_total
  ringwarden_admin_queue_depth
  ringwarden_server_key_trusted
)

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
die() {
  echo "FAIL: $*" >&2
  exit 1
}
ok() { echo "ok: $* [${SECONDS}s]"; }

need() {
  local tool
  for tool in "$@"; do
    command -v "${tool}" >/dev/null 2>&1 ||
      die "${tool} not found (Debian packages: prometheus for promtool and prometheus," \
        "postgresql-client for psql; ./deploy/install-deps.sh installs them)"
  done
}

in_contract() {
  local m
  for m in "${CONTRACT_METRICS[@]}"; do
    [[ "$1" == "${m}" ]] && return 0
  done
  return 1
}

# dashboard_exprs FILE: every PromQL query of a Grafana dashboard, one a line
# (panel and row targets, template variable queries, annotation queries).
# Exits non-zero if FILE is not valid JSON.
dashboard_exprs() {
  perl -MJSON::PP -e '
    local $/; open(my $f, "<", $ARGV[0]) or die "$ARGV[0]: $!\n";
    my $d = JSON::PP->new->decode(<$f>);
    my @out;
    sub walk_panels { for my $p (@{$_[0] || []}) {
      for my $t (@{$p->{targets} || []}) { push @out, $t->{expr} if defined $t->{expr} }
      walk_panels($p->{panels});
    } }
    walk_panels($d->{panels});
    for my $v (@{$d->{templating}{list} || []}) {
      next unless ($v->{type} // "") eq "query";
      my $q = ref $v->{query} ? $v->{query}{query} : $v->{query};
      push @out, $q if defined $q;
    }
    for my $a (@{$d->{annotations}{list} || []}) { push @out, $a->{expr} if defined $a->{expr} }
    for (@out) { s/\s+/ /g; print "$_\n" }
  ' "$1"
}

# metric_names: the ringwarden_* metric names in the PromQL read from stdin,
# histogram series reduced to their base name. Names inside recording-rule
# names (job:ringwarden_x:rate5m) are not metrics and are skipped.
metric_names() {
  perl -ne 'while (/(?<![:\w])(ringwarden_[a-z_]+)/g) {
      my $m = $1; $m =~ s/_(bucket|sum|count)$//; print "$m\n" }' | sort -u
}

# grafana_to_promql: turns dashboard queries (stdin, one a line) into plain
# PromQL: variables get values, label_values(SELECTOR, LABEL) becomes
# count by (LABEL) (SELECTOR).
grafana_to_promql() {
  sed -E -e 's/\$__rate_interval/1m/g' -e 's/\$__range/5m/g' -e 's/\$__interval/1m/g' \
    -e 's/\$job/ringwarden/g' -e 's/\$channel/.*/g' \
    -e 's/^label_values\((.*), *([A-Za-z_]+)\)$/count by (\2) (\1)/'
}

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
  perl -MIO::Socket::INET -e '
    my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1,
                                  ReuseAddr => 1) or die "bind: $!\n";
    print $s->sockport, "\n";'
}
