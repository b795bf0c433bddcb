#!/usr/bin/env bash
# A/B comparison of two builds of the extension library on one cluster and one indexed database,
# interleaved (A, B, A, B, ...) so that machine noise hits both alike.
#   bench/ab.sh A.so B.so [rounds] [ef]      (AB_PASSES=n: measured passes per run, AB_TABLE, AB_DB)
# Setup (once): a cluster loaded by `fmnist-bench pg --db bench --inserts 0`, then in that database
#   UPDATE pg_proc SET probin = '<LIBDIR>/meridian.so' WHERE probin = '$libdir/meridian';
# so its backends load the library from LIBDIR (default .run/qps/lib), which this script swaps
# (atomic rename) before each run; each run is a new connection, so a new backend loads it.
# PGHOST/PGPORT/PGUSER select the cluster. Prints one line per run and the medians of wall time
# and of the server process's CPU time per 1,000 queries (less disturbed by other load).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
a=$1 b=$2 rounds=${3:-5} ef=${4:-40} table=${AB_TABLE:-items}
libdir=${LIBDIR:-$root/.run/qps/lib}
tool="$root/build/bench/fmnist-bench"
out=$(mktemp)
for r in $(seq "$rounds"); do
  for side in A B; do
    lib=$a; [ $side = B ] && lib=$b
    cp "$lib" "$libdir/.meridian.so.tmp" && chmod a+r "$libdir/.meridian.so.tmp" && mv -f "$libdir/.meridian.so.tmp" "$libdir/meridian.so"
    "$tool" qps --out "$root/.run/bench" --db "${AB_DB:-bench}" --table "$table" --ef "$ef" --passes "${AB_PASSES:-1}" --label "$side" 2>/dev/null | tee -a "$out"
  done
done
median() { sort -n | awk '{v[NR]=$1} END {printf "%.1f %.1f %.1f", v[int((NR+1)/2)], v[1], v[NR]}'; }
for side in A B; do
  rows=$(grep "^$side	" "$out")
  read -r ms lo hi <<<"$(sed 's/.*	ms_per_1000=\([0-9.]*\).*/\1/' <<<"$rows" | median)"
  read -r cpu _ _ <<<"$(sed 's/.*server_cpu_ms_per_1000=\([-0-9.]*\).*/\1/' <<<"$rows" | median)"
  recall=$(sed 's/.*recall=\([0-9.]*\).*/\1/' <<<"$rows" | sort -u | tr '\n' ' ')
  awk -v s="$side" -v ms="$ms" -v lo="$lo" -v hi="$hi" -v cpu="$cpu" -v rc="$recall" 'BEGIN {
    printf "%s median %.1f ms/1000 (%.0f QPS; min %.1f, max %.1f), server CPU median %.1f ms/1000, recall %s\n", s, ms, 1e6/ms, lo, hi, cpu, rc }'
done
rm -f "$out"
