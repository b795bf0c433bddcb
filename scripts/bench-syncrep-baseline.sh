#!/usr/bin/env bash
# The floor under issue 4's quorum-commit target on this machine: PostgreSQL's own synchronous
# replication, with none of Meridian's replication in the way. A primary and one physical
# standby (clusters syncrep-primary / syncrep-standby on 127.0.0.1:55480-55481, under .run/), the
# standby's WAL stream through wan-proxy (control 55482, link 55483) with the one-way delay of
# us-east <-> eu-west (20 ms, BENCH_DELAY_MS), synchronous_standby_names naming the standby.
# Fashion-MNIST's 60,000 vectors in a table with the same hnsw index as the consistency benchmark,
# then the consistency benchmark's 4-client write runs (consistency-bench writes: BENCH_CLIENTS
# clients, one row per transaction, BEGIN / INSERT / COMMIT with COMMIT timed on its own, for
# BENCH_SECONDS after 2 s untimed): synchronous_commit = on (a commit waits for the standby's
# flush), then = local at the same rate. The standby only replays WAL (no index insert of its
# own, no decoding, no signatures), so this is a floor for any design on synchronous replication
# on this machine.
# Run as root, with nothing else running. MERIDIAN_SKIP_BUILD=1 skips the dependency install and
# the build. Report: .run/bench-syncrep/results.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out="$root/.run/bench-syncrep"
primary=55480 standby=55481 control=55482 link=55483
delay=${BENCH_DELAY_MS:-20} clients=${BENCH_CLIENTS:-4} seconds=${BENCH_SECONDS:-60}
if [ "${MERIDIAN_SKIP_BUILD:-0}" != 1 ]; then
  scripts/install-deps.sh
  flock /tmp/meridian-build.lock make -j2 install >/dev/null
fi
bindir=$(pg_config --bindir)
proxy_bin="$root/build/wan-proxy"
[ -x "$proxy_bin" ] || flock /tmp/meridian-build.lock cmake --build build -j2 --target wan-proxy >/dev/null
make -s -C bench/consistency BUILD="$root/build/bench"

as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }
sql() { psql -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p "$1" -U postgres -d postgres "${@:2}"; }
proxy_pid=
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null
  scripts/cluster.sh stop syncrep-standby >/dev/null 2>&1 || true
  scripts/cluster.sh stop syncrep-primary >/dev/null 2>&1 || true
}
trap cleanup EXIT

rm -rf "$out"; mkdir -p "$out"; chmod 777 "$out"
scripts/cluster.sh destroy syncrep-standby >/dev/null 2>&1 || true
scripts/cluster.sh destroy syncrep-primary >/dev/null 2>&1 || true
scripts/cluster.sh start syncrep-primary "$primary" 'wal_level = replica' 'max_wal_senders = 4' \
  'shared_buffers = 1GB' 'max_wal_size = 8GB' 'checkpoint_timeout = 30min' 'maintenance_work_mem = 1GB' >/dev/null
echo "host replication postgres 127.0.0.1/32 trust" | as_postgres tee -a "$root/.run/syncrep-primary/data/pg_hba.conf" >/dev/null
sql "$primary" -c "SELECT pg_reload_conf()" >/dev/null
sql "$primary" -c "CREATE EXTENSION meridian" \
  -c "CREATE TABLE items (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), n int NOT NULL, embedding vector(784) NOT NULL)" \
  -c "ALTER TABLE items ALTER COLUMN embedding SET STORAGE PLAIN"
build/bench/consistency-bench load --conninfo "host=127.0.0.1 port=$primary dbname=postgres user=postgres"
echo "CREATE INDEX (hnsw, m 16, ef_construction 64)"
sql "$primary" -c "CREATE INDEX ON items USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 64)" \
  -c "VACUUM (ANALYZE) items" -c "CHECKPOINT"

# The standby: a base backup, streaming through the proxy.
"$proxy_bin" --control "$control" --link "standby=$link:$primary:$delay" 2>>"$out/wan-proxy.log" &
proxy_pid=$!
sleep 0.5
sdata="$root/.run/syncrep-standby/data"
install -d -o postgres -g postgres -m 700 "$sdata"
as_postgres "$bindir/pg_basebackup" -h 127.0.0.1 -p "$primary" -U postgres -D "$sdata" -X stream --checkpoint=fast
{
  echo "port = $standby"
  echo "unix_socket_directories = '$root/.run/syncrep-standby'"
  echo "primary_conninfo = 'host=127.0.0.1 port=$link user=postgres application_name=standby'"
} | as_postgres tee -a "$sdata/postgresql.conf" >/dev/null
as_postgres touch "$sdata/standby.signal"
chown postgres:postgres "$root/.run/syncrep-standby"
as_postgres "$bindir/pg_ctl" -D "$sdata" -l "$root/.run/syncrep-standby/server.log" -w start >/dev/null
sql "$primary" -c "ALTER SYSTEM SET synchronous_standby_names = 'standby'" -c "SELECT pg_reload_conf()" >/dev/null
synchronous() { [ "$(sql "$primary" -c "SELECT sync_state FROM pg_stat_replication")" = sync ]; }
for _ in $(seq 100); do synchronous && break; sleep 0.2; done
synchronous || { echo "the standby is not synchronous" >&2; exit 1; }
sql "$primary" -c "CREATE EXTENSION pg_prewarm" \
  -c "SELECT pg_prewarm(c) FROM unnest(ARRAY['items', 'items_embedding_idx', 'items_pkey']::regclass[]) c" >/dev/null

{
  echo "PostgreSQL physical synchronous replication: one standby $delay ms away each way (wan-proxy);"
  echo "$(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo
  build/bench/consistency-bench writes --conninfo "host=127.0.0.1 port=$primary dbname=postgres user=postgres" \
    --out "$out" --latency-writers "$clients" --latency-seconds "$seconds"
} >"$out/results.md"
cat "$out/results.md"
echo "results: $out/results.md"
