-- hnsw with vector_l2_ops: with a wide enough search the index scan returns exactly the
-- sequential scan's nearest neighbors, in the same order.

-- One build thread: the graph (and so hnsw_check's figures) is the same on every run.
SET hnsw.build_threads = 1;

-- 500 deterministic 8-dimension vectors with small integer coordinates: every distance is
-- computed exactly in float4, and all 500 vectors are distinct.
CREATE TABLE hnsw_l2 (id int PRIMARY KEY, v vector(8));
INSERT INTO hnsw_l2
SELECT i, ARRAY[(i * 37 + 11) % 101, (i * 53 + 7) % 103, (i * 71 + 3) % 107, (i * 29 + 5) % 109,
                (i * 83 + 1) % 113, (i * 17 + 13) % 127, (i * 43 + 2) % 131, (i * 61 + 9) % 137]::real[]::vector
FROM generate_series(1, 500) i;
SELECT count(DISTINCT v) FROM hnsw_l2;
CREATE INDEX hnsw_l2_v ON hnsw_l2 USING hnsw (v vector_l2_ops);
SELECT elements, live, deleted, unreachable, max_level >= 1 AS has_upper_levels, free_slots
FROM meridian.hnsw_check('hnsw_l2_v');

CREATE TABLE hnsw_l2_queries (q int, v vector(8));
INSERT INTO hnsw_l2_queries VALUES
    (1, '[50,50,50,50,50,50,50,50]'),
    (2, '[0,0,0,0,0,0,0,0]'),
    (3, '[100,0,100,0,100,0,100,0]'),
    (4, '[12.5,80,33,7,64,90,1,45]');
-- No ties among the 51 nearest of any query: the order is well defined
SELECT q.q, count(*) AS n, count(DISTINCT t.d) AS distinct_distances
FROM hnsw_l2_queries q,
     LATERAL (SELECT v <-> q.v AS d FROM hnsw_l2 ORDER BY 1 LIMIT 51) t
GROUP BY q.q ORDER BY q.q;

-- The exact answer, from the sequential scan
SET enable_indexscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_l2 ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 50;
CREATE TEMP TABLE hnsw_l2_exact AS
SELECT q.q, array(SELECT id FROM hnsw_l2 ORDER BY v <-> q.v LIMIT 50) AS ids FROM hnsw_l2_queries q;
RESET enable_indexscan;
RESET enable_bitmapscan;

-- The index scan
SET hnsw.ef_search = 400;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_l2 ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 50;
CREATE TEMP TABLE hnsw_l2_index AS
SELECT q.q, array(SELECT id FROM hnsw_l2 ORDER BY v <-> q.v LIMIT 50) AS ids FROM hnsw_l2_queries q;
SELECT e.q, i.ids = e.ids AS same_50, i.ids[1:10] AS index_top10, e.ids[1:10] AS exact_top10
FROM hnsw_l2_exact e JOIN hnsw_l2_index i USING (q) ORDER BY e.q;
-- the same in rows: nothing in one answer and not in the other
SELECT count(*) AS differences FROM (
    (SELECT q, unnest(ids) FROM hnsw_l2_exact EXCEPT SELECT q, unnest(ids) FROM hnsw_l2_index)
    UNION ALL
    (SELECT q, unnest(ids) FROM hnsw_l2_index EXCEPT SELECT q, unnest(ids) FROM hnsw_l2_exact)) d;

-- The distances come back in ascending order
SELECT id, v <-> '[50,50,50,50,50,50,50,50]' AS distance
FROM hnsw_l2 ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 5;

-- Every stored vector finds itself first, also with the default ef_search
RESET hnsw.ef_search;
EXPLAIN (COSTS OFF)
SELECT a.id FROM hnsw_l2 a, LATERAL (SELECT b.id FROM hnsw_l2 b ORDER BY b.v <-> a.v LIMIT 1) n WHERE n.id <> a.id;
SELECT count(*) AS not_found_first
FROM hnsw_l2 a LEFT JOIN LATERAL (SELECT b.id FROM hnsw_l2 b ORDER BY b.v <-> a.v LIMIT 1) n ON true
WHERE n.id IS DISTINCT FROM a.id;

-- A whole-table ordered scan returns every row once
SET hnsw.ef_search = 400;
SELECT count(*), count(DISTINCT id)
FROM (SELECT id FROM hnsw_l2 ORDER BY v <-> '[1,2,3,4,5,6,7,8]' LIMIT 1000) s;
RESET hnsw.ef_search;

-- Small ef_search still returns LIMIT rows (the scan continues past ef_search)
SET hnsw.ef_search = 1;
SELECT count(*) FROM (SELECT id FROM hnsw_l2 ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 30) s;
RESET hnsw.ef_search;

-- The same answers from a graph built by several threads and by m = 4
SET hnsw.build_threads = 2;
CREATE INDEX hnsw_l2_v2 ON hnsw_l2 USING hnsw (v) WITH (m = 4, ef_construction = 40);
DROP INDEX hnsw_l2_v;
SELECT elements, live, unreachable FROM meridian.hnsw_check('hnsw_l2_v2');
SET hnsw.ef_search = 400;
SELECT e.q, array(SELECT id FROM hnsw_l2 ORDER BY v <-> q.v LIMIT 50) = e.ids AS same_50
FROM hnsw_l2_exact e JOIN hnsw_l2_queries q USING (q) ORDER BY e.q;

RESET hnsw.ef_search;
RESET hnsw.build_threads;
DROP TABLE hnsw_l2, hnsw_l2_queries;
