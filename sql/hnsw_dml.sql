-- hnsw under writes: building on an empty table, INSERT, UPDATE, DELETE, VACUUM (deleted rows never
-- come back, freed slots are reused), NULLs, TRUNCATE, REINDEX, CONCURRENTLY, partial indexes,
-- unlogged and temporary tables, and a build that outgrows maintenance_work_mem.
SET hnsw.build_threads = 1;

-- index_matches_seq(table, query, k): does the index scan (with a wide search) return the k nearest
-- rows, in order, as the sequential scan does? Distances are compared, not ids: the data below has
-- ties, and rows at the same distance may come in any order.
CREATE FUNCTION pg_temp.index_matches_seq(tab regclass, q vector, k int) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE
    by_index float8[];
    by_seq float8[];
    sql text := format('SELECT array(SELECT v <-> %L FROM %s ORDER BY v <-> %L LIMIT %s)', q, tab, q, k);
BEGIN
    PERFORM set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'on', true),
            set_config('hnsw.ef_search', '400', true);
    EXECUTE sql INTO by_index;
    PERFORM set_config('enable_seqscan', 'on', true), set_config('enable_indexscan', 'off', true),
            set_config('enable_bitmapscan', 'off', true);
    EXECUTE sql INTO by_seq;
    IF by_index IS DISTINCT FROM by_seq THEN
        RAISE NOTICE 'index % seq %', by_index, by_seq;
    END IF;
    RETURN by_index IS NOT DISTINCT FROM by_seq;
END $$;

-- vec(i): a deterministic 4-dimension vector with small integer coordinates; distances are exact.
CREATE FUNCTION pg_temp.vec(i int) RETURNS vector LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[(i * 37 + 11) % 101, (i * 53 + 7) % 103, (i * 71 + 3) % 107, (i * 29 + 5) % 109]::real[]::vector
$$;

-- An index built on an empty table
CREATE TABLE hnsw_dml (id int PRIMARY KEY, v vector(4));
CREATE INDEX hnsw_dml_v ON hnsw_dml USING hnsw (v);
SELECT * FROM meridian.hnsw_check('hnsw_dml_v');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_dml ORDER BY v <-> '[1,2,3,4]' LIMIT 5;
SELECT id FROM hnsw_dml ORDER BY v <-> '[1,2,3,4]' LIMIT 5;
-- the first rows
INSERT INTO hnsw_dml VALUES (1, '[1,1,1,1]');
SELECT * FROM meridian.hnsw_check('hnsw_dml_v');
SELECT id FROM hnsw_dml ORDER BY v <-> '[1,2,3,4]' LIMIT 5;
INSERT INTO hnsw_dml VALUES (2, '[2,2,2,2]'), (3, '[3,3,3,3]');
SELECT id, v <-> '[3,3,3,4]' AS distance FROM hnsw_dml ORDER BY v <-> '[3,3,3,4]' LIMIT 5;
SELECT elements, live, deleted, unreachable, avg_out_degree, free_slots FROM meridian.hnsw_check('hnsw_dml_v');
RESET enable_seqscan;
-- then many
INSERT INTO hnsw_dml SELECT i, pg_temp.vec(i) FROM generate_series(4, 400) i;
SELECT elements, live, deleted, unreachable, free_slots FROM meridian.hnsw_check('hnsw_dml_v');
SELECT pg_temp.index_matches_seq('hnsw_dml', '[50,50,50,50]', 30) AS q1,
       pg_temp.index_matches_seq('hnsw_dml', '[0,0,0,0]', 30) AS q2,
       pg_temp.index_matches_seq('hnsw_dml', '[3,3,3,4]', 30) AS q3;

-- NULLs are not indexed and never returned by the index
INSERT INTO hnsw_dml SELECT i, NULL FROM generate_series(401, 420) i;
SELECT elements, live FROM meridian.hnsw_check('hnsw_dml_v');
SET enable_seqscan = off;
SET hnsw.ef_search = 400;
SELECT count(*) AS returned, count(v) AS not_null
FROM (SELECT id, v FROM hnsw_dml ORDER BY v <-> '[50,50,50,50]' LIMIT 1000) s;
RESET enable_seqscan;
RESET hnsw.ef_search;

-- UPDATE of the vector adds a new element; the old one goes at VACUUM
UPDATE hnsw_dml SET v = v + '[0.5,0.5,0.5,0.5]' WHERE id % 10 = 0;
SELECT elements, live, deleted, unreachable, free_slots FROM meridian.hnsw_check('hnsw_dml_v');
SELECT pg_temp.index_matches_seq('hnsw_dml', '[50,50,50,50]', 30) AS q1,
       pg_temp.index_matches_seq('hnsw_dml', '[10.5,20.5,30.5,40.5]', 30) AS q2;
-- an UPDATE of another column only (HOT) adds nothing
ALTER TABLE hnsw_dml ADD COLUMN note text;
UPDATE hnsw_dml SET note = 'x' WHERE id <= 5;
SELECT elements FROM meridian.hnsw_check('hnsw_dml_v');
VACUUM hnsw_dml;
SELECT elements, live, deleted, unreachable, free_slots FROM meridian.hnsw_check('hnsw_dml_v');

-- DELETE: deleted rows are never returned, before and after VACUUM
DELETE FROM hnsw_dml WHERE id % 3 = 0;
SELECT pg_temp.index_matches_seq('hnsw_dml', '[50,50,50,50]', 30) AS q1,
       pg_temp.index_matches_seq('hnsw_dml', '[0,0,0,0]', 30) AS q2;
SET enable_seqscan = off;
SET hnsw.ef_search = 400;
SELECT count(*) AS returned, count(*) FILTER (WHERE id % 3 = 0) AS deleted_returned
FROM (SELECT id FROM hnsw_dml ORDER BY v <-> '[50,50,50,50]' LIMIT 1000) s;
RESET enable_seqscan;
RESET hnsw.ef_search;
VACUUM hnsw_dml;
-- no deleted element is left, none is unreachable, and the freed slots are on offer
SELECT elements, live, deleted, unreachable, free_slots FROM meridian.hnsw_check('hnsw_dml_v');
SELECT (SELECT count(v) FROM hnsw_dml) AS non_null_rows;
SELECT pg_temp.index_matches_seq('hnsw_dml', '[50,50,50,50]', 30) AS q1,
       pg_temp.index_matches_seq('hnsw_dml', '[0,0,0,0]', 30) AS q2,
       pg_temp.index_matches_seq('hnsw_dml', '[100,100,100,100]', 30) AS q3;
SET enable_seqscan = off;
SET hnsw.ef_search = 400;
SELECT count(*) AS returned, count(*) FILTER (WHERE id % 3 = 0) AS deleted_returned
FROM (SELECT id FROM hnsw_dml ORDER BY v <-> '[50,50,50,50]' LIMIT 1000) s;
RESET enable_seqscan;
RESET hnsw.ef_search;

-- New rows take the freed slots (and so do the few records that hold upper-level lists)
SELECT elements, free_slots, elements + free_slots AS slots FROM meridian.hnsw_check('hnsw_dml_v');
INSERT INTO hnsw_dml SELECT i, pg_temp.vec(i) FROM generate_series(1001, 1100) i;
SELECT elements, live, deleted, unreachable, free_slots, elements + free_slots AS slots
FROM meridian.hnsw_check('hnsw_dml_v');
SELECT pg_temp.index_matches_seq('hnsw_dml', '[50,50,50,50]', 30) AS q1,
       pg_temp.index_matches_seq('hnsw_dml', '[0,0,0,0]', 30) AS q2;

-- Deleting everything leaves an empty graph that takes new rows again
DELETE FROM hnsw_dml;
VACUUM hnsw_dml;
SELECT elements, live, deleted, unreachable, max_level, entry_point, free_slots
FROM meridian.hnsw_check('hnsw_dml_v');
SET enable_seqscan = off;
SELECT id FROM hnsw_dml ORDER BY v <-> '[1,2,3,4]' LIMIT 5;
INSERT INTO hnsw_dml SELECT i, pg_temp.vec(i) FROM generate_series(1, 50) i;
SELECT elements, live, deleted, unreachable FROM meridian.hnsw_check('hnsw_dml_v');
SELECT count(*) FROM (SELECT id FROM hnsw_dml ORDER BY v <-> '[1,2,3,4]' LIMIT 100) s;
RESET enable_seqscan;
SELECT pg_temp.index_matches_seq('hnsw_dml', '[50,50,50,50]', 20) AS q1;

-- TRUNCATE empties the index
TRUNCATE hnsw_dml;
SELECT elements, live, entry_point, free_slots FROM meridian.hnsw_check('hnsw_dml_v');
INSERT INTO hnsw_dml SELECT i, pg_temp.vec(i) FROM generate_series(1, 50) i;
SELECT elements, live, unreachable FROM meridian.hnsw_check('hnsw_dml_v');
SELECT pg_temp.index_matches_seq('hnsw_dml', '[50,50,50,50]', 20) AS q1;

-- REINDEX (also CONCURRENTLY) rebuilds the graph from the live rows
DELETE FROM hnsw_dml WHERE id % 2 = 0;
SELECT elements, live FROM meridian.hnsw_check('hnsw_dml_v');
REINDEX INDEX hnsw_dml_v;
SELECT elements, live, deleted, unreachable, free_slots FROM meridian.hnsw_check('hnsw_dml_v');
REINDEX TABLE hnsw_dml;
REINDEX INDEX CONCURRENTLY hnsw_dml_v;
SELECT elements, live, deleted, unreachable, free_slots FROM meridian.hnsw_check('hnsw_dml_v');
SELECT pg_temp.index_matches_seq('hnsw_dml', '[50,50,50,50]', 20) AS q1;
DROP INDEX hnsw_dml_v;

-- CREATE INDEX CONCURRENTLY
INSERT INTO hnsw_dml SELECT i, pg_temp.vec(i) FROM generate_series(3001, 3300) i;
CREATE INDEX CONCURRENTLY hnsw_dml_cic ON hnsw_dml USING hnsw (v);
SELECT indisvalid, indisready FROM pg_index WHERE indexrelid = 'hnsw_dml_cic'::regclass;
SELECT elements, live, unreachable FROM meridian.hnsw_check('hnsw_dml_cic');
SELECT (SELECT count(*) FROM hnsw_dml) AS table_rows;
SELECT pg_temp.index_matches_seq('hnsw_dml', '[50,50,50,50]', 30) AS q1;
DROP INDEX CONCURRENTLY hnsw_dml_cic;

-- A partial index answers only queries that imply its predicate
CREATE INDEX hnsw_dml_part ON hnsw_dml USING hnsw (v) WHERE id > 3150;
SELECT elements, live FROM meridian.hnsw_check('hnsw_dml_part');
SELECT count(*) FROM hnsw_dml WHERE id > 3150;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_dml WHERE id > 3150 ORDER BY v <-> '[50,50,50,50]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_dml WHERE id > 3000 ORDER BY v <-> '[50,50,50,50]' LIMIT 10;
SET hnsw.ef_search = 400;
CREATE TEMP TABLE hnsw_dml_part_index AS
SELECT array(SELECT v <-> '[50,50,50,50]' FROM hnsw_dml WHERE id > 3150 ORDER BY v <-> '[50,50,50,50]' LIMIT 20) AS d;
RESET enable_seqscan;
SET enable_indexscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_dml WHERE id > 3150 ORDER BY v <-> '[50,50,50,50]' LIMIT 10;
SELECT array(SELECT v <-> '[50,50,50,50]' FROM hnsw_dml WHERE id > 3150 ORDER BY v <-> '[50,50,50,50]' LIMIT 20) = d
       AS same_20
FROM hnsw_dml_part_index;
RESET enable_indexscan;
RESET hnsw.ef_search;
-- rows inserted later go into the partial index only when they match
INSERT INTO hnsw_dml VALUES (0, '[1,1,1,1]'), (4000, '[1,1,1,1]');
SELECT elements, live FROM meridian.hnsw_check('hnsw_dml_part');
DROP TABLE hnsw_dml;

-- Unlogged table: the index gets an empty init fork (ambuildempty) and works
CREATE UNLOGGED TABLE hnsw_unlogged (id int, v vector(4));
CREATE INDEX hnsw_unlogged_v ON hnsw_unlogged USING hnsw (v);
SELECT relpersistence FROM pg_class WHERE relname = 'hnsw_unlogged_v';
INSERT INTO hnsw_unlogged SELECT i, pg_temp.vec(i) FROM generate_series(1, 200) i;
SELECT elements, live, unreachable FROM meridian.hnsw_check('hnsw_unlogged_v');
SELECT pg_temp.index_matches_seq('hnsw_unlogged', '[50,50,50,50]', 20) AS q1;
CREATE INDEX hnsw_unlogged_v2 ON hnsw_unlogged USING hnsw (v vector_cosine_ops);
SELECT elements, live, unreachable FROM meridian.hnsw_check('hnsw_unlogged_v2');
ALTER TABLE hnsw_unlogged SET LOGGED;
SELECT relpersistence FROM pg_class WHERE relname = 'hnsw_unlogged_v';
SELECT elements, live, unreachable FROM meridian.hnsw_check('hnsw_unlogged_v');
SELECT pg_temp.index_matches_seq('hnsw_unlogged', '[50,50,50,50]', 20) AS q1;
DROP TABLE hnsw_unlogged;

-- Temporary table
CREATE TEMP TABLE hnsw_temp (id int, v vector(4));
INSERT INTO hnsw_temp SELECT i, pg_temp.vec(i) FROM generate_series(1, 100) i;
CREATE INDEX hnsw_temp_v ON hnsw_temp USING hnsw (v);
INSERT INTO hnsw_temp SELECT i, pg_temp.vec(i) FROM generate_series(101, 200) i;
SELECT elements, live, unreachable FROM meridian.hnsw_check('hnsw_temp_v');
SELECT pg_temp.index_matches_seq('hnsw_temp', '[50,50,50,50]', 20) AS q1;
DELETE FROM hnsw_temp WHERE id % 2 = 0;
VACUUM hnsw_temp;
SELECT elements, live, deleted, unreachable, free_slots FROM meridian.hnsw_check('hnsw_temp_v');
SELECT pg_temp.index_matches_seq('hnsw_temp', '[50,50,50,50]', 20) AS q1;
DROP TABLE hnsw_temp;

-- A build that outgrows maintenance_work_mem writes the graph so far and inserts the rest
CREATE TABLE hnsw_big (id int, v vector(256));
INSERT INTO hnsw_big
SELECT i, array_agg(((i * i * 31 + k * k * 17 + i * k * 7) % 1009)::real ORDER BY k)::vector
FROM generate_series(1, 800) i, generate_series(1, 256) k GROUP BY i;
SET maintenance_work_mem = '1MB';
CREATE INDEX hnsw_big_v ON hnsw_big USING hnsw (v);
RESET maintenance_work_mem;
SELECT elements, live, deleted, unreachable FROM meridian.hnsw_check('hnsw_big_v');
SELECT pg_temp.index_matches_seq('hnsw_big', (SELECT v FROM hnsw_big WHERE id = 1), 10) AS q1,
       pg_temp.index_matches_seq('hnsw_big', (SELECT v FROM hnsw_big WHERE id = 800), 10) AS q2;
DROP TABLE hnsw_big;

RESET hnsw.build_threads;
