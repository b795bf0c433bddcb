#!/usr/bin/env bash
# make bench: the Fashion-MNIST benchmark of BENCHMARKS.md, from a fresh Debian 12 machine.
#   1. installs the dependencies, builds and installs the extension, builds bench/fmnist-bench
#   2. exact top-10 ground truth by brute force (cached in .run/bench/)
#   3. the reference: in-memory hnswlib, single thread, before any server runs
#   4. a fresh cluster (.run/bench-pg, port 55441) with the settings below: COPY 60,000 rows,
#      CREATE INDEX ... USING hnsw, the ef_search sweep, 2 clients, single-row INSERTs
#   5. stops the cluster and prints the markdown report (also in .run/bench/results.md)
#
# Environment:
#   BENCH_EXTENSION=meridian   the extension providing vector + hnsw (pgvector's is "vector")
#   BENCH_FORMAT=binary        how query vectors and COPY rows are sent: binary or text
#   BENCH_STORAGE=plain        the embedding column's storage (plain, main, external; "default" = the type's)
#   BENCH_PORT=55441           the cluster's port
#   MERIDIAN_SKIP_BUILD=1      skip step 1's dependency install and extension build/install
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out="$root/.run/bench"
tool="$root/build/bench/fmnist-bench"
cluster=bench-pg
port=${BENCH_PORT:-55441}
extension=${BENCH_EXTENSION:-meridian}
format=${BENCH_FORMAT:-binary}

if [ "${MERIDIAN_SKIP_BUILD:-0}" != 1 ]; then
  scripts/install-deps.sh
  make -j2 install >/dev/null
fi
make -s -C bench BUILD="$root/build/bench" -j2
mkdir -p "$out"

# Memory pages: both sides of the comparison get huge pages where this machine allows it (root).
#  - hnswlib keeps its graph in malloc'd memory: transparent huge pages are switched to "always"
#    for the reference run (Debian's default, "madvise", would leave it on 4 kB pages).
#  - PostgreSQL keeps the index in shared_buffers: huge_pages = on with pages reserved through
#    vm.nr_hugepages, the tuning PostgreSQL's documentation recommends for large shared memory.
# Without root both run on the system defaults, and the report says which was used.
thp=/sys/kernel/mm/transparent_hugepage/enabled
thp_before=""
huge_pages=try
if [ "$(id -u)" -eq 0 ] && [ -w "$thp" ]; then
  thp_before=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$thp")
  echo always > "$thp"
fi
"$tool" reference --out "$out"
if [ -n "$thp_before" ]; then echo "$thp_before" > "$thp"; fi
if [ "$(id -u)" -eq 0 ]; then
  # 1 GiB of shared_buffers plus PostgreSQL's other shared memory, in 2 MiB pages. The kernel
  # may reserve fewer than asked when memory is fragmented: then PostgreSQL only tries.
  # Pages reserved by other running clusters (huge_pages = try) are not available.
  need=580
  available() { awk '/HugePages_Free/ {f=$2} /HugePages_Rsvd/ {r=$2} END {print f-r}' /proc/meminfo; }
  hugepages_before=$(cat /proc/sys/vm/nr_hugepages)
  have=$(available)
  [ "$have" -ge "$need" ] || sysctl -qw vm.nr_hugepages=$((hugepages_before + need - have)) || true
  [ "$(available)" -ge "$need" ] && huge_pages=on
fi
if [ -n "$thp_before" ]; then thp_note="always for the run (system setting: $thp_before)"; else thp_note="system default"; fi
echo "memory pages: hnswlib transparent huge pages $thp_note; PostgreSQL huge_pages = $huge_pages"

# Server settings for the benchmark (documented in docs/benchmarks.md):
#   shared_buffers = 1GB                 table (~200 MiB) and index (~190 MiB) stay in PostgreSQL's cache
#   huge_pages = on|try                  see above
#   maintenance_work_mem = 2GB           the whole graph is built in memory (hnsw.build_threads
#                                        defaults to one thread per core: both cores build)
#   max_wal_size = 8GB                   no forced checkpoint in the middle of COPY or CREATE INDEX
#   jit = off                            JIT compilation only adds latency to LIMIT 10 queries
# synchronous_commit and fsync keep their defaults (on): INSERT rates are for durable commits.
rm -f "$out/pg.tsv"
scripts/cluster.sh destroy "$cluster"
scripts/cluster.sh start "$cluster" "$port" \
  'shared_buffers = 1GB' \
  "huge_pages = $huge_pages" \
  'maintenance_work_mem = 2GB' \
  'max_wal_size = 8GB' \
  'checkpoint_timeout = 30min' \
  'jit = off'
restore_hugepages() { [ -n "${hugepages_before:-}" ] && sysctl -qw vm.nr_hugepages="$hugepages_before" || true; }
trap 'scripts/cluster.sh stop "$cluster"; restore_hugepages' EXIT
eval "$(scripts/cluster.sh env "$cluster")"

status=0
"$tool" pg --out "$out" --extension "$extension" --format "$format" || status=$?
scripts/cluster.sh stop "$cluster"
restore_hugepages
trap - EXIT

echo
"$tool" report --out "$out"
echo
echo "(written to $out/results.md)"
exit $status
