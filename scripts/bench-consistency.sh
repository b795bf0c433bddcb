#!/usr/bin/env bash
# make bench-consistency: the consistency benchmark of issue 4 §5.
# Three regions on this machine (clusters cons-us-east/eu-west/ap-south on 127.0.0.1:55470-55472,
# under .run/), every inter-region connection through one wan-proxy (control port 55473, one link
# per ordered pair on 55474-55479) with one-way delays of 20 ms between us-east and eu-west and
# 40 ms on the pairs with ap-south. Fashion-MNIST's 60,000 training vectors are loaded in us-east
# and replicated (meridian-replicator in every region), then an hnsw index is built in every
# region. bench/consistency/consistency_bench.cpp measures, in us-east and ap-south: k-NN read
# latency (avg, p99) at ef_search giving recall@10 >= 0.99 with eventual (local), bounded
# (200 ms) and strong consistency, quorum-write commit latency (4 clients, w = 2 of 3) beside
# local commits at the same rate, quorum-write throughput (16 clients), and the error rate on
# each side while ap-south is cut off for 5 s. Report: .run/bench-consistency/results.md.
# Environment: MERIDIAN_SKIP_BUILD=1 (no dependency install/build), BENCH_WRITERS (16),
# BENCH_LATENCY_WRITERS (4), BENCH_LATENCY_SECONDS (60: the 4-client runs), BENCH_WRITE_SECONDS
# (20: the 16-client run), BENCH_QUERIES (1000), BENCH_EF (auto), BENCH_KEEP=1 (leave the clusters
# running at the end), BENCH_REUSE=1 (measure again on the clusters a previous run loaded and
# indexed: no load, no index build), BENCH_AB="variant ..." (compare the commit latency of
# variants instead: see ab_compare below).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out="$root/.run/bench-consistency"
tool="$root/build/bench/consistency-bench"
proxy_bin="$root/build/wan-proxy"
regions=(us-east eu-west ap-south)
declare -A port=([us-east]=55470 [eu-west]=55471 [ap-south]=55472)
control=55473
declare -A link_port=([us-east->eu-west]=55474 [us-east->ap-south]=55475 [eu-west->us-east]=55476
                      [eu-west->ap-south]=55477 [ap-south->us-east]=55478 [ap-south->eu-west]=55479)
delay() { case "$1" in *ap-south*) echo 40 ;; *) echo 20 ;; esac; }

if [ "${MERIDIAN_SKIP_BUILD:-0}" != 1 ]; then
  scripts/install-deps.sh
  flock /tmp/meridian-build.lock make -j2 install >/dev/null
  flock /tmp/meridian-build.lock cmake --build build -j2 --target wan-proxy >/dev/null
fi
[ -x "$proxy_bin" ] || flock /tmp/meridian-build.lock cmake --build build -j2 --target wan-proxy >/dev/null
make -s -C bench/consistency BUILD="$root/build/bench"
replicator=$(pg_config --bindir)/meridian-replicator
[ -x "$replicator" ] || replicator="$root/build/replicator/meridian-replicator"
reuse=${BENCH_REUSE:-0}
if [ "$reuse" = 1 ] && [ -d .run/cons-ap-south/data ] && [ -s "$out/ap-south.pub" ]; then
  rm -f "$out/results.md"
else
  reuse=0
  rm -rf "$out"; mkdir -p "$out"; chmod 755 "$out"
  install -d -o postgres -g postgres -m 700 "$out/keys"
fi

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}
conninfo() { echo "host=127.0.0.1 port=${port[$1]} dbname=postgres user=postgres"; }
sql() { local r=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -d "$(conninfo "$r")" "$@"; }

declare -A pid
proxy_pid=
stop_replicators() {
  for r in "${regions[@]}"; do
    [ -n "${pid[$r]:-}" ] && kill -TERM "${pid[$r]}" 2>/dev/null && while kill -0 "${pid[$r]}" 2>/dev/null; do sleep 0.1; done
    pid[$r]=
  done
}
cleanup() {
  stop_replicators
  [ -n "$proxy_pid" ] && kill -TERM "$proxy_pid" 2>/dev/null
  wait 2>/dev/null || true
  if [ "${BENCH_KEEP:-0}" != 1 ]; then
    for r in "${regions[@]}"; do scripts/cluster.sh stop "cons-$r" >/dev/null 2>&1 || true; done
  fi
}
trap cleanup EXIT

# --- the servers
for r in "${regions[@]}"; do
  if [ "$reuse" = 1 ]; then scripts/cluster.sh start "cons-$r" "${port[$r]}" >/dev/null; continue; fi
  scripts/cluster.sh destroy "cons-$r" >/dev/null 2>&1 || true
  key="$out/keys/$r.key"
  as_postgres "$replicator" keygen "$key" >"$out/$r.pub"
  scripts/cluster.sh start "cons-$r" "${port[$r]}" 'wal_level = logical' 'track_commit_timestamp = on' \
    'max_replication_slots = 10' 'max_wal_senders = 10' "shared_preload_libraries = 'meridian'" \
    "output_plugin_libraries = 'pgoutput, test_decoding, meridian'" 'shared_buffers = 1GB' 'max_wal_size = 8GB' \
    'checkpoint_timeout = 30min' 'maintenance_work_mem = 1GB' 'max_connections = 100' \
    "meridian.signing_key_file = '$key'" >/dev/null
done

# --- the simulated WAN: link "from->to" is how region `from` reaches region `to`
links=()
for l in "${!link_port[@]}"; do
  to=${l#*->}
  links+=(--link "$l=${link_port[$l]}:${port[$to]}:$(delay "$l")")
done
"$proxy_bin" --control "$control" "${links[@]}" 2>>"$out/wan-proxy.log" &
proxy_pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$control) 2>/dev/null && break; sleep 0.1; done

# --- catalogs: each region registers its peers through its own links
for r in "${regions[@]}"; do
  [ "$reuse" = 1 ] && break
  {
    echo "CREATE EXTENSION meridian;"
    for o in "${regions[@]}"; do
      if [ "$o" = "$r" ]; then ci=$(conninfo "$o"); else ci="host=127.0.0.1 port=${link_port[$r->$o]} dbname=postgres user=postgres"; fi
      echo "SELECT meridian.create_region('$o', '$ci', decode('$(cat "$out/$o.pub")', 'hex'));"
    done
    echo "SELECT meridian.set_local_region('$r');"
    echo "CREATE TABLE items (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), n int NOT NULL, embedding vector(784) NOT NULL);"
    echo "ALTER TABLE items ALTER COLUMN embedding SET STORAGE PLAIN;"
    echo "SELECT meridian.replicate_table('items');"
  } | sql "$r" >/dev/null
done

# --- replicators (arguments: more options for every one, e.g. --heartbeat-interval 100)
start_replicators() {
  for r in "${regions[@]}"; do
    rm -f "$out/keys/replicator-$r.pid"  # a reused run's file names the previous, finished replicator
    as_postgres sh -c 'echo $$ > "$1"; shift; exec "$@"' sh "$out/keys/replicator-$r.pid" "$replicator" \
      --local "$(conninfo "$r")" "$@" >>"$out/replicator-$r.log" 2>&1 &
    for _ in $(seq 50); do [ -s "$out/keys/replicator-$r.pid" ] && break; sleep 0.1; done
    pid[$r]=$(cat "$out/keys/replicator-$r.pid")
  done
  # Streams up: both peers connected in every region, seen five times in a row (a reused cluster
  # still shows the previous run's state until the new replicator publishes its own).
  for r in "${regions[@]}"; do
    ok=0
    for _ in $(seq 300); do
      if [ "$(sql "$r" -c "SELECT count(*) FROM meridian.region_status WHERE connected")" = 2 ]; then
        ok=$((ok + 1)); [ $ok -ge 5 ] && break
      else ok=0; fi
      sleep 0.3
    done
    [ $ok -ge 5 ] || { echo "$r: streams did not connect (see $out/replicator-$r.log)" >&2; exit 1; }
  done
}
start_replicators

# --- load in us-east, replicated to the others
[ "$reuse" = 1 ] || { echo "loading Fashion-MNIST (60,000 x 784) in us-east"; "$tool" load --conninfo "$(conninfo us-east)"; }
for r in "${regions[@]}"; do
  [ "$reuse" = 1 ] && break
  for _ in $(seq 1200); do [ "$(sql "$r" -c "SELECT count(*) FROM items")" = 60000 ] && break; sleep 0.5; done
  echo "$r: $(sql "$r" -c "SELECT count(*) FROM items") rows"
done
for r in "${regions[@]}"; do
  [ "$reuse" = 1 ] && break
  echo "$r: CREATE INDEX (hnsw, m 16, ef_construction 64)"
  sql "$r" -c "CREATE INDEX items_embedding ON items USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 64)" \
           -c "VACUUM (ANALYZE) items" -c "CHECKPOINT"
done
# A reused run starts like a fresh one, on the 60,000 loaded rows: the rows earlier runs wrote
# (n >= 1,000,000) deleted in us-east, in batches, the deletes replicated like any change; then
# every region vacuumed and analyzed, so autovacuum does not pick this run to do it (it did once,
# in the middle of the writes). Left in place, they grew the table and index past shared_buffers.
if [ "$reuse" = 1 ]; then
  while :; do  # (a failing DELETE stops the script instead of being retried forever)
    deleted=$(sql us-east -c "SET synchronous_commit = local" -c "WITH d AS (DELETE FROM items WHERE id IN
                (SELECT id FROM items WHERE n >= 1000000 LIMIT 20000) RETURNING 1) SELECT count(*) FROM d") || exit 1
    [ "$deleted" = 0 ] && break
  done
  for r in "${regions[@]}"; do
    for _ in $(seq 1200); do [ "$(sql "$r" -c "SELECT count(*) FROM items")" = 60000 ] && break; sleep 0.5; done
    rows=$(sql "$r" -c "SELECT count(*) FROM items")
    echo "$r: $rows rows"
    [ "$rows" = 60000 ] || { echo "$r: the deletes did not replicate within 10 min (see $out/replicator-*.log)" >&2; exit 1; }
    sql "$r" -c "VACUUM (ANALYZE) items" -c "CHECKPOINT"
  done
fi
# Every region starts warm, as a serving region is: the table and its indexes in shared_buffers
# (1 GB; 425 MB of them), so no timed read or apply waits for a page read from disk.
prewarm() {
  for r in "${regions[@]}"; do
    sql "$r" -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
             -c "SELECT pg_prewarm(c) FROM unnest(ARRAY['items', 'items_embedding', 'items_pkey']::regclass[]) c" >/dev/null
  done
}
prewarm
# The replicators keep synchronous_standby_names (ANY w-1 of the peers) in every region.
for r in "${regions[@]}"; do
  for _ in $(seq 100); do sql "$r" -c "SHOW synchronous_standby_names" | grep -q '^ANY' && break; sleep 0.1; done
  echo "$r: synchronous_standby_names = $(sql "$r" -c "SHOW synchronous_standby_names"), write quorum $(sql "$r" -c "SELECT meridian.write_quorum()")"
done

minority_links=$(printf '%s\n' "${!link_port[@]}" | grep ap-south | paste -sd, -)
region_args="us-east=$(conninfo us-east);eu-west=$(conninfo eu-west);ap-south=$(conninfo ap-south)"
# --- BENCH_AB="base no-fsync heartbeat-100 ...": instead of the benchmark, the 4-client commit
# latency of one region (BENCH_AB_REGION, us-east) under each variant, interleaved for
# BENCH_AB_ROUNDS (2) rounds so that the machine's drift hits every variant alike. Variants:
#   base          the servers and replicators as above
#   heartbeat-N   the replicators with --heartbeat-interval N (ms)
#   no-fsync      a diagnosis, not a configuration: the servers restarted with libeatmydata
#                 preloaded (fsync and fdatasync return at once, nothing is durable), to show what
#                 the disk's WAL flushes add
# Report: .run/bench-consistency/ab.md (the tool's log: ab.log).
ab_compare() {
  local region=${BENCH_AB_REGION:-us-east} eatmydata= report="$out/ab.md" variant
  for variant in $BENCH_AB; do  # every name checked before the first (long) run
    case $variant in
      base | heartbeat-[0-9]*) ;;
      no-fsync)
        dpkg -s libeatmydata1 >/dev/null 2>&1 || apt-get install -y -qq eatmydata >/dev/null
        eatmydata=$(dpkg -L libeatmydata1 | grep '/libeatmydata\.so$' | head -n 1)
        [ -n "$eatmydata" ] || { echo "BENCH_AB: libeatmydata.so not found" >&2; exit 1; } ;;
      *) echo "BENCH_AB: unknown variant $variant (base, heartbeat-N, no-fsync)" >&2; exit 1 ;;
    esac
  done
  {
    echo "| round | variant | region | commit | clients | writes/s | COMMIT avg / p99 ms | INSERT + COMMIT avg / p99 ms | failed writes |" \
         "disk stalls >= 20 ms | commits during a stall | COMMIT p99 of the others ms | wan-proxy lateness p99 / max ms |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  } >"$report"
  for round in $(seq "${BENCH_AB_ROUNDS:-2}"); do
    for variant in $BENCH_AB; do
      local preload= args=()
      case $variant in
        no-fsync) preload=$eatmydata ;;
        heartbeat-*) args=(--heartbeat-interval "${variant#heartbeat-}") ;;
      esac
      stop_replicators
      for r in "${regions[@]}"; do
        scripts/cluster.sh stop "cons-$r" >/dev/null
        LD_PRELOAD=$preload scripts/cluster.sh start "cons-$r" "${port[$r]}" >/dev/null
      done
      start_replicators "${args[@]}"
      prewarm
      echo "round $round: $variant" >&2
      "$tool" measure --out "$out" --region "$region_args" --read-regions "$region" --control "$control" --queries 20 \
        --ef "${BENCH_EF:-40}" --writers 0 --latency-writers "${BENCH_LATENCY_WRITERS:-4}" \
        --latency-seconds "${BENCH_LATENCY_SECONDS:-60}" 2>>"$out/ab.log" >"$out/ab-run.md"
      grep -E "^\| $region \| (quorum|local)" "$out/ab-run.md" | sed "s/^/| $round | $variant /" >>"$report"
    done
  done
  stop_replicators  # and the servers as they were, without a preload
  for r in "${regions[@]}"; do scripts/cluster.sh stop "cons-$r" >/dev/null; scripts/cluster.sh start "cons-$r" "${port[$r]}" >/dev/null; done
  cat "$report"
  echo "results: $report"
}
results="$out/results.md"
if [ -n "${BENCH_AB:-}" ]; then ab_compare; exit 0; fi
{
  echo "Consistency benchmark: 3 regions over wan-proxy, one-way delays us-east<->eu-west 20 ms, pairs with ap-south 40 ms;"
  echo "Fashion-MNIST 60,000 x 784 loaded in us-east and replicated, hnsw (m 16, ef_construction 64) in every region;"
  echo "$(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); $(date -u +%Y-%m-%d)."
  echo
  "$tool" measure --out "$out" --region "$region_args" --read-regions us-east,ap-south --control "$control" \
    --minority ap-south --minority-links "$minority_links" --queries "${BENCH_QUERIES:-1000}" \
    --writers "${BENCH_WRITERS:-16}" --latency-writers "${BENCH_LATENCY_WRITERS:-4}" \
    --latency-seconds "${BENCH_LATENCY_SECONDS:-60}" --write-seconds "${BENCH_WRITE_SECONDS:-20}" ${BENCH_EF:+--ef "$BENCH_EF"}
} >"$results.tmp"
mv "$results.tmp" "$results"
cat "$results"
echo "results: $results"
