#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for the quickstart and the tests.
#
#   deploy/pg.sh start DIR PORT   initdb into DIR (if new) and start on 127.0.0.1:PORT
#                                 and a Unix socket in DIR; prints the conninfo
#   deploy/pg.sh stop DIR         stop it (the data stays until DIR is removed)
#
# PostgreSQL refuses to run as root, so as root the cluster runs as the
# `postgres` user (created by the Debian package).
set -euo pipefail

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [[ -z "${PGBIN}" ]]; then
  echo "pg.sh: PostgreSQL server binaries not found; apt-get install postgresql" >&2
  exit 1
fi

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cmd=${1:-}
dir=${2:-}
if [[ -z "${cmd}" || -z "${dir}" ]]; then
  echo "usage: pg.sh start DIR PORT | pg.sh stop DIR" >&2
  exit 2
fi
mkdir -p "${dir}"
dir=$(cd "${dir}" && pwd)

cd /  # the postgres user may not be able to enter the caller's directory
case "${cmd}" in
  start)
    port=${3:?port required}
    if [[ $(id -u) -eq 0 ]]; then
      chown postgres:postgres "${dir}"
      # The postgres user must be able to reach DIR.
      p="${dir}"
      while [[ "${p}" != "/" ]]; do p=$(dirname "${p}"); chmod o+x "${p}" 2>/dev/null || true; done
    fi
    if [[ ! -f "${dir}/data/PG_VERSION" ]]; then
      as_owner "${PGBIN}/initdb" -D "${dir}/data" -U postgres -A trust --no-sync \
        -E UTF8 --locale=C.UTF-8 >"${dir}/initdb.log" 2>&1 ||
        { cat "${dir}/initdb.log" >&2; exit 1; }
    fi
    as_owner "${PGBIN}/pg_ctl" -D "${dir}/data" -l "${dir}/postgres.log" -w -t 60 \
      -o "-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
      start >/dev/null || { tail -n 20 "${dir}/postgres.log" >&2; exit 1; }
    echo "host=127.0.0.1 port=${port} user=postgres dbname=postgres"
    ;;
  stop)
    if [[ -f "${dir}/data/postmaster.pid" ]]; then
      as_owner "${PGBIN}/pg_ctl" -D "${dir}/data" -m fast -w stop >/dev/null || true
    fi
    ;;
  *)
    echo "usage: pg.sh start DIR PORT | pg.sh stop DIR" >&2
    exit 2
    ;;
esac
