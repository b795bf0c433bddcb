#!/usr/bin/env bash
# Concurrency check for changes to the hnsw read path: k-NN queries that verify their own
# results while other clients delete, insert and update rows and VACUUM runs every two seconds.
#   bench/scan_stress.sh [seconds] [clients]        (defaults 30 s, 4 clients)
# PGHOST/PGPORT/PGUSER select a running cluster with the extension installed; the database
# scan_stress (or $STRESS_DB) is dropped and recreated. Each checked query fails (raising an
# error, counted by pgbench as a failed transaction) when its rows are not in non-decreasing
# distance order or fewer than asked for: plain queries (LIMIT 20) and filtered ones, which
# continue the search (iterative scan, LIMIT 10 of every 7th id). Exits non-zero on any failure.
# 64-dimension vectors and m = 8, so many records share each page and writes hit pages that
# searches are reading. Not a benchmark: it prints pgbench's counts and hnsw_check at the end.
set -euo pipefail
seconds=${1:-30}
clients=${2:-4}
db=${STRESS_DB:-scan_stress}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

psql -qX -d postgres -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -qX -d "$db" -v ON_ERROR_STOP=1 <<'EOF'
CREATE EXTENSION meridian;
CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(64));
CREATE FUNCTION rv() RETURNS vector LANGUAGE sql VOLATILE
    AS $$ SELECT array_agg(random()::real)::vector FROM generate_series(1, 64) $$;
INSERT INTO items (embedding) SELECT rv() FROM generate_series(1, 20000);
CREATE INDEX ON items USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32);
-- Rows must come in non-decreasing distance (up to rounding: the index sums the squared
-- differences in another order than the operator) and there must be k of them.
CREATE FUNCTION check_knn(q vector, k int, modulus int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE r record; prev float8 := -1; n int := 0;
BEGIN
    FOR r IN SELECT id, embedding <-> q AS d FROM items WHERE id % modulus = 0
             ORDER BY embedding <-> q LIMIT k LOOP
        IF r.d < prev * (1 - 1e-5) THEN
            RAISE EXCEPTION 'row % at distance % after distance %', n + 1, r.d, prev;
        END IF;
        prev := r.d;
        n := n + 1;
    END LOOP;
    IF n < k THEN
        RAISE EXCEPTION 'only % rows of %', n, k;
    END IF;
    RETURN n;
END $$;
EOF

cat > "$work/writer.sql" <<'EOF'
\set id random(1, 30000)
BEGIN;
DELETE FROM items WHERE id = :id;
INSERT INTO items (embedding) SELECT rv();
UPDATE items SET embedding = rv() WHERE id = :id + 1;
COMMIT;
EOF
echo 'SELECT check_knn(rv(), 20, 1);' > "$work/reader.sql"
echo 'SELECT check_knn(rv(), 10, 7);' > "$work/filtered.sql"

end=$((SECONDS + seconds))
(while [ $SECONDS -lt $end ]; do psql -qX -d "$db" -c 'VACUUM items'; sleep 2; done) &
vacuum_pid=$!
status=0
pgbench -n -d "$db" -c "$clients" -j 2 -T "$seconds" \
  -f "$work/writer.sql@1" -f "$work/reader.sql@2" -f "$work/filtered.sql@1" > "$work/out" 2>&1 || status=$?
wait "$vacuum_pid" || status=1
grep -E 'transactions|failed|ERROR' "$work/out" | head -20
psql -X -d "$db" -c "SELECT * FROM meridian.hnsw_check('items_embedding_idx')"
if [ "$status" -ne 0 ] || grep -q 'ERROR' "$work/out" || ! grep -q 'number of failed transactions: 0 ' "$work/out"; then
  echo "scan_stress: FAILED" >&2
  exit 1
fi
echo "scan_stress: every checked query passed"
