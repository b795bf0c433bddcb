#!/usr/bin/env bash
# make bench-replication: the replication benchmark of BENCHMARKS.md ("Replication").
# Three regions on this machine (clusters repl-us-east/eu-west/ap-south on 55460-55462, under
# .run/), a table (id uuid primary key, embedding vector(256), payload jsonb); one client inserts
# 100-row transactions in us-east; eu-west and ap-south receive them. For each of
#   meridian (meridian-replicator in every region)  and  built-in logical replication
#   (CREATE PUBLICATION in us-east, CREATE SUBSCRIPTION in the others),
# without and then with an hnsw index on the table in every region:
#   1. flat out for $SECONDS s: rows/s committed at the source and replicated (until the last
#      receiver has applied the last row), lag from source COMMIT to applied in a receiver;
#   2. at half the replicated rate of 1: the lag p50/p99 that matter.
# Each run starts from an empty table after a checkpoint (reset_table).
# Only one replication method runs at a time (the other's replicators stopped / subscriptions
# disabled), so neither pays for the other's decoding.
# Environment: SECONDS_PER_RUN (default 20), MERIDIAN_SKIP_BUILD=1 (no dependency install/build).
# For A/B work on the replicator (the defaults give the full benchmark above):
#   BENCH_NO_INDEX_ONLY=1   only the runs without an index (BENCH_HNSW_ONLY=1: only those with one)
#   BENCH_FLAT_ONLY=1       only the flat-out runs (no half-rate run)
#   BENCH_BUILTIN=0         no built-in logical replication runs
#   BENCH_REPLICATORS="A B" replicator binaries to compare (default: the installed one); each round
#                           runs every one of them in turn, then built-in: A, B, built-in, A, B, ...
#   BENCH_ROUNDS=n          rounds (default 1)
#   BENCH_LIBS="A.so B.so"  extension libraries to compare, one per replicator of BENCH_REPLICATORS
#                           (same count): the servers load the library from $out/lib, which is
#                           swapped before each Meridian run (walsenders and apply sessions are new)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out="$root/.run/bench-repl"
tool="$root/build/bench/repl-bench"
secs=${SECONDS_PER_RUN:-20}
regions=(us-east eu-west ap-south)
declare -A port=([us-east]=55460 [eu-west]=55461 [ap-south]=55462)

if [ "${MERIDIAN_SKIP_BUILD:-0}" != 1 ]; then
  scripts/install-deps.sh
  make -j2 install >/dev/null
fi
make -s -C bench/replication BUILD="$root/build/bench"
replicator=$(pg_config --bindir)/meridian-replicator
[ -x "$replicator" ] || replicator="$root/build/replicator/meridian-replicator"
read -r -a replicators <<<"${BENCH_REPLICATORS:-$replicator}"
read -r -a libs <<<"${BENCH_LIBS:-}"
if [ "${#libs[@]}" -gt 0 ] && [ "${#libs[@]}" != "${#replicators[@]}" ]; then
  echo "BENCH_LIBS needs one library per replicator of BENCH_REPLICATORS" >&2; exit 2
fi
libdir_settings=()
if [ "${#libs[@]}" -gt 0 ]; then
  libdir_settings=("dynamic_library_path = '$out/lib:\$libdir'")
fi
use_lib() {  # swap the library the servers load (new backends only)
  [ "${#libs[@]}" -gt 0 ] || return 0
  cp "$1" "$out/lib/.meridian.so.tmp" && chmod 755 "$out/lib/.meridian.so.tmp" && mv -f "$out/lib/.meridian.so.tmp" "$out/lib/meridian.so"
}
rounds=${BENCH_ROUNDS:-1}
rm -rf "$out"; mkdir -p "$out"; chmod 755 "$out"
install -d -o postgres -g postgres -m 700 "$out/keys"  # the servers' signing keys (owned by postgres, 0600)
if [ -n "${BENCH_LIBS:-}" ]; then mkdir -p "$out/lib"; chmod 755 "$out/lib"; read -r -a l0 <<<"$BENCH_LIBS"; cp "${l0[0]}" "$out/lib/meridian.so"; chmod 755 "$out/lib/meridian.so"; fi

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}
conninfo() { echo "host=127.0.0.1 port=${port[$1]} dbname=postgres user=postgres"; }
sql() { local r=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -d "$(conninfo "$r")" "$@"; }

declare -A pid
start_replicators() {  # [binary]
  local replicator=${1:-$replicator}
  for r in "${regions[@]}"; do
    # exec: the recorded PID is the replicator's own, not runuser's (which does not pass SIGTERM on).
    as_postgres sh -c 'echo $$ > "$1"; exec "$2" --local "$3"' sh "$out/keys/replicator-$r.pid" "$replicator" \
      "$(conninfo "$r")" >>"$out/replicator-$r.log" 2>&1 &
    for _ in $(seq 50); do [ -s "$out/keys/replicator-$r.pid" ] && break; sleep 0.1; done
    pid[$r]=$(cat "$out/keys/replicator-$r.pid")
    rm -f "$out/keys/replicator-$r.pid"
  done
  # Streams up: every region sees both peers connected.
  for r in "${regions[@]}"; do
    for _ in $(seq 100); do
      [ "$(sql "$r" -c "SELECT count(*) FROM meridian.region_status WHERE connected")" = 2 ] && break
      sleep 0.2
    done
  done
}
stop_replicators() {
  for r in "${regions[@]}"; do
    [ -n "${pid[$r]:-}" ] || continue
    kill -TERM "${pid[$r]}" 2>/dev/null
    while kill -0 "${pid[$r]}" 2>/dev/null; do sleep 0.1; done
    pid[$r]=
  done
  wait || true
}
trap 'stop_replicators; for r in "${regions[@]}"; do scripts/cluster.sh stop "repl-$r" >/dev/null 2>&1 || true; done' EXIT

for r in "${regions[@]}"; do
  scripts/cluster.sh destroy "repl-$r" >/dev/null 2>&1 || true
  key="$out/keys/$r.key"
  hex=$(as_postgres "$replicator" keygen "$key")
  echo "$hex" >"$out/$r.pub"
  scripts/cluster.sh start "repl-$r" "${port[$r]}" 'wal_level = logical' 'track_commit_timestamp = on' \
    'max_replication_slots = 10' 'max_wal_senders = 10' \
    "output_plugin_libraries = 'pgoutput, test_decoding, meridian'" 'shared_buffers = 512MB' 'max_wal_size = 8GB' 'checkpoint_timeout = 30min' \
    "meridian.signing_key_file = '$key'" ${libdir_settings[@]+"${libdir_settings[@]}"} >/dev/null
done
for r in "${regions[@]}"; do
  {
    echo "CREATE EXTENSION meridian;"
    for o in "${regions[@]}"; do
      echo "SELECT meridian.create_region('$o', '$(conninfo "$o")', decode('$(cat "$out/$o.pub")', 'hex'));"
    done
    echo "SELECT meridian.set_local_region('$r');"
    # Asynchronous replication, like the built-in reference: COMMIT in us-east waits for no other
    # region (issue 4's write quorum, where built, defaults to a majority).
    echo "DO \$\$ BEGIN IF to_regproc('meridian.set_write_quorum') IS NOT NULL THEN
            EXECUTE 'SELECT meridian.set_write_quorum(1)'; END IF; END \$\$;"
    echo "CREATE TABLE items (id uuid PRIMARY KEY, embedding vector(256) NOT NULL, payload jsonb);"
    echo "SELECT meridian.replicate_table('items');"
    echo "CREATE TABLE items_builtin (id uuid PRIMARY KEY, embedding vector(256) NOT NULL, payload jsonb);"
  } | sql "$r" >/dev/null
done
# With BENCH_LIBS, every later session loads the library from $out/lib (by now no session
# holds the installed one: a backend must not load both).
if [ "${#libs[@]}" -gt 0 ]; then
  for r in "${regions[@]}"; do sql "$r" -c "UPDATE pg_proc SET probin = '$out/lib/meridian.so' WHERE probin = '\$libdir/meridian'"; done
fi
echo "staging 100,000 rows of vector(256) + jsonb in us-east"
sql us-east -c "CREATE TABLE bench_staging AS SELECT g AS n,
    (SELECT array_agg(random()::real) FROM generate_series(1, 256) WHERE g >= 0)::vector(256) AS embedding,
    jsonb_build_object('n', g, 'tag', md5(g::text), 'ok', true) AS payload
  FROM generate_series(0, 99999) g" -c "ALTER TABLE bench_staging ADD PRIMARY KEY (n)" -c "VACUUM ANALYZE bench_staging"
# Warm-up: fresh clusters have one WAL segment; the first run would create and zero-fill every
# segment it writes (~0.5 GB per region flat out) while later runs reuse recycled ones. Writing
# ~1 GB of WAL in every region once, before any run, gives every run (and both methods) recycled
# segments.
for r in "${regions[@]}"; do
  sql "$r" -c "CREATE TABLE bench_wal_warmup AS SELECT g, repeat(md5(g::text), 30) AS filler FROM generate_series(1, 800000) g" \
           -c "DROP TABLE bench_wal_warmup" -c "CHECKPOINT"
done
sql us-east -c "CREATE PUBLICATION bench_pub FOR TABLE items_builtin"
for r in eu-west ap-south; do
  sql "$r" -c "CREATE SUBSCRIPTION bench_sub_${r//-/_} CONNECTION '$(conninfo us-east)' PUBLICATION bench_pub
               WITH (copy_data = false, enabled = false)"
done

receivers_meridian=()
receivers_builtin=()
for r in eu-west ap-south; do
  receivers_meridian+=(--receiver "$r=meridian_us-east=$(conninfo "$r")")
  origin=$(sql "$r" -c "SELECT 'pg_' || oid FROM pg_subscription WHERE subname = 'bench_sub_${r//-/_}'")
  receivers_builtin+=(--receiver "$r=$origin=$(conninfo "$r")")
done

header="| run | source rate (rows/s) | rows | committed rows/s | replicated rows/s | lag p50 (ms) | lag p99 (ms) | lag max (ms) |
|---|---|---|---|---|---|---|---|"
results="$out/results.md"
echo "$header" >"$results"

# Every run starts from an empty table and a fresh checkpoint in every region, so autovacuum and
# checkpoints left over from the run before do not land in it. (TRUNCATE is not replicated by
# Meridian; built-in replication replicates it, harmlessly, to tables already empty.)
reset_table() {
  for r in "${regions[@]}"; do sql "$r" -c "TRUNCATE $1" -c "CHECKPOINT"; done
  sleep 2
}

# CPU time of the long-lived processes of each region (its server's processes, its replicator):
# "pid label ticks" lines. cpu_report compares two of them (processes alive in both, so the
# benchmark client's own sessions are left out) and prints the CPU ms per 1,000 rows by label,
# less disturbed by other load on the machine than the rates are.
cpu_snapshot() {
  local r p
  for r in "${regions[@]}"; do
    p=$(head -1 ".run/repl-$r/data/postmaster.pid")
    for c in $(pgrep -P "$p"); do echo "$c $r $(awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || echo 0)"; done
    [ -n "${pid[$r]:-}" ] && echo "${pid[$r]} replicator-$r $(awk '{print $14 + $15}' "/proc/${pid[$r]}/stat" 2>/dev/null || echo 0)"
  done
  return 0
}
cpu_report() {  # BEFORE AFTER ROWS
  awk -v rows="$3" -v hz="$(getconf CLK_TCK)" 'FNR == NR { t[$1] = $3; next }
    ($1 in t) { d[$2] += $3 - t[$1] }
    END { printf "    CPU ms per 1,000 rows:"; for (l in d) printf " %s %.1f", l, d[l] * 1000 / hz * 1000 / rows; printf "\n" }' \
    <(echo "$1") <(echo "$2") | tee -a "$out/cpu.txt"
}

# run LABEL TABLE RECEIVERS...: flat out, then at half the replicated rate.
run_pair() {
  local label=$1 table=$2; shift 2
  local line rate
  reset_table "$table"
  local before; before=$(cpu_snapshot)
  line=$("$tool" --source "$(conninfo us-east)" --table "$table" --seconds "$secs" --label "$label" "$@")
  echo "$line" | tee -a "$results"
  cpu_report "$before" "$(cpu_snapshot)" "$(echo "$line" | awk -F'|' '{print $4}')"
  rate=$(echo "$line" | awk -F'|' '{printf "%d", $6 / 2}')
  [ "${BENCH_FLAT_ONLY:-0}" = 1 ] && return
  reset_table "$table"
  line=$("$tool" --source "$(conninfo us-east)" --table "$table" --seconds "$secs" --rate "$rate" --label "$label" "$@")
  echo "$line" | tee -a "$results"
}

enable_builtin() { for r in eu-west ap-south; do sql "$r" -c "ALTER SUBSCRIPTION bench_sub_${r//-/_} $1"; done; }
wait_builtin_streaming() {
  for r in eu-west ap-south; do
    for _ in $(seq 100); do
      [ "$(sql "$r" -c "SELECT count(*) FROM pg_stat_subscription WHERE subname LIKE 'bench_sub%' AND pid IS NOT NULL")" = 1 ] && break
      sleep 0.2
    done
  done
  sleep 1
}

variants=("no index" "hnsw index")
[ "${BENCH_NO_INDEX_ONLY:-0}" = 1 ] && variants=("no index")
[ "${BENCH_HNSW_ONLY:-0}" = 1 ] && variants=("hnsw index")
echo "$header"
for variant in "${variants[@]}"; do
  if [ "$variant" = "hnsw index" ]; then
    for r in "${regions[@]}"; do
      sql "$r" -c "TRUNCATE items, items_builtin" -c "CREATE INDEX ON items USING hnsw (embedding vector_l2_ops)" \
                   -c "CREATE INDEX ON items_builtin USING hnsw (embedding vector_l2_ops);"
    done
  fi
  for _ in $(seq "$rounds"); do
    for i in "${!replicators[@]}"; do
      bin=${replicators[$i]}
      label="meridian, $variant"
      [ "${#replicators[@]}" -gt 1 ] && label="meridian ($(basename "$bin")), $variant"
      if [ "${#libs[@]}" -gt 0 ]; then
        use_lib "${libs[$i]}"
        label="meridian ($(basename "$bin") + $(basename "${libs[$i]}")), $variant"
      fi
      start_replicators "$bin"
      run_pair "$label" items "${receivers_meridian[@]}"
      stop_replicators
    done
    [ "${BENCH_BUILTIN:-1}" = 1 ] || continue
    enable_builtin ENABLE
    wait_builtin_streaming
    run_pair "built-in logical replication, $variant" items_builtin "${receivers_builtin[@]}"
    enable_builtin DISABLE
  done
done
for r in "${regions[@]}"; do
  echo "$r: $(sql "$r" -c "SELECT count(*) FROM items") rows in items, $(sql "$r" -c "SELECT count(*) FROM items_builtin") in items_builtin"
done | tee -a "$out/counts.txt"
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "results: $results"
