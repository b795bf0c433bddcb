-- Many rows with the same vector: every copy must stay reachable and be returned, whether the graph
-- was built by CREATE INDEX or grown by INSERT.
-- Identical vectors form a ring that searches follow, so no copy can be cut off by the pruning
-- heuristic (docs/hnsw.md).
SET hnsw.build_threads = 1;

CREATE TABLE hnsw_dup (id int, v vector(4));
INSERT INTO hnsw_dup
SELECT i, ARRAY[(i * 37 + 11) % 101, (i * 53 + 7) % 103, (i * 71 + 3) % 107, (i * 29 + 5) % 109]::real[]::vector
FROM generate_series(1, 50) i;
INSERT INTO hnsw_dup SELECT i, '[7,7,7,7]' FROM generate_series(1001, 1100) i;

-- Grown by INSERT
CREATE TABLE hnsw_dup_ins (id int, v vector(4));
CREATE INDEX hnsw_dup_ins_v ON hnsw_dup_ins USING hnsw (v);
INSERT INTO hnsw_dup_ins SELECT * FROM hnsw_dup ORDER BY id;
SELECT elements, live, unreachable FROM meridian.hnsw_check('hnsw_dup_ins_v');
SET enable_seqscan = off;
SET hnsw.ef_search = 400;
SELECT count(*) FILTER (WHERE id > 1000) AS copies, count(*) AS returned
FROM (SELECT id FROM hnsw_dup_ins ORDER BY v <-> '[7,7,7,7]' LIMIT 1000) s;
RESET hnsw.ef_search;
SELECT count(*) FILTER (WHERE id > 1000) AS copies_in_first_100
FROM (SELECT id FROM hnsw_dup_ins ORDER BY v <-> '[7,7,7,7]' LIMIT 100) s;
RESET enable_seqscan;

-- Built by CREATE INDEX
CREATE INDEX hnsw_dup_v ON hnsw_dup USING hnsw (v);
SELECT elements, live, unreachable FROM meridian.hnsw_check('hnsw_dup_v');
SET enable_seqscan = off;
SET hnsw.ef_search = 400;
SELECT count(*) FILTER (WHERE id > 1000) AS copies, count(*) AS returned
FROM (SELECT id FROM hnsw_dup ORDER BY v <-> '[7,7,7,7]' LIMIT 1000) s;
RESET hnsw.ef_search;
SELECT count(*) FILTER (WHERE id > 1000) AS copies_in_first_100
FROM (SELECT id FROM hnsw_dup ORDER BY v <-> '[7,7,7,7]' LIMIT 100) s;
RESET enable_seqscan;

-- Only copies
CREATE TABLE hnsw_dup_only (id int, v vector(4));
INSERT INTO hnsw_dup_only SELECT i, '[7,7,7,7]' FROM generate_series(1, 100) i;
CREATE INDEX hnsw_dup_only_v ON hnsw_dup_only USING hnsw (v);
SELECT elements, live, unreachable FROM meridian.hnsw_check('hnsw_dup_only_v');
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM hnsw_dup_only ORDER BY v <-> '[1,2,3,4]' LIMIT 1000) s;
RESET enable_seqscan;

RESET hnsw.build_threads;
DROP TABLE hnsw_dup, hnsw_dup_ins, hnsw_dup_only;
