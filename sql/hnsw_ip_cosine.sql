-- hnsw with vector_ip_ops (<#>) and vector_cosine_ops (<=>): with a wide enough search the index
-- scan returns exactly the sequential scan's nearest neighbors, in the same order.
SET hnsw.build_threads = 1;

-- 500 deterministic 8-dimension vectors with small integer coordinates of both signs (inner
-- products are computed exactly in float4), all distinct and no two with the same direction.
CREATE TABLE hnsw_ipc (id int PRIMARY KEY, v vector(8));
INSERT INTO hnsw_ipc
SELECT i, ARRAY[(i * 37 + 11) % 101 - 50, (i * 53 + 7) % 103 - 51, (i * 71 + 3) % 107 - 53,
                (i * 29 + 5) % 109 - 54, (i * 83 + 1) % 113 - 56, (i * 17 + 13) % 127 - 63,
                (i * 43 + 2) % 131 - 65, (i * 61 + 9) % 137 - 68]::real[]::vector
FROM generate_series(1, 500) i;
SELECT count(DISTINCT v) AS vectors, count(DISTINCT l2_normalize(v)) AS directions FROM hnsw_ipc;

CREATE TABLE hnsw_ipc_queries (q int, v vector(8));
INSERT INTO hnsw_ipc_queries VALUES
    (1, '[31,-37,41,43,-47,53,59,-61]'),
    (2, '[3,-7,11,13,-17,19,23,-29]'),
    (3, '[-10,3,1,7,-1,-2,4,5]'),
    (4, '[12.5,-80,33,7,-64,90,1,45]');

-- Inner product: no ties among the 51 best of any query
SELECT q.q, count(*) AS n, count(DISTINCT t.d) AS distinct_distances
FROM hnsw_ipc_queries q,
     LATERAL (SELECT v <#> q.v AS d FROM hnsw_ipc ORDER BY 1 LIMIT 51) t
GROUP BY q.q ORDER BY q.q;
-- Cosine: no near ties either (float4 normalisation must not be able to swap two neighbors)
SELECT q.q, count(*) AS n, min(t.gap) > 1e-6 AS well_separated
FROM hnsw_ipc_queries q,
     LATERAL (SELECT lead(d) OVER (ORDER BY d) - d AS gap
              FROM (SELECT v <=> q.v AS d FROM hnsw_ipc ORDER BY 1 LIMIT 51) s) t
GROUP BY q.q ORDER BY q.q;

-- The exact answers, from the sequential scan
SET enable_indexscan = off;
SET enable_bitmapscan = off;
CREATE TEMP TABLE hnsw_ipc_exact AS
SELECT q.q,
       array(SELECT id FROM hnsw_ipc ORDER BY v <#> q.v LIMIT 50) AS ip,
       array(SELECT id FROM hnsw_ipc ORDER BY v <=> q.v LIMIT 50) AS cos
FROM hnsw_ipc_queries q;
RESET enable_indexscan;
RESET enable_bitmapscan;

-- Inner product index
CREATE INDEX hnsw_ipc_ip ON hnsw_ipc USING hnsw (v vector_ip_ops);
SELECT elements, live, deleted, unreachable FROM meridian.hnsw_check('hnsw_ipc_ip');
SET hnsw.ef_search = 400;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_ipc ORDER BY v <#> '[1,2,3,4,5,6,7,8]' LIMIT 50;
-- the l2 and cosine operators cannot use it
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_ipc ORDER BY v <-> '[1,2,3,4,5,6,7,8]' LIMIT 50;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_ipc ORDER BY v <=> '[1,2,3,4,5,6,7,8]' LIMIT 50;
CREATE TEMP TABLE hnsw_ipc_index AS
SELECT q.q, array(SELECT id FROM hnsw_ipc ORDER BY v <#> q.v LIMIT 50) AS ip FROM hnsw_ipc_queries q;
SELECT e.q, i.ip = e.ip AS same_50, i.ip[1:10] AS index_top10, e.ip[1:10] AS exact_top10
FROM hnsw_ipc_exact e JOIN hnsw_ipc_index i USING (q) ORDER BY e.q;
SELECT count(*) AS differences FROM (
    SELECT q, unnest(ip) FROM hnsw_ipc_exact EXCEPT SELECT q, unnest(ip) FROM hnsw_ipc_index) d;
SELECT id, v <#> '[1,2,3,4,5,6,7,8]' AS negative_inner_product
FROM hnsw_ipc ORDER BY v <#> '[1,2,3,4,5,6,7,8]' LIMIT 5;
-- scaling the query scales every inner product: same order
SELECT array(SELECT id FROM hnsw_ipc ORDER BY v <#> '[30,-70,110,130,-170,190,230,-290]' LIMIT 50) = e.ip AS scaled_same
FROM hnsw_ipc_exact e WHERE e.q = 2;
RESET hnsw.ef_search;
DROP INDEX hnsw_ipc_ip;

-- Cosine index
CREATE INDEX hnsw_ipc_cos ON hnsw_ipc USING hnsw (v vector_cosine_ops);
SELECT elements, live, deleted, unreachable FROM meridian.hnsw_check('hnsw_ipc_cos');
SET hnsw.ef_search = 400;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_ipc ORDER BY v <=> '[1,2,3,4,5,6,7,8]' LIMIT 50;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_ipc ORDER BY v <#> '[1,2,3,4,5,6,7,8]' LIMIT 50;
CREATE TEMP TABLE hnsw_ipc_cos_index AS
SELECT q.q, array(SELECT id FROM hnsw_ipc ORDER BY v <=> q.v LIMIT 50) AS cos FROM hnsw_ipc_queries q;
SELECT e.q, i.cos = e.cos AS same_50, i.cos[1:10] AS index_top10, e.cos[1:10] AS exact_top10
FROM hnsw_ipc_exact e JOIN hnsw_ipc_cos_index i USING (q) ORDER BY e.q;
SELECT count(*) AS differences FROM (
    SELECT q, unnest(cos) FROM hnsw_ipc_exact EXCEPT SELECT q, unnest(cos) FROM hnsw_ipc_cos_index) d;
SELECT id, round((v <=> '[1,2,3,4,5,6,7,8]')::numeric, 6) AS cosine_distance
FROM hnsw_ipc ORDER BY v <=> '[1,2,3,4,5,6,7,8]' LIMIT 5;
-- cosine ignores the length of the query
SELECT array(SELECT id FROM hnsw_ipc ORDER BY v <=> '[0.3,-0.7,1.1,1.3,-1.7,1.9,2.3,-2.9]' LIMIT 50) = e.cos
       AS scaled_same
FROM hnsw_ipc_exact e WHERE e.q = 2;
-- every stored vector finds itself (or a vector of the same direction) first
RESET hnsw.ef_search;
SELECT count(*) AS not_found_first
FROM hnsw_ipc a LEFT JOIN LATERAL (SELECT b.id FROM hnsw_ipc b ORDER BY b.v <=> a.v LIMIT 1) n ON true
WHERE n.id IS DISTINCT FROM a.id;
-- longer and shorter copies of the same directions: the index sees no difference
CREATE TABLE hnsw_ipc_scaled (id int, v vector(8));
INSERT INTO hnsw_ipc_scaled SELECT id, v * '[3,3,3,3,3,3,3,3]' FROM hnsw_ipc;
CREATE INDEX ON hnsw_ipc_scaled USING hnsw (v vector_cosine_ops);
SET hnsw.ef_search = 400;
SELECT e.q, array(SELECT id FROM hnsw_ipc_scaled ORDER BY v <=> q.v LIMIT 50) = e.cos AS same_50
FROM hnsw_ipc_exact e JOIN hnsw_ipc_queries q USING (q) ORDER BY e.q;

-- Cosine: zero vectors have no direction and are not indexed (NULLs neither)
CREATE TABLE hnsw_cos_zero (id int, v vector(3));
INSERT INTO hnsw_cos_zero VALUES (1, '[0,0,0]'), (2, '[1,0,0]'), (3, NULL), (4, '[0,1,0]'), (5, '[1,1,0]');
CREATE INDEX hnsw_cos_zero_v ON hnsw_cos_zero USING hnsw (v vector_cosine_ops);
SELECT elements, live FROM meridian.hnsw_check('hnsw_cos_zero_v');
INSERT INTO hnsw_cos_zero VALUES (6, '[0,0,0]'), (7, '[0,0,1]'), (8, NULL);
SELECT elements, live FROM meridian.hnsw_check('hnsw_cos_zero_v');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_cos_zero ORDER BY v <=> '[1,0.5,0]' LIMIT 10;
SELECT id, v <=> '[1,0.5,0]' AS cosine_distance FROM hnsw_cos_zero ORDER BY v <=> '[1,0.5,0]' LIMIT 10;
RESET enable_seqscan;
-- (the sequential scan also returns the zero vector, with a NaN distance, and the NULLs)
SELECT id, v <=> '[1,0.5,0]' AS cosine_distance FROM hnsw_cos_zero ORDER BY v <=> '[1,0.5,0]', id;
-- an inner-product index does index zero vectors
CREATE INDEX hnsw_cos_zero_ip ON hnsw_cos_zero USING hnsw (v vector_ip_ops);
SELECT elements, live FROM meridian.hnsw_check('hnsw_cos_zero_ip');

RESET hnsw.ef_search;
RESET hnsw.build_threads;
DROP TABLE hnsw_ipc, hnsw_ipc_queries, hnsw_ipc_scaled, hnsw_cos_zero;
