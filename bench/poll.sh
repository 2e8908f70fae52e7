#!/usr/bin/env bash
# B1 and B2: the poll path against an echo server, and the largest fleet one server core
# sustains, both driven by build/agent-client/ringwarden-loadgen (gRPC callback API, many
# distinct agents) pinned to the last CPU, with the server pinned to CPU 0.
#
# B1: closed loop, polls only, `--concurrency` calls in flight from --agents distinct enrolled
#     agents: the server's peak and latency, then the echo AgentService (the same gRPC
#     library, a reply of the size the server sent, no work) on the same CPU the same way.
#     Then the server's open-loop capacity: polls only at rising rates, the largest with no
#     missed call (the rule B2 uses). In open loop each call arrives alone and gRPC batches
#     nothing, so a call costs several times what it costs in closed loop (on the development
#     VM, about 6 thread switches of gRPC's two callback threads per call, the echo's as much
#     as the server's), and the capacity is well below the closed-loop peak. Then both in open
#     loop at the same rate: at 70 % of that capacity (the verdict: p99 at equal load), at
#     70 % of the closed-loop peak (the operating point of earlier runs, at or past the
#     open-loop capacity: there a queue grows for as long as the run lasts, and its p99 says
#     how long the run was rather than what a poll costs; reported, not judged), and at 25 %
#     of the peak. Each is a compared run (--compare-with): one run whose turns of 100 ms go to
#     the server and to the echo (server, echo, echo, server, and again; even runs start with
#     the echo), the same agents sending both the same requests, so
#     that a stall of the shared machine meets both sides alike (runs one after the other do
#     not: on the development VM a 20 s run's p99 moved between 6 and 120 ms from one run of
#     the same side to the next). --pairs (default 5) of them at the verdict's rate, each
#     followed by the echo against itself the same way: the ratio a run reads when nothing
#     differs, printed beside the verdict as the method's noise; three at each other rate. The
#     figures are the medians of the runs' ratios. The verdict's runs also give each side's CPU
#     time per poll (from /proc), which a stall does not move. Then the echo's open-loop
#     capacity, swept the same way as the server's from the server's up (in tenths of it to
#     1.5x, then 1.7x and 2x), for the ratio of the two (one sweep each: reported, not judged).
#     Every run starts once the machine is quiet (bench_settle: an overloaded step of a sweep
#     leaves the servers answering or cancelling calls for seconds after it, and the echo has
#     no stream limit), then with each agent polling once (not measured; the server, in a
#     compared run), so that agents hold a signed statement as a fleet at rest does. Targets: throughput >= 0.8x echo,
#     p99 <= 1.25x echo.
# B2: open loop, a poll and a heartbeat per host turn (a fleet polling and heartbeating every
#     5 minutes: 2 calls per host per 300 s), rising rates of 20 s each (a quarter of the poll
#     peak up to three times it: heartbeats cost less than polls); the largest with no missed
#     call (refused, or answered more than 1 s after it was due) gives hosts per
#     server vCPU, against FleetDM's published 7,500. Target: >= 250,000.
#
# With --tls, B1 over TLS as agents run in production: the server serves TLS with a throwaway
# PKI, each agent enrolls with its own key and calls over its own connection with the
# certificate it was issued (so --agents defaults to 5,000: a connection each), and the echo
# serves TLS the same way, asking for and verifying the same client certificates. One load
# generator core cannot saturate that path (a call per connection, each its own TLS record
# and system calls: measured, the generator's core is full at about 3,500 polls/s while the
# server's is not), so a peak would measure the generator. Instead both run in open loop at
# --tls-rate (default 2,000 polls/s), three interleaved pairs, and the table gives p50, p99
# and each side's CPU time per poll (from /proc, between the end of the warm-up and the end
# of the run), whose ratio is what the server's own work costs over TLS. No B2.
#
#   ./bench/poll.sh [--agents 100000] [--seconds 20] [--pairs 5] [--tls [--tls-rate 2000]]
set -euo pipefail
cd "$(dirname "$0")/.."
agents=""
seconds=20
concurrency=256
bench_tls=0
tls_rate=2000
verdict_pairs=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --agents) agents=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --tls) bench_tls=1; shift ;;
    --tls-rate) tls_rate=$2; shift 2 ;;
    --pairs) verdict_pairs=$2; shift 2 ;;
    *) echo "poll: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "${verdict_pairs}" =~ ^[1-9][0-9]?$ ]] || { echo "poll: --pairs takes 1 to 99" >&2; exit 2; }
[[ -n "${agents}" ]] || agents=$([[ "${bench_tls}" == 1 ]] && echo 5000 || echo 100000)
if [[ "${bench_tls}" == 1 ]]; then
  # A connection per agent on each side (server, echo, generator): as many descriptors as
  # agents, and then some, from the server's start on.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if [[ "$(ulimit -n)" != unlimited && "$(ulimit -n)" -lt $(( agents + 256 )) ]]; then
    echo "poll: --tls with ${agents} agents needs $(( agents + 256 )) open files (ulimit -n is $(ulimit -n))" >&2
    exit 2
  fi
fi
cpus=$(nproc)
[[ "${cpus}" -ge 2 ]] || { echo "poll: needs 2 CPUs (server on one, load on another)" >&2; exit 2; }
load_cpu=$((cpus - 1))
server_cpu=0
source bench/lib.sh
loadgen=(taskset -c "${load_cpu}" ./build/agent-client/ringwarden-loadgen)
tls_client=()
echo_tls=()
echo_agents=(--no-enroll)
if [[ "${bench_tls}" == 1 ]]; then
  tls_client=(--ca "${work}/tls/server-ca.crt")
  echo_tls=(--echo-cert "${work}/tls/server.crt" --echo-key "${work}/tls/server.key"
    --echo-client-ca "${work}/tls/agent-ca.crt")
fi
# Each agent's calls pass the server's per-agent limit (the same code and cost as in
# production), raised so that a short run over few agents (--agents 5000) is not refused: at
# 100,000 agents each polls well under the default 2/s anyway.
bench_start_server poll-bench --max-tracked-agents 1000000 --agent-rate 100 --agent-burst 200

echo "machine: ${cpus} cores, $(uname -sr); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "server on CPU ${server_cpu}, load generator on CPU ${load_cpu}, PostgreSQL unpinned"
[[ "${bench_tls}" == 1 ]] && echo "over TLS: a connection and a client certificate per agent"
credentials="${work}/credentials"
# Over TLS the echo's agents present the certificates the server issued, over a connection
# each, as they do to the server (the echo asks for them and verifies them the same way).
[[ "${bench_tls}" == 1 ]] && echo_agents=(--credentials "${credentials}" "${tls_client[@]}")
start=$(date +%s)
"${loadgen[@]}" --server "${server}" --agents "${agents}" --token "${enroll}" \
  --enroll-concurrency 64 --save-credentials "${credentials}" "${tls_client[@]}"
echo "enrolled ${agents} agents in $(( $(date +%s) - start )) s (one transaction each)"

# run TARGET FLAGS... prints the generator's JSON result; TARGET is "server" or "echo". Every
# run starts with each agent polling once (--warm-up, not measured), so that each holds a
# signed statement and names it in its polls, as a fleet in its steady state does: the server
# then signs only where an answer changed or a statement passed half its lifetime.
run() {
  local target=$1
  shift
  bench_settle "${server_cpu}" "${load_cpu}"
  if [[ "${target}" == server ]]; then
    "${loadgen[@]}" --server "${server}" --agents "${agents}" --credentials "${credentials}" \
      "${tls_client[@]}" --warm-up --duration "${seconds}" --json "$@" 2>>"${work}/loadgen.log"
  else
    "${loadgen[@]}" --server "127.0.0.1:${echo_port}" --agents "${agents}" "${echo_agents[@]}" \
      --warm-up --duration "${seconds}" --json "$@" 2>>"${work}/loadgen.log"
  fi
}
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p"; }
join() { local IFS='|'; echo "$*"; }
# What both tables' awk programs start with: f(json, name) reads a number of a run's JSON line,
# value(json, name) also knows "cpu", the microseconds of CPU per answered call of a
# measured_run (with hz, the clock ticks per second, set), median(v, n) is the median of v[1..n].
awk_lib='
  function f(json, name) {
    if (match(json, "\"" name "\":[0-9.e+-]+")) { return substr(json, RSTART + length(name) + 3, RLENGTH - length(name) - 3) + 0 }
    return 0
  }
  function value(json, name) {
    if (name != "cpu") return f(json, name)
    return f(json, "cpu_ticks") * 1e6 / hz / (f(json, "ok") > 0 ? f(json, "ok") : 1)
  }
  function median(v, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
'

# B1: interleaved pairs, the server then the echo AgentService (on the server's CPU,
# replying as many bytes), closed loop, then open loop at 70 % of the server's median peak.
# On a shared machine one run can stall; the figures are the medians of the pairs' ratios.
pairs=3
declare -a sp ep so eo

# start_echo REPLY_BYTES starts the echo on the server's CPU, replying about as many bytes.
start_echo() {
  local reply=${1%.*}
  taskset -c "${server_cpu}" ./build/agent-client/ringwarden-loadgen --echo 127.0.0.1:0 \
    --port-file "${work}/echo.port" --reply-bytes "$(( reply > 16 ? reply - 16 : 0 ))" \
    "${echo_tls[@]}" 2>>"${work}/echo.log" &
  echo_pid=$!
  # `|| true`: under `set -e` a failed kill (the echo already gone) would end the trap
  # before the cleanup, leaving the server and its cluster running.
  trap 'kill "${echo_pid}" 2>/dev/null || true; bench_cleanup' EXIT
  for _ in $(seq 1 100); do [[ -s "${work}/echo.port" ]] && break; sleep 0.1; done
  echo_port=$(cat "${work}/echo.port")
}

# with_cpu PID... -- COMMAND...: runs COMMAND (a generator run writing one JSON line per PID
# to stdout and its warm-up line to loadgen.log) and prints its lines, line i with "cpu_ticks"
# added: the CPU time (user and system, in clock ticks) PID i spent from the end of the run's
# warm-up to the run's result (before the generator closes its connections). Fails when the
# run or a PID does: it is called in $(...), where `set -e` does not reach.
with_cpu() {
  local -a pids=()
  while [[ "$1" != -- ]]; do pids+=("$1"); shift; done
  shift
  local warmed
  warmed=$(grep -c '^warm-up:' "${work}/loadgen.log" 2>/dev/null || true)
  rm -f "${work}/run.json"
  "$@" >"${work}/run.json" &
  local lg=$!
  while [[ $(grep -c '^warm-up:' "${work}/loadgen.log" 2>/dev/null || true) -le ${warmed} ]] &&
    kill -0 "${lg}" 2>/dev/null; do
    sleep 0.05
  done
  local -a t0=() t1=()
  local i
  for i in "${!pids[@]}"; do
    t0[i]=$(awk '{ print $14 + $15 }' "/proc/${pids[i]}/stat") || return 1
  done
  while [[ $(wc -l <"${work}/run.json" 2>/dev/null || echo 0) -lt ${#pids[@]} ]] &&
    kill -0 "${lg}" 2>/dev/null; do
    sleep 0.05
  done
  for i in "${!pids[@]}"; do
    t1[i]=$(awk '{ print $14 + $15 }' "/proc/${pids[i]}/stat") || return 1
  done
  wait "${lg}" || { echo "poll: a run failed (${work}/loadgen.log)" >&2; return 1; }
  [[ $(grep -c '"ok":' "${work}/run.json") == "${#pids[@]}" ]] || return 1
  for i in "${!pids[@]}"; do
    sed -n "$(( i + 1 ))s/^{/{\"cpu_ticks\":$(( t1[i] - t0[i] )),/p" "${work}/run.json"
  done
}

# measured_run TARGET PID FLAGS...: run's JSON with "cpu_ticks" of PID added (with_cpu).
measured_run() {
  local target=$1 pid=$2
  shift 2
  with_cpu "${pid}" -- run "${target}" "$@"
}

# compared_run FLAGS...: one open-loop run whose turns of 100 ms go to the server and to the
# echo (the generator's --compare-with), 2 x --seconds long so that each side gets
# --seconds of calls: runs one after the other meet different stalls of a shared machine (a
# 20 s run's p99 moved from 6 to 120 ms between consecutive runs of the same side), turns
# within one run meet the same ones. The echo gets the same requests as the server (each
# agent's credential and held statement). Prints two JSON lines, the server's then the echo's,
# each with "cpu_ticks" of its process (with_cpu).
compared_run() {
  bench_settle "${server_cpu}" "${load_cpu}"
  with_cpu "${server_pid}" "${echo_pid}" -- compared_generator "$@"
}
# shellcheck disable=SC2317  # called through with_cpu
compared_generator() {
  "${loadgen[@]}" --server "${server}" --agents "${agents}" --credentials "${credentials}" \
    --compare-with "127.0.0.1:${echo_port}" --alternate-ms 100 --warm-up \
    --duration "$(( 2 * seconds ))" --json --no-heartbeats --mode open "$@" 2>>"${work}/loadgen.log"
}
# echo_against_itself FLAGS...: the same turns with the echo on both sides, each side over its
# own connections (the polls name no held statement, so that the generator parses neither
# side's answers): what a ratio of two sides of one compared run reads when nothing differs,
# the method's own noise.
echo_against_itself() {
  bench_settle "${server_cpu}" "${load_cpu}"
  "${loadgen[@]}" --server "127.0.0.1:${echo_port}" --agents "${agents}" --no-enroll --no-hold \
    --compare-with "127.0.0.1:${echo_port}" --alternate-ms 100 --warm-up \
    --duration "$(( 2 * seconds ))" --json --no-heartbeats --mode open "$@" 2>>"${work}/loadgen.log"
}

if [[ "${bench_tls}" == 1 ]]; then
  declare -a tso teo
  for i in $(seq 1 "${pairs}"); do
    tso[i]=$(measured_run server "${server_pid}" --no-heartbeats --mode open --rate "${tls_rate}")
    [[ -n "${echo_pid:-}" ]] || start_echo "$(echo "${tso[i]}" | field mean_poll_reply_bytes)"
    teo[i]=$(measured_run echo "${echo_pid}" --no-heartbeats --mode open --rate "${tls_rate}")
    echo "B1 TLS open pair ${i}: server ${tso[i]}"
    echo "B1 TLS open pair ${i}: echo   ${teo[i]}"
  done
  awk -v so="$(join "${tso[@]}")" -v eo="$(join "${teo[@]}")" -v rate="${tls_rate}" \
    -v agents="${agents}" -v hz="$(getconf CLK_TCK)" "${awk_lib}"'
    function row(label, field, a, b,   n, i, A, B, r, va, vb, line) {
      n = split(a, A, "|"); split(b, B, "|")
      line = ""
      for (i = 1; i <= n; i++) {
        va[i] = value(A[i], field)
        vb[i] = value(B[i], field)
        r[i] = va[i] / (vb[i] > 0 ? vb[i] : 1)
        line = line sprintf(" %.0f/%.0f", va[i], vb[i])
      }
      m = median(r, n)
      printf "%-44s %11.0f %11.0f %7.2f  pairs:%s\n", label, median(va, n), median(vb, n), m, line
      return m
    }
    BEGIN {
      printf "%-44s %11s %11s %7s  %s\n", "B1 over TLS, " agents " agents, a connection each", "server", "echo", "ratio", "(medians of the pairs; each pair server/echo)"
      row("open loop at " rate "/s: p50 (us)", "p50_us", so, eo)
      q = row("open loop at " rate "/s: p99 (us)", "p99_us", so, eo)
      row("CPU per poll (us, user + system)", "cpu", so, eo)
      n = split(so, S, "|"); split(eo, E, "|")
      for (i = 1; i <= n; i++) { failed += f(S[i], "failed") + f(E[i], "failed"); missed += f(S[i], "missed") + f(E[i], "missed"); held += f(S[i], "held_current"); polls += f(S[i], "polls") }
      printf "%-44s %11.1f %%\n", "polls answered: held statement current", 100 * held / (polls > 0 ? polls : 1)
      printf "%-44s %11.0f failed, %.0f missed\n", "errors (server and echo)", failed, missed
      printf "%-44s %7s  %s\n", "open-loop p99 ratio over TLS (median)", sprintf("%.2f", q), (q <= 1.25) ? "ok (target <= 1.25)" : "OVER (target <= 1.25)"
      exit !(q <= 1.25 && failed == 0)
    }'
  exit $?
fi
for i in $(seq 1 "${pairs}"); do
  sp[i]=$(run server --no-heartbeats --mode closed --concurrency "${concurrency}")
  [[ -n "${echo_pid:-}" ]] || start_echo "$(echo "${sp[i]}" | field mean_poll_reply_bytes)"
  ep[i]=$(run echo --no-heartbeats --mode closed --concurrency "${concurrency}")
  echo "B1 closed pair ${i}: server ${sp[i]}"
  echo "B1 closed pair ${i}: echo   ${ep[i]}"
done
peaks=$(for i in $(seq 1 "${pairs}"); do echo "${sp[i]}" | field calls_per_second; done | sort -g)
server_peak_rate=$(echo "${peaks}" | sed -n "$(( (pairs + 1) / 2 ))p")
# sweep TARGET BASE WHAT SHARES...: sets `swept` to the largest polls-only open-loop rate, of
# BASE * SHARE / 100 for each share in turn, at which TARGET ("server" or "echo") missed no
# call (refused, or answered more than 1 s after it was due); 0 if it missed at the first.
sweep() {
  local target=$1 base=$2 what=$3
  shift 3
  local share r out missed
  swept=0
  for share in "$@"; do
    r=$(awk -v p="${base}" -v s="${share}" 'BEGIN { printf "%.0f", p * s / 100 }')
    out=$(run "${target}" --no-heartbeats --mode open --rate "${r}") || out=""
    missed=$(echo "${out}" | field missed)
    echo "B1 ${target} open-loop capacity step: ${r} polls/s (${share} % of ${what}): missed ${missed:-(the run failed)}; p99 $(echo "${out}" | field p99_us) us"
    [[ "${missed}" == 0 ]] || break
    swept=${r}
  done
}
# The server's open-loop capacity: the largest polls-only rate with no missed call.
sweep server "${server_peak_rate}" "the closed-loop peak" 20 25 30 35 40 45 50 55 60 65 70 80 90 100
capacity=${swept}
[[ "${capacity}" -gt 0 ]] || { echo "poll: the server missed calls at every open-loop rate" >&2; exit 1; }
rate=$(awk -v p="${capacity}" 'BEGIN { printf "%.0f", 0.7 * p }')
over_rate=$(awk -v p="${server_peak_rate}" 'BEGIN { printf "%.0f", 0.7 * p }')
light_rate=$(awk -v p="${server_peak_rate}" 'BEGIN { printf "%.0f", 0.25 * p }')
declare -a sl el sv ev aa ab
# The verdict's compared runs, each side's CPU per poll measured, each followed by one of the
# echo against itself.
for i in $(seq 1 "${verdict_pairs}"); do
  # Even runs start with the echo's turn, so that a side's position does not follow it.
  first=()
  (( i % 2 )) || first=(--anchor-first)
  out=$(compared_run --rate "${rate}" "${first[@]}")
  so[i]=$(echo "${out}" | sed -n 1p)
  eo[i]=$(echo "${out}" | sed -n 2p)
  echo "B1 open pair ${i}: server ${so[i]}"
  echo "B1 open pair ${i}: echo   ${eo[i]}"
  out=$(echo_against_itself --rate "${rate}" "${first[@]}")
  aa[i]=$(echo "${out}" | sed -n 1p)
  ab[i]=$(echo "${out}" | sed -n 2p)
  echo "B1 open pair ${i}: echo against itself ${aa[i]}"
  echo "B1 open pair ${i}:                     ${ab[i]}"
done
# The echo's open-loop capacity, from the server's up: in steps of a tenth of it, then larger.
sweep echo "${capacity}" "the server's" 100 110 120 130 140 150 170 200
echo_capacity=${swept}
for i in $(seq 1 "${pairs}"); do
  first=()
  (( i % 2 )) || first=(--anchor-first)
  out=$(compared_run --rate "${over_rate}" "${first[@]}")
  sv[i]=$(echo "${out}" | sed -n 1p)
  ev[i]=$(echo "${out}" | sed -n 2p)
  echo "B1 70 %-of-peak open pair ${i}: server ${sv[i]}"
  echo "B1 70 %-of-peak open pair ${i}: echo   ${ev[i]}"
  out=$(compared_run --rate "${light_rate}" "${first[@]}")
  sl[i]=$(echo "${out}" | sed -n 1p)
  el[i]=$(echo "${out}" | sed -n 2p)
  echo "B1 light open pair ${i}: server ${sl[i]}"
  echo "B1 light open pair ${i}: echo   ${el[i]}"
done
kill "${echo_pid}" 2>/dev/null || true

# B2: rising rates of polls and heartbeats until a run misses a call.
b2_rate=0
b2_line=""
for share in 25 30 35 40 45 50 60 75 100 125 150 175 200 250 300; do
  r=$(awk -v p="${server_peak_rate}" -v s="${share}" \
    'BEGIN { printf "%.0f", p * s / 100 }')
  out=$(run server --mode open --rate "${r}")
  missed=$(echo "${out}" | field missed)
  echo "B2 step: ${r} calls/s (${share} % of the poll peak): missed ${missed}; ${out}"
  [[ "${missed}" == 0 ]] || break
  b2_rate=${r}
  b2_line=${out}
done

status=0
awk -v sp="$(join "${sp[@]}")" -v ep="$(join "${ep[@]}")" -v so="$(join "${so[@]}")" \
  -v eo="$(join "${eo[@]}")" -v rate="${rate}" -v agents="${agents}" -v b2="${b2_rate}" \
  -v sl="$(join "${sl[@]}")" -v el="$(join "${el[@]}")" -v light="${light_rate}" \
  -v peak="${server_peak_rate}" -v capacity="${capacity}" -v over="${over_rate}" \
  -v sv="$(join "${sv[@]}")" -v ev="$(join "${ev[@]}")" -v echo_capacity="${echo_capacity}" \
  -v aa="$(join "${aa[@]}")" -v ab="$(join "${ab[@]}")" \
  -v hz="$(getconf CLK_TCK)" "${awk_lib}"'
  # row NAME FIELD A B: the pairs of runs A and B ("|"-joined JSON), their values and the median ratio
  function row(label, field, a, b, unit,   n, i, A, B, r, va, vb, line) {
    n = split(a, A, "|"); split(b, B, "|")
    line = ""
    for (i = 1; i <= n; i++) {
      va[i] = value(A[i], field); vb[i] = value(B[i], field)
      r[i] = va[i] / (vb[i] > 0 ? vb[i] : 1)
      line = line sprintf(" %.0f/%.0f", va[i], vb[i])
    }
    m = median(r, n)
    printf "%-40s %11.0f%s %11.0f%s %7.2f  pairs:%s\n", label, median(va, n), unit, median(vb, n), unit, m, line
    return m
  }
  BEGIN {
    printf "%-40s %13s %13s %7s  %s\n", "B1 poll path, " agents " distinct agents", "server", "echo", "ratio", "(medians of the pairs; each pair server/echo)"
    t = row("closed loop peak (polls/s)", "calls_per_second", sp, ep, "/s")
    row("closed loop p50 (us)", "p50_us", sp, ep, "  ")
    row("closed loop p99 (us)", "p99_us", sp, ep, "  ")
    if (echo_capacity > 0)
      printf "%-40s %11.0f/s %11.0f/s %7.2f  %s\n", "open-loop capacity (no missed call)", capacity, echo_capacity, capacity / echo_capacity, (echo_capacity >= capacity * 2) ? "(one sweep each; the echo sweep ended without a miss: its figure is a floor)" : "(one sweep each)"
    else
      printf "%-40s %11.0f/s %13s  %s\n", "open-loop capacity (no missed call)", capacity, "below it", "(the echo missed calls at the server'\''s capacity)"
    row("open loop at " rate "/s: p50 (us)", "p50_us", so, eo, "  ")
    q = row("open loop at " rate "/s: p99 (us)", "p99_us", so, eo, "  ")
    row("open loop at " rate "/s: CPU per poll (us)", "cpu", so, eo, "  ")
    noise = row("echo against itself: p99 (us)", "p99_us", aa, ab, "  ")
    row("70 % of peak, open at " over "/s: p50 (us)", "p50_us", sv, ev, "  ")
    row("70 % of peak, open at " over "/s: p99 (us)", "p99_us", sv, ev, "  ")
    row("light open loop at " light "/s: p50 (us)", "p50_us", sl, el, "  ")
    row("light open loop at " light "/s: p99 (us)", "p99_us", sl, el, "  ")
    n = split(sp, S, "|"); v = split(so, O, "|")
    held = 0; polls = 0; failed = 0; missed = 0
    split(sl, L, "|"); split(sv, V, "|")
    for (i = 1; i <= n; i++) { held += f(S[i], "held_current"); polls += f(S[i], "polls"); failed += f(S[i], "failed") + f(L[i], "failed") + f(V[i], "failed"); missed += f(L[i], "missed") }
    for (i = 1; i <= v; i++) { failed += f(O[i], "failed"); missed += f(O[i], "missed") }
    printf "%-40s %11.0f B\n", "poll reply", f(S[1], "mean_poll_reply_bytes")
    printf "%-40s %11.1f %%\n", "polls answered: held statement current", 100 * held / (polls > 0 ? polls : 1)
    printf "%-40s %11.0f failed, %.0f missed\n", "server errors (failed: all rows; missed: 70 % of capacity and light rows)", failed, missed
    printf "%-40s %7s  %s\n", "throughput ratio (median)", sprintf("%.2f", t), (t >= 0.8) ? "ok (target >= 0.8)" : "UNDER (target >= 0.8)"
    printf "%-40s %7s  %s\n", "open-loop p99 ratio at 70 % of capacity", sprintf("%.2f", q), (q <= 1.25) ? "ok (target <= 1.25)" : "OVER (target <= 1.25)"
    printf "%-40s %7s  %s\n", "the same, echo against itself", sprintf("%.2f", noise), "(no target: how far a ratio of two sides of one run strays when nothing differs)"
    hosts = b2 * 150
    printf "\n%-46s %12s %12s %8s %8s  %s\n", "B2 hosts per server vCPU (5-minute poll + heartbeat)", "calls/s", "hosts", "vs 7.5k", "target", "verdict"
    printf "%-46s %12.0f %12.0f %8.1f %8s  %s\n", "largest rate with no missed call", b2, hosts, hosts / 7500, ">=250k", (hosts >= 250000) ? "ok" : "UNDER"
    if (b2 >= peak * 3) printf "(the sweep ended without a miss: the figure is a floor)\n"
    exit !(t >= 0.8 && q <= 1.25 && hosts >= 250000)
  }' || status=$?
[[ -n "${b2_line}" ]] && echo "B2 at ${b2_rate} calls/s: ${b2_line}"
exit "${status}"
