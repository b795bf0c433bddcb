#!/usr/bin/env bash
# Throwaway PostgreSQL 15 clusters for the demo, tests and benchmarks.
# They run as the postgres OS user (PostgreSQL refuses root), keep their data in .run/<name>
# (git-ignored) and listen on 127.0.0.1 only, with their unix socket in .run/<name> too.
#
#   scripts/cluster.sh start NAME PORT ['setting = value' ...]   idempotent; extra postgresql.conf lines
#   scripts/cluster.sh stop NAME                                  idempotent
#   scripts/cluster.sh destroy NAME                               stop and delete the data
#   scripts/cluster.sh env NAME                                   prints PGHOST/PGPORT/PGUSER exports
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
run="$root/.run"
bindir=$(/usr/bin/pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$bindir/initdb" ] || bindir=/usr/lib/postgresql/15/bin

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"
  else sudo -u postgres -- "$@"
  fi
}

cmd=${1:-}; name=${2:-}
[ -n "$cmd" ] && [ -n "$name" ] || { echo "usage: $0 start|stop|destroy|env NAME [PORT [settings...]]" >&2; exit 2; }
data="$run/$name/data"
sock="$run/$name"

case "$cmd" in
start)
  port=${3:?port required}; shift 3
  mkdir -p "$run"; chmod 755 "$run"
  if [ ! -d "$data" ]; then
    mkdir -p "$sock"; chown postgres:postgres "$sock" 2>/dev/null || true
    as_postgres "$bindir/initdb" -D "$data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $port"
      echo "unix_socket_directories = '$sock'"
      echo "logging_collector = off"
      echo "fsync = on"
      for s in "$@"; do echo "$s"; done
    } | as_postgres tee -a "$data/postgresql.conf" >/dev/null
  fi
  if ! as_postgres "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_postgres "$bindir/pg_ctl" -D "$data" -l "$run/$name/server.log" -w -t 60 start >/dev/null
  fi
  ;;
stop)
  if [ -d "$data" ] && as_postgres "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_postgres "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  fi
  ;;
destroy)
  "$0" stop "$name"
  rm -rf "${run:?}/$name"
  ;;
env)
  port=$(sed -n "s/^port = \([0-9]*\)$/\1/p" "$data/postgresql.conf" | tail -1)
  echo "export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres"
  ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
