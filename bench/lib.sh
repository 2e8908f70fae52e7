# bench/lib.sh: a throwaway PostgreSQL and a real ringwarden-server for the
# benchmarks that drive one. Source it from the repository root, then call
#   bench_start_server NAME [SERVER FLAGS...]
# which sets the variables below; bench_stop_server and bench_run_server FLAGS...
# restart it on the same database, and bench_settle waits for a quiet machine. It sets:
#   work    a temporary directory, removed on exit with the cluster and the server
#   db      the server's database (libpq conninfo)
#   server  host:port of the server (plaintext, --insecure, on loopback; with bench_tls=1 set
#           before bench_start_server: TLS with a throwaway PKI made by deploy/tls.sh in
#           ${work}/tls, agents identified by the client certificates the server issues)
#   enroll  an enrollment token for 100,000 agents
root=$(pwd)
work=$(mktemp -d /tmp/ringwarden-bench.XXXXXX)
server_pid=""
bench_cleanup() {
  # Each step may fail (the server already gone, its exit status a signal's) without ending
  # the cleanup early under `set -e`.
  if [[ -n "${server_pid}" ]]; then
    kill "${server_pid}" 2>/dev/null || true
    wait "${server_pid}" 2>/dev/null || true
  fi
  "${root}/deploy/pg.sh" stop "${work}/pg" >/dev/null 2>&1 || true
  rm -rf "${work}"
}
trap bench_cleanup EXIT

bench_start_server() {
  local name=$1
  shift
  local port=$((56500 + RANDOM % 400))
  local admin_db
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
  local token
  token=$(./build/server/ringwarden-server bootstrap-admin --database "${db}" --name bench \
    --ttl 1h 2>/dev/null)
  local ringctl_tls=(--insecure)
  if [[ "${bench_tls:-0}" == 1 ]]; then
    ./deploy/tls.sh "${work}/tls" >/dev/null
    ringctl_tls=(--ca "${work}/tls/server-ca.crt")
  fi
  bench_run_server "$@"
  enroll=$(RINGWARDEN_TOKEN="${token}" ./build/cli/ringctl --server "${server}" "${ringctl_tls[@]}" \
    enroll-token create --max-uses 100000 --ttl 1h --description "${name}" -o json |
    grep -o '"token": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
  [[ -n "${enroll}" ]] || { echo "${name}: no enrollment token" >&2; return 1; }
}

# bench_run_server starts ringwarden-server on ${db} with FLAGS and waits for its port; with
# server_cpu set, pinned to that CPU.
bench_run_server() {
  rm -f "${work}/port"
  local transport=(--insecure)
  if [[ "${bench_tls:-0}" == 1 ]]; then
    transport=(--tls-cert "${work}/tls/server.crt" --tls-key "${work}/tls/server.key"
      --client-ca "${work}/tls/agent-ca.crt" --agent-ca-key "${work}/tls/agent-ca.key")
  fi
  ${server_cpu:+taskset -c "${server_cpu}"} ./build/server/ringwarden-server --database "${db}" --listen 127.0.0.1:0 \
    --port-file "${work}/port" --root "${work}/root.json" --server-key "${work}/server.pem" \
    "${transport[@]}" --metrics-listen "${metrics_listen:-}" "$@" 2>>"${work}/server.log" &
  server_pid=$!
  for _ in $(seq 1 600); do
    [[ -s "${work}/port" ]] && break
    sleep 0.1
  done
  [[ -s "${work}/port" ]] || { cat "${work}/server.log" >&2; return 1; }
  server="127.0.0.1:$(cat "${work}/port")"
}

bench_stop_server() {
  kill "${server_pid}" && wait "${server_pid}" 2>/dev/null || true
  server_pid=""
}

# bench_settle CPU... waits (at most 60 s) until each of the CPUs named is at least 90 % idle
# over a second: a run that left work behind (an overloaded server still answering or
# cancelling calls, PostgreSQL vacuuming after the enrollment) would otherwise slow the next
# run's first seconds. Returns 0 either way.
bench_settle() {
  local start quiet i idle0 total0 idle1 total1
  local -a before after
  start=$(date +%s)
  while (( $(date +%s) - start < 60 )); do
    mapfile -t before < <(settle_sample "$@")
    sleep 1
    mapfile -t after < <(settle_sample "$@")
    quiet=1
    for i in "${!before[@]}"; do
      read -r idle0 total0 <<<"${before[i]}"
      read -r idle1 total1 <<<"${after[i]}"
      (( total1 > total0 && (idle1 - idle0) * 10 >= (total1 - total0) * 9 )) || quiet=0
    done
    (( quiet )) && return 0
  done
  echo "bench: CPU $* still busy after 60 s; going on" >&2
  return 0
}

# settle_sample CPU... prints "idle total" (clock ticks since boot) of each CPU named.
settle_sample() {
  local cpu
  for cpu in "$@"; do
    awk -v name="cpu${cpu}" '$1 == name { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
  done
}
