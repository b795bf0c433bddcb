-- VACUUM at scale: more freed slots than a meta page could list (the free chain), all reused by
-- later inserts; lists are repaired in place, so the graph keeps its degree and every row stays
-- findable through the index.
SET hnsw.build_threads = 1;
CREATE FUNCTION hnsw_vac_vector(seed int) RETURNS vector LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT array_agg((hashint4(seed * 64 + j) & 65535)::real / 65536 ORDER BY j)::vector
  FROM generate_series(1, 8) AS j $$;

CREATE TABLE hnsw_vac (id int PRIMARY KEY, v vector(8) NOT NULL);
INSERT INTO hnsw_vac SELECT i, hnsw_vac_vector(i) FROM generate_series(1, 8000) i;
CREATE INDEX hnsw_vac_v ON hnsw_vac USING hnsw (v) WITH (m = 8, ef_construction = 32);
CREATE TEMP TABLE degree_before AS SELECT avg_out_degree FROM meridian.hnsw_check('hnsw_vac_v');

DELETE FROM hnsw_vac WHERE hashint4(id) & 1023 < 512;   -- about half: far more than 2,000 slots
SELECT count(*) AS rows_left FROM hnsw_vac;
VACUUM hnsw_vac;
SELECT elements, live, deleted, unreachable, free_slots = 8000 - elements AS every_deleted_slot_free
FROM meridian.hnsw_check('hnsw_vac_v');
SELECT c.avg_out_degree >= 0.9 * b.avg_out_degree AS degree_kept
FROM meridian.hnsw_check('hnsw_vac_v') c, degree_before b;

INSERT INTO hnsw_vac SELECT i, hnsw_vac_vector(i) FROM generate_series(100001, 104000) i;
SELECT elements, live, unreachable, free_slots FROM meridian.hnsw_check('hnsw_vac_v');

SET enable_seqscan = off;
SET hnsw.ef_search = 100;
SELECT count(*) AS rows, count(*) FILTER (WHERE nn IS DISTINCT FROM id) AS not_found_by_own_vector
FROM (SELECT a.id, (SELECT b.id FROM hnsw_vac b ORDER BY b.v <-> a.v LIMIT 1) AS nn FROM hnsw_vac a) s;
RESET enable_seqscan;
RESET hnsw.ef_search;
DROP TABLE hnsw_vac;
DROP FUNCTION hnsw_vac_vector(int);
