-- Filtered hnsw queries (WHERE ... ORDER BY distance LIMIT k): the iterative scan continues past
-- ef_search until it has k rows that pass the filter (hnsw.iterative_scan), within
-- hnsw.max_scan_tuples; strict_order keeps the distances in order.
SET hnsw.build_threads = 1;

-- 2,000 deterministic 8-dimension vectors; category = id % 50, so every category holds 2% of the rows
CREATE TABLE hnsw_filt (id int PRIMARY KEY, category int, v vector(8));
INSERT INTO hnsw_filt
SELECT i, i % 50,
       ARRAY[(i * 37 + 11) % 101, (i * 53 + 7) % 103, (i * 71 + 3) % 107, (i * 29 + 5) % 109,
             (i * 83 + 1) % 113, (i * 17 + 13) % 127, (i * 43 + 2) % 131, (i * 61 + 9) % 137]::real[]::vector
FROM generate_series(1, 2000) i;
CREATE INDEX hnsw_filt_v ON hnsw_filt USING hnsw (v);
ANALYZE hnsw_filt;
SELECT elements, live, unreachable FROM meridian.hnsw_check('hnsw_filt_v');
SELECT count(*) FROM hnsw_filt WHERE category = 7;

-- With the filter the planner prefers sorting the 40 matching rows (no index on category)
EXPLAIN (COSTS OFF)
SELECT id FROM hnsw_filt WHERE category = 7 ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10;
-- the exact answer
CREATE TEMP TABLE hnsw_filt_exact AS
SELECT array(SELECT id FROM hnsw_filt WHERE category = 7
             ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10) AS ids;
SELECT ids FROM hnsw_filt_exact;

-- Force the index: the filter is applied to the rows the index returns
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM hnsw_filt WHERE category = 7 ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10;

-- ef_search = 10: the first batch holds about one matching row; strict_order (the default)
-- keeps searching and returns all 10
SET hnsw.ef_search = 10;
SHOW hnsw.iterative_scan;
SELECT count(*) FROM (SELECT id FROM hnsw_filt WHERE category = 7
                      ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10) s;
-- and in non-decreasing distance order
SELECT bool_and(d >= prev) AS ordered, count(*)
FROM (SELECT d, lag(d) OVER (ORDER BY n) AS prev
      FROM (SELECT row_number() OVER () AS n, d
            FROM (SELECT v <-> '[50,50,50,50,50,50,50,50]' AS d FROM hnsw_filt WHERE category = 7
                  ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10) s) t) u;
-- relaxed_order also returns 10
SET hnsw.iterative_scan = relaxed_order;
SELECT count(*) FROM (SELECT id FROM hnsw_filt WHERE category = 7
                      ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10) s;
-- off: one batch of ef_search candidates only, so fewer rows
SET hnsw.iterative_scan = off;
SELECT count(*) FROM (SELECT id FROM hnsw_filt WHERE category = 7
                      ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10) s;
-- also without a filter, off returns at most ef_search rows
SELECT count(*) FROM (SELECT id FROM hnsw_filt ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 30) s;
RESET hnsw.iterative_scan;
SELECT count(*) FROM (SELECT id FROM hnsw_filt ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 30) s;

-- Every category has its 10 rows, with ef_search = 10 and with the default
SELECT count(*) AS categories, min(n), max(n)
FROM (SELECT c, (SELECT count(*) FROM (SELECT id FROM hnsw_filt WHERE category = c
                                        ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10) s) AS n
      FROM generate_series(0, 49) c) t;
RESET hnsw.ef_search;
SELECT count(*) AS categories, min(n), max(n)
FROM (SELECT c, (SELECT count(*) FROM (SELECT id FROM hnsw_filt WHERE category = c
                                        ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10) s) AS n
      FROM generate_series(0, 49) c) t;

-- A wide search finds exactly the sequential scan's answer
SET hnsw.ef_search = 400;
SELECT array(SELECT id FROM hnsw_filt WHERE category = 7
             ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10) = ids AS exact
FROM hnsw_filt_exact;
RESET hnsw.ef_search;

-- A filter that matches 3 rows: all 3 come back; one that matches none: nothing
SELECT id FROM hnsw_filt WHERE id IN (5, 500, 1500) ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10;
SELECT count(*) FROM (SELECT id FROM hnsw_filt WHERE category = 99
                      ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10) s;

-- hnsw.max_scan_tuples bounds the work: with a budget of 30 visited elements the scan stops
-- before it finds 10 rows of a 2% category
SET hnsw.ef_search = 10;
SET hnsw.max_scan_tuples = 30;
SELECT count(*) < 10 AS stopped_early
FROM (SELECT id FROM hnsw_filt WHERE category = 7 ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10) s;
SET hnsw.max_scan_tuples = 1;
SELECT count(*) >= 1 AS first_batch_returned
FROM (SELECT id FROM hnsw_filt ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 10) s;
RESET hnsw.max_scan_tuples;
RESET hnsw.ef_search;

-- Ordering over a whole-table scan with a narrow search (ef_search = 10, many batches).
-- strict_order: distances never decrease; a row found after a farther one was returned is skipped,
-- so a few rows may be missing. relaxed_order: every row comes back, some slightly out of order.
SET hnsw.ef_search = 10;
SELECT bool_and(d >= prev) AS ordered, count(*) AS returned
FROM (SELECT d, lag(d) OVER (ORDER BY n) AS prev
      FROM (SELECT row_number() OVER () AS n, d
            FROM (SELECT v <-> '[50,50,50,50,50,50,50,50]' AS d FROM hnsw_filt
                  ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 5000) s) t) u;
SET hnsw.iterative_scan = relaxed_order;
SELECT count(*) AS returned, count(DISTINCT id) AS distinct_rows
FROM (SELECT id FROM hnsw_filt ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 5000) s;
RESET hnsw.iterative_scan;
RESET hnsw.ef_search;

-- A join: the 3 nearest rows of category 7 for each of 3 query rows (a parameterised rescan)
SET hnsw.ef_search = 400;
EXPLAIN (COSTS OFF)
SELECT q.id, n.id FROM hnsw_filt q,
    LATERAL (SELECT f.id FROM hnsw_filt f WHERE f.category = 7 ORDER BY f.v <-> q.v LIMIT 3) n
WHERE q.id IN (1, 2, 3);
SELECT q.id AS query, array_agg(n.id ORDER BY n.rank) AS nearest
FROM hnsw_filt q,
     LATERAL (SELECT f.id, row_number() OVER () AS rank
              FROM (SELECT f.id FROM hnsw_filt f WHERE f.category = 7 ORDER BY f.v <-> q.v LIMIT 3) f) n
WHERE q.id IN (1, 2, 3)
GROUP BY q.id ORDER BY q.id;
RESET enable_seqscan;
SET enable_indexscan = off;
SELECT q.id AS query, array_agg(n.id ORDER BY n.rank) AS nearest
FROM hnsw_filt q,
     LATERAL (SELECT f.id, row_number() OVER () AS rank
              FROM (SELECT f.id FROM hnsw_filt f WHERE f.category = 7 ORDER BY f.v <-> q.v LIMIT 3) f) n
WHERE q.id IN (1, 2, 3)
GROUP BY q.id ORDER BY q.id;
RESET enable_indexscan;
RESET hnsw.ef_search;

RESET enable_seqscan;
RESET hnsw.build_threads;
DROP TABLE hnsw_filt;
