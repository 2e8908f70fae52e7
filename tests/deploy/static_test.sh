#!/usr/bin/env bash
# deploy_static_test: checks the operations files in deploy/ without running
# anything long-lived.
#
#   static_test.sh REPO_ROOT RINGWARDEN_SERVER_BIN RINGWARDEN_AGENT_BIN
#
# - Prometheus: promtool check config / check rules / test rules; every alert
#   has severity, summary, description and a runbook_url whose anchor is a
#   heading of docs/operations.md, and a firing and a quiet unit test; rules
#   use only contract metrics.
# - Grafana: the dashboard is valid JSON, uses the datasource variable, every
#   query is valid PromQL (promtool), and the metrics it queries are exactly the
#   metric contract (lib.sh).
# - systemd: hardening directives present, every flag the units and example
#   env files pass is one the binaries accept, systemd-analyze verify (when
#   installed).
# - Kubernetes: every flag the manifests pass is accepted, 2+ replicas, gRPC
#   probes, a PodDisruptionBudget; YAML parses (when PyYAML is installed) and
#   the kustomization builds (when kubectl is installed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "${here}/lib.sh"

root=${1:?usage: static_test.sh REPO_ROOT SERVER_BIN AGENT_BIN}
server_bin=${2:?server binary}
agent_bin=${3:?agent binary}
root=$(cd "${root}" && pwd)
server_bin=$(realpath "${server_bin}")
agent_bin=$(realpath "${agent_bin}")
prom="${root}/deploy/prometheus"
dashboard="${root}/deploy/grafana/ringwarden.json"
runbook="${root}/docs/operations.md"
need promtool perl

work=$(mktemp -d /tmp/ringwarden-deploy-static.XXXXXX)
trap 'rm -rf "${work}"' EXIT

# --- Prometheus -----------------------------------------------------------
# From another directory, to prove rule_files resolve relative to the config.
if (cd "${work}" && promtool check config "${prom}/prometheus.yml") >"${work}/out" 2>&1; then
  ok "promtool check config prometheus.yml"
else
  cat "${work}/out" >&2
  fail "promtool check config prometheus.yml"
fi
grep -Eq '^\s*-\s*job_name:\s*"?ringwarden"?\s*$' "${prom}/prometheus.yml" ||
  fail "prometheus.yml has no scrape job named ringwarden"
if promtool check rules "${prom}/rules.yml" >"${work}/out" 2>&1; then
  ok "promtool check rules rules.yml"
else
  cat "${work}/out" >&2
  fail "promtool check rules rules.yml"
fi
if (cd "${work}" && promtool test rules "${prom}/rules_test.yml") >"${work}/out" 2>&1; then
  ok "promtool test rules rules_test.yml"
else
  cat "${work}/out" >&2
  fail "promtool test rules rules_test.yml"
fi

# Alert metadata: "NAME SEVERITY has_summary has_description RUNBOOK_URL" per alert.
perl -ne '
  sub flush { print join(" ", $n, $s // "-", $sum ? 1 : 0, $desc ? 1 : 0, $url // "-"), "\n" if $n }
  if (/^\s*-\s*(alert|record):\s*(\S+)/) { flush(); ($n, $s, $sum, $desc, $url) = ($1 eq "alert" ? $2 : undef) }
  elsif (/^\s*-\s*name:/) { flush(); $n = undef }
  elsif ($n && /^\s+severity:\s*(\S+)/) { $s = $1 }
  elsif ($n && /^\s+summary:\s*\S/) { $sum = 1 }
  elsif ($n && /^\s+description:\s*\S/) { $desc = 1 }
  elsif ($n && /^\s+runbook_url:\s*(\S+)/) { $url = $1 }
  END { flush() }' "${prom}/rules.yml" >"${work}/alerts"
[[ -s "${work}/alerts" ]] || fail "no alerts found in rules.yml"
# GitHub-style anchors of the runbook's headings.
perl -ne 'if (/^#+\s+(.*?)\s*$/) { my $a = lc $1; $a =~ s/[^\w\- ]//g; $a =~ s/ /-/g; print "$a\n" }' \
  "${runbook}" >"${work}/anchors"
alert_count=0
while read -r name severity has_summary has_description url; do
  alert_count=$((alert_count + 1))
  [[ "${severity}" == page || "${severity}" == warning ]] ||
    fail "alert ${name}: severity must be page or warning, got ${severity}"
  [[ "${has_summary}" == 1 ]] || fail "alert ${name}: no summary annotation"
  [[ "${has_description}" == 1 ]] || fail "alert ${name}: no description annotation"
  anchor=${name,,}
  [[ "${url}" == "docs/operations.md#${anchor}" ]] ||
    fail "alert ${name}: runbook_url should be docs/operations.md#${anchor}, got ${url}"
  grep -qx "${anchor}" "${work}/anchors" ||
    fail "alert ${name}: docs/operations.md has no heading '${name}' (anchor #${anchor})"
  # A test where it fires and one where it must stay quiet.
  perl -ne '
    BEGIN { $want = shift @ARGV }
    if (/^\s*alertname:\s*(\S+)/) { $cur = $1 }
    elsif (/^\s*exp_alerts:\s*\[\]\s*$/) { $quiet = 1 if $cur eq $want }
    elsif (/^\s*exp_alerts:\s*$/) { $fires = 1 if $cur eq $want }
    END { exit(($fires && $quiet) ? 0 : 1) }' "${name}" "${prom}/rules_test.yml" ||
    fail "alert ${name}: rules_test.yml needs a case where it fires and one where it does not"
done <"${work}/alerts"
ok "${alert_count} alerts have severity, summary, description, runbook and tests"

grep -v '^\s*#' "${prom}/rules.yml" | metric_names >"${work}/rule_metrics"
while read -r m; do
  in_contract "${m}" || fail "rules.yml uses ${m}, which is not in the metric contract (tests/deploy/lib.sh)"
done <"${work}/rule_metrics"
ok "rules.yml uses $(wc -l <"${work}/rule_metrics") contract metrics"

# --- Grafana ----------------------------------------------------------------
if dashboard_exprs "${dashboard}" >"${work}/exprs" 2>"${work}/err"; then
  ok "ringwarden.json is valid JSON with $(wc -l <"${work}/exprs") queries"
else
  cat "${work}/err" >&2
  die "deploy/grafana/ringwarden.json is not a readable dashboard"
fi
perl -MJSON::PP -e '
  local $/; open(my $f, "<", $ARGV[0]) or die; my $d = JSON::PP->new->decode(<$f>);
  my ($var) = grep { $_->{name} eq "datasource" } @{$d->{templating}{list}};
  die "no datasource variable\n" unless $var && $var->{type} eq "datasource" && $var->{query} eq "prometheus";
  die "dashboard needs a uid\n" unless $d->{uid};
  my %bad;
  sub walk { for my $p (@{$_[0] || []}) {
    for my $o ($p, @{$p->{targets} || []}) {
      my $ds = $o->{datasource}; next unless $ds;
      $bad{$p->{title}} = 1 unless ref $ds && $ds->{uid} eq q{${datasource}};
    }
    walk($p->{panels});
  } }
  walk($d->{panels});
  for my $o (@{$d->{annotations}{list}}, @{$d->{templating}{list}}) {
    my $ds = $o->{datasource};
    next if !$ds || ($o->{builtIn} // 0) || ($o->{type} // "") eq "datasource";
    $bad{$o->{name}} = 1 unless ref $ds && $ds->{uid} eq q{${datasource}};
  }
  die "panels, annotations or variables with a fixed datasource: ", join(", ", sort keys %bad), "\n" if %bad;
' "${dashboard}" 2>"${work}/err" && ok "dashboard uses the \${datasource} variable everywhere" ||
  fail "dashboard datasource: $(cat "${work}/err")"

# Every query is valid PromQL: promtool parses them as recording rules.
{
  echo "groups:"
  echo "  - name: dashboard"
  echo "    rules:"
  n=0
  while IFS= read -r expr; do
    n=$((n + 1))
    q=$(printf '%s' "${expr}" | grafana_to_promql | sed "s/'/''/g")
    printf "      - record: dashboard:query_%d\n        expr: '%s'\n" "${n}" "${q}"
  done <"${work}/exprs"
} >"${work}/dashboard_rules.yml"
if promtool check rules "${work}/dashboard_rules.yml" >"${work}/out" 2>&1; then
  ok "every dashboard query is valid PromQL"
else
  cat "${work}/out" >&2
  grep -n "expr:" "${work}/dashboard_rules.yml" >&2
  fail "dashboard queries that promtool rejects (dashboard:query_N is the Nth query listed above)"
fi

metric_names <"${work}/exprs" >"${work}/dashboard_metrics"
while read -r m; do
  in_contract "${m}" || fail "dashboard queries ${m}, which is not in the metric contract"
done <"${work}/dashboard_metrics"
for m in "${CONTRACT_METRICS[@]}"; do
  grep -qx "${m}" "${work}/dashboard_metrics" || fail "no dashboard panel shows ${m}"
done
ok "dashboard queries all $(wc -l <"${work}/dashboard_metrics") contract metrics and nothing else"

# --- flags passed to the binaries -------------------------------------------
# flags_in: every --flag token read from stdin (without "=value").
flags_in() { grep -oE '(^|[ "=])--[a-z][a-z-]*' | sed -E 's/^[ "=]?//' | sort -u; }
exec_start() { awk '/^ExecStart=/ { p = 1 } p { print } p && !/\\$/ { p = 0 }' "$1"; }
check_flags() {  # check_flags BINARY WHAT < text
  local bin=$1 what=$2 help flag
  help=$("${bin}" --help 2>&1 </dev/null; "${bin}" serve --help 2>&1 </dev/null || true)
  for flag in $(flags_in); do
    grep -qE -- "(^|[ ,!])${flag}([ ,={]|$)" <<<"${help}" ||
      fail "${what} passes ${flag}, which $(basename "${bin}") does not accept"
  done
}
sd="${root}/deploy/systemd"
# (Process substitution, not a pipe: fail() must run in this shell to count.)
check_flags "${server_bin}" "the server unit or its env example" \
  < <(exec_start "${sd}/ringwarden-server.service"; cat "${sd}/ringwarden-server.env.example")
check_flags "${server_bin}" "deploy/k8s/deployment.yaml" \
  < <(grep -E '^\s*- --' "${root}/deploy/k8s/deployment.yaml")
check_flags "${agent_bin}" "the agent unit or its env example" \
  < <(exec_start "${sd}/ringwarden-agent.service"; cat "${sd}/ringwarden-agent.env.example")
grep -q 'args: \["migrate"\]' "${root}/deploy/k8s/migrate-job.yaml" ||
  fail "migrate-job.yaml does not run 'ringwarden-server migrate'"
ok "flags in units, env examples and manifests are accepted by the binaries"

# --- systemd ------------------------------------------------------------------
for unit in ringwarden-server ringwarden-agent; do
  file="${root}/deploy/systemd/${unit}.service"
  for directive in '^User=.+' '^NoNewPrivileges=yes' '^ProtectSystem=strict' '^ProtectHome=yes' \
    '^PrivateTmp=yes' '^CapabilityBoundingSet=$' '^EnvironmentFile=.+' '^RestrictAddressFamilies=' \
    '^SystemCallFilter=@system-service' '^Restart='; do
    grep -Eq "${directive}" "${file}" || fail "${unit}.service lacks ${directive}"
  done
done
grep -Eq '^(StateDirectory=ringwarden-agent|ReadWritePaths=/var/lib/ringwarden-agent)' \
  "${root}/deploy/systemd/ringwarden-agent.service" || fail "agent unit has no writable state directory"
if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir -p "${work}/units"
  for unit in ringwarden-server ringwarden-agent; do
    sed -e "s#/usr/local/bin/ringwarden-server#${server_bin}#" \
      -e "s#/usr/local/bin/ringwarden-agent#${agent_bin}#" \
      "${root}/deploy/systemd/${unit}.service" >"${work}/units/${unit}.service"
  done
  if systemd-analyze verify "${work}/units/"*.service >"${work}/out" 2>&1 && [[ ! -s "${work}/out" ]]; then
    ok "systemd-analyze verify"
  else
    cat "${work}/out" >&2
    fail "systemd-analyze verify reports problems"
  fi
else
  echo "note: systemd-analyze not installed; unit files checked by grep only"
fi
ok "systemd units are hardened"

# --- Kubernetes -----------------------------------------------------------------
k8s="${root}/deploy/k8s"
grep -q 'kind: PodDisruptionBudget' "${k8s}"/*.yaml || fail "no PodDisruptionBudget in deploy/k8s"
[[ $(grep -c '^\s*grpc:\s*$' "${k8s}/deployment.yaml") -ge 2 ]] ||
  fail "deployment.yaml should probe readiness and liveness through the gRPC health service"
replicas=$(sed -nE 's/^\s*replicas:\s*([0-9]+)\s*$/\1/p' "${k8s}/deployment.yaml")
[[ "${replicas:-0}" -ge 3 ]] || fail "deployment.yaml should run at least 3 replicas"
if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
  if python3 - "${k8s}"/*.yaml <<'EOF'; then
import sys, yaml
for path in sys.argv[1:]:
    for doc in yaml.safe_load_all(open(path)):
        if doc is None:
            continue
        assert doc.get("apiVersion") and doc.get("kind"), f"{path}: a document without apiVersion/kind"
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"], f"{path}: unnamed {doc['kind']}"
EOF
    ok "Kubernetes manifests parse"
  else
    fail "Kubernetes manifests do not parse"
  fi
else
  echo "note: PyYAML not installed; Kubernetes manifests checked by grep only"
fi

if command -v kubectl >/dev/null 2>&1; then
  if kubectl kustomize "${k8s}" >"${work}/kustomized.yaml" 2>"${work}/err"; then
    ok "kubectl kustomize deploy/k8s"
  else
    fail "kubectl kustomize deploy/k8s: $(cat "${work}/err")"
  fi
fi

if [[ ${failures} -gt 0 ]]; then
  echo "deploy_static_test: ${failures} failure(s)" >&2
  exit 1
fi
echo "deploy_static_test: all checks passed"
