#!/usr/bin/env bash
# B1 and B2: the poll path against an echo server, and the largest fleet one server core
# sustains, both driven by build/agent-client/ringwarden-loadgen (gRPC callback API, many
# distinct agents) pinned to the last CPU, with the server pinned to CPU 0.
#
# B1: closed loop, polls only, `--concurrency` calls in flight from --agents distinct enrolled
#     agents: the server's peak and latency, then the echo AgentService (the same gRPC
#     library, a reply of the size the server sent, no work) on the same CPU the same way.
#     Then both in open loop at the same rate (70 % of the server's peak), for p99 at equal
#     load. Targets: throughput >= 0.8x echo, p99 <= 1.25x echo.
# B2: open loop, a poll and a heartbeat per host turn (a fleet polling and heartbeating every
#     5 minutes: 2 calls per host per 300 s), rising rates of 20 s each (a quarter of the poll
#     peak up to three times it: heartbeats cost less than polls); the largest with no missed
#     call (refused, or answered more than 1 s after it was due) gives hosts per
#     server vCPU, against FleetDM's published 7,500. Target: >= 250,000.
#
#   ./bench/poll.sh [--agents 100000] [--seconds 20]
set -euo pipefail
cd "$(dirname "$0")/.."
agents=100000
seconds=20
concurrency=256
while [[ $# -gt 0 ]]; do
  case "$1" in
    --agents) agents=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "poll: unknown option $1" >&2; exit 2 ;;
  esac
done
cpus=$(nproc)
[[ "${cpus}" -ge 2 ]] || { echo "poll: needs 2 CPUs (server on one, load on another)" >&2; exit 2; }
load_cpu=$((cpus - 1))
server_cpu=0
source bench/lib.sh
loadgen=(taskset -c "${load_cpu}" ./build/agent-client/ringwarden-loadgen)
# The server's default poll interval (60 s) lets each agent 10 calls a minute; the load
# spreads over --agents agents, so the limit is not what is measured.
bench_start_server poll-bench --max-tracked-agents 1000000

echo "machine: ${cpus} cores, $(uname -sr); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "server on CPU ${server_cpu}, load generator on CPU ${load_cpu}, PostgreSQL unpinned"
credentials="${work}/credentials"
start=$(date +%s)
"${loadgen[@]}" --server "${server}" --agents "${agents}" --token "${enroll}" \
  --enroll-concurrency 64 --save-credentials "${credentials}"
echo "enrolled ${agents} agents in $(( $(date +%s) - start )) s (one transaction each)"

# run TARGET FLAGS... prints the generator's JSON result; TARGET is "server" or "echo". Every
# run starts with each agent polling once (--warm-up, not measured), so that each holds a
# signed statement and names it in its polls, as a fleet in its steady state does: the server
# then signs only where an answer changed or a statement passed half its lifetime.
run() {
  local target=$1
  shift
  if [[ "${target}" == server ]]; then
    "${loadgen[@]}" --server "${server}" --agents "${agents}" --credentials "${credentials}" \
      --warm-up --duration "${seconds}" --json "$@" 2>>"${work}/loadgen.log"
  else
    "${loadgen[@]}" --server "127.0.0.1:${echo_port}" --agents "${agents}" --no-enroll \
      --warm-up --duration "${seconds}" --json "$@" 2>>"${work}/loadgen.log"
  fi
}
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p"; }

# B1, the server.
server_peak=$(run server --no-heartbeats --mode closed --concurrency "${concurrency}")
reply=$(echo "${server_peak}" | field mean_poll_reply_bytes)
reply=${reply%.*}
# B1, the echo AgentService on the server's CPU, replying as many bytes.
taskset -c "${server_cpu}" ./build/agent-client/ringwarden-loadgen --echo 127.0.0.1:0 \
  --port-file "${work}/echo.port" --reply-bytes "$(( reply > 16 ? reply - 16 : 0 ))" \
  2>>"${work}/echo.log" &
echo_pid=$!
trap 'kill "${echo_pid}" 2>/dev/null; bench_cleanup' EXIT
for _ in $(seq 1 100); do [[ -s "${work}/echo.port" ]] && break; sleep 0.1; done
echo_port=$(cat "${work}/echo.port")
echo_peak=$(run echo --no-heartbeats --mode closed --concurrency "${concurrency}")
rate=$(awk -v p="$(echo "${server_peak}" | field calls_per_second)" 'BEGIN { printf "%.0f", 0.7 * p }')
echo_open=$(run echo --no-heartbeats --mode open --rate "${rate}")
kill "${echo_pid}" 2>/dev/null || true
server_open=$(run server --no-heartbeats --mode open --rate "${rate}")

# B2: rising rates of polls and heartbeats until a run misses a call.
b2_rate=0
b2_line=""
for share in 25 50 75 100 125 150 175 200 250 300; do
  r=$(awk -v p="$(echo "${server_peak}" | field calls_per_second)" -v s="${share}" \
    'BEGIN { printf "%.0f", p * s / 100 }')
  out=$(run server --mode open --rate "${r}")
  missed=$(echo "${out}" | field missed)
  echo "B2 step: ${r} calls/s (${share} % of the poll peak): missed ${missed}; ${out}"
  [[ "${missed}" == 0 ]] || break
  b2_rate=${r}
  b2_line=${out}
done

status=0
awk -v sp="${server_peak}" -v ep="${echo_peak}" -v so="${server_open}" -v eo="${echo_open}" \
  -v rate="${rate}" -v reply="${reply}" -v agents="${agents}" -v b2="${b2_rate}" '
  function f(json, name,   m) {
    if (match(json, "\"" name "\":[0-9.e+-]+")) { return substr(json, RSTART + length(name) + 3, RLENGTH - length(name) - 3) + 0 }
    return 0
  }
  BEGIN {
    printf "%-46s %12s %12s %8s %8s  %s\n", "B1 poll path, " agents " distinct agents", "server", "echo", "ratio", "target", "verdict"
    t = f(sp, "calls_per_second") / f(ep, "calls_per_second")
    printf "%-46s %10.0f/s %10.0f/s %8.2f %8s  %s\n", "closed loop peak (polls/s)", f(sp, "calls_per_second"), f(ep, "calls_per_second"), t, ">=0.8", (t >= 0.8) ? "ok" : "UNDER"
    printf "%-46s %9.0f us %9.0f us %8.2f %8s  %s\n", "closed loop p50", f(sp, "p50_us"), f(ep, "p50_us"), f(sp, "p50_us") / f(ep, "p50_us"), "-", "measured"
    printf "%-46s %9.0f us %9.0f us %8.2f %8s  %s\n", "closed loop p99", f(sp, "p99_us"), f(ep, "p99_us"), f(sp, "p99_us") / f(ep, "p99_us"), "-", "measured"
    q = f(so, "p99_us") / f(eo, "p99_us")
    printf "%-46s %9.0f us %9.0f us %8.2f %8s  %s\n", "open loop at " rate "/s: p50", f(so, "p50_us"), f(eo, "p50_us"), f(so, "p50_us") / f(eo, "p50_us"), "-", "measured"
    printf "%-46s %9.0f us %9.0f us %8.2f %8s  %s\n", "open loop at " rate "/s: p99", f(so, "p99_us"), f(eo, "p99_us"), q, "<=1.25", (q <= 1.25) ? "ok" : "OVER"
    printf "%-46s %10.0f B %10.0f B\n", "poll reply", f(sp, "mean_poll_reply_bytes"), f(ep, "mean_poll_reply_bytes")
    printf "%-46s %9.1f %%\n", "polls answered: held statement current", 100 * f(sp, "held_current") / (f(sp, "polls") > 0 ? f(sp, "polls") : 1)
    printf "%-46s %8.0f missed, %.0f failed\n", "server errors (closed, open)", f(sp, "failed") + f(so, "missed"), f(sp, "failed")
    hosts = b2 * 150
    printf "\n%-46s %12s %12s %8s %8s  %s\n", "B2 hosts per server vCPU (5-minute poll + heartbeat)", "calls/s", "hosts", "vs 7.5k", "target", "verdict"
    printf "%-46s %12.0f %12.0f %8.1f %8s  %s\n", "largest rate with no missed call", b2, hosts, hosts / 7500, ">=250k", (hosts >= 250000) ? "ok" : "UNDER"
    if (b2 >= f(sp, "calls_per_second") * 3) printf "(the sweep ended without a miss: the figure is a floor)\n"
    exit !(t >= 0.8 && q <= 1.25 && hosts >= 250000)
  }' || status=$?
[[ -n "${b2_line}" ]] && echo "B2 at ${b2_rate} calls/s: ${b2_line}"
exit "${status}"
