#!/usr/bin/env bash
# The README's demo command (also `make demo`): Meridian on Fashion-MNIST, from a fresh Debian 12 machine (as root). Idempotent.
#   installs the dependencies, builds and installs the extension and bench/fmnist-bench, starts
#   the throwaway cluster "demo" (.run/demo, 127.0.0.1:55440), loads the 60,000 training images
#   into demo.items (reused when already loaded), builds the hnsw index showing its progress,
#   runs a few k-NN queries against brute force, and leaves the cluster running for psql.
#
# Environment: DEMO_EXTENSION=meridian (pgvector's is "vector"), DEMO_PORT=55440, DEMO_QUERIES=5,
# MERIDIAN_SKIP_BUILD=1 to skip the dependency install and extension build.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
port=${DEMO_PORT:-55440}
extension=${DEMO_EXTENSION:-meridian}

if [ "${MERIDIAN_SKIP_BUILD:-0}" != 1 ]; then
  echo "== installing dependencies and building Meridian"
  scripts/install-deps.sh
  make -j2 install >/dev/null
fi
make -s -C bench BUILD="$root/build/bench" -j2

echo "== starting the demo cluster on 127.0.0.1:$port"
scripts/cluster.sh start demo "$port" \
  'shared_buffers = 1GB' \
  'maintenance_work_mem = 2GB' \
  'max_parallel_maintenance_workers = 1' \
  'max_wal_size = 8GB'
eval "$(scripts/cluster.sh env demo)"

"$root/build/bench/fmnist-bench" demo --db demo --extension "$extension" --queries "${DEMO_QUERIES:-5}"

cat <<MSG

== the demo cluster is still running
connect:     psql -h 127.0.0.1 -p $PGPORT -U postgres demo
  e.g.       SELECT id FROM items ORDER BY embedding <-> (SELECT embedding FROM items WHERE id = 42) LIMIT 10;
stop it:     scripts/cluster.sh stop demo
delete it:   scripts/cluster.sh destroy demo
MSG
