-- The hnsw access method: its catalog surface, index options (m, ef_construction), the hnsw.*
-- settings and the dimension limits.
-- sqlstate_of(query) runs a statement and shows the SQLSTATE and message it fails with.
CREATE FUNCTION pg_temp.sqlstate_of(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Catalog: the access method and its three operator classes (l2 is the default)
SELECT amname, amtype FROM pg_am WHERE amname = 'hnsw';
SELECT opc.opcname, opc.opcdefault, o.oprname, amop.amoppurpose
FROM pg_opclass opc
JOIN pg_am am ON am.oid = opc.opcmethod AND am.amname = 'hnsw'
JOIN pg_amop amop ON amop.amopfamily = opc.opcfamily
JOIN pg_operator o ON o.oid = amop.amopopr
ORDER BY opc.opcname;
SELECT opc.opcname, amproc.amprocnum, amproc.amproc::regproc
FROM pg_opclass opc
JOIN pg_am am ON am.oid = opc.opcmethod AND am.amname = 'hnsw'
JOIN pg_amproc amproc ON amproc.amprocfamily = opc.opcfamily
ORDER BY opc.opcname, amproc.amprocnum;
-- The AM's advertised capabilities
SELECT p.name, pg_indexam_has_property(am.oid, p.name)
FROM pg_am am, unnest(ARRAY['can_order', 'can_unique', 'can_multi_col', 'can_include']) p(name)
WHERE am.amname = 'hnsw';
-- Build progress subphase names (pg_stat_progress_create_index.phase)
SELECT p, pg_indexam_progress_phasename(am.oid, p)
FROM pg_am am, generate_series(0, 6) p
WHERE am.amname = 'hnsw'
ORDER BY p;

CREATE TABLE hnsw_opt (id int, v vector(3));
INSERT INTO hnsw_opt SELECT i, ARRAY[i, i % 7, i % 11]::real[]::vector FROM generate_series(1, 30) i;

-- m: 2..100
CREATE INDEX hnsw_opt_m1 ON hnsw_opt USING hnsw (v) WITH (m = 1);
CREATE INDEX hnsw_opt_m101 ON hnsw_opt USING hnsw (v) WITH (m = 101);
CREATE INDEX hnsw_opt_m2 ON hnsw_opt USING hnsw (v) WITH (m = 2);
CREATE INDEX hnsw_opt_m100 ON hnsw_opt USING hnsw (v) WITH (m = 100, ef_construction = 200);
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ('CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (m = 1)'),
    ('CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (m = 101)'),
    ('CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (m = 0)'),
    ('CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (m = -1)'),
    ($$CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (m = 'x')$$),
    -- PostgreSQL rounds a fractional value of any integer reloption
    ('CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (m = 2.5)')) t(q);

-- ef_construction: 4..1000, and at least 2 * m
CREATE INDEX hnsw_opt_efc3 ON hnsw_opt USING hnsw (v) WITH (ef_construction = 3);
CREATE INDEX hnsw_opt_efc1001 ON hnsw_opt USING hnsw (v) WITH (ef_construction = 1001);
CREATE INDEX hnsw_opt_efc4 ON hnsw_opt USING hnsw (v) WITH (m = 2, ef_construction = 4);
CREATE INDEX hnsw_opt_efc1000 ON hnsw_opt USING hnsw (v) WITH (ef_construction = 1000);
CREATE INDEX hnsw_opt_efc_lt ON hnsw_opt USING hnsw (v) WITH (m = 40, ef_construction = 79);
CREATE INDEX hnsw_opt_efc_eq ON hnsw_opt USING hnsw (v) WITH (m = 40, ef_construction = 80);
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ('CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (ef_construction = 3)'),
    ('CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (ef_construction = 1001)'),
    ('CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (m = 3, ef_construction = 5)'),
    -- the default ef_construction (64) is too small for m = 33
    ('CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (m = 33)'),
    -- the default m (16) needs ef_construction >= 32
    ('CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (ef_construction = 31)'),
    ('CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (ef_construction = 32)')) t(q);

-- Unknown options
CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (foo = 1);
CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (ef_search = 10);
CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (lists = 10);
SELECT pg_temp.sqlstate_of('CREATE INDEX ON hnsw_opt USING hnsw (v) WITH (foo = 1)');

-- Options are stored as reloptions
SELECT c.relname, c.reloptions
FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
WHERE i.indrelid = 'hnsw_opt'::regclass
ORDER BY c.relname;
-- Every accepted index is a complete graph over the 30 rows
SELECT c.relname, h.elements, h.live, h.unreachable
FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid, meridian.hnsw_check(c.oid) h
WHERE i.indrelid = 'hnsw_opt'::regclass
ORDER BY c.relname;

-- ALTER INDEX checks the bounds at once; the 2 * m rule is checked when the graph is rebuilt,
-- and the graph keeps the m it was built with until then
ALTER INDEX hnsw_opt_m2 SET (m = 101);
ALTER INDEX hnsw_opt_m2 SET (ef_construction = 3);
ALTER INDEX hnsw_opt_m2 SET (m = 50);
SELECT reloptions FROM pg_class WHERE relname = 'hnsw_opt_m2';
SELECT count(*) FROM (SELECT id FROM hnsw_opt ORDER BY v <-> '[1,1,1]' LIMIT 5) s;
REINDEX INDEX hnsw_opt_m2;
ALTER INDEX hnsw_opt_m2 SET (m = 4);
REINDEX INDEX hnsw_opt_m2;
ALTER INDEX hnsw_opt_m2 RESET (m);
REINDEX INDEX hnsw_opt_m2;
SELECT reloptions FROM pg_class WHERE relname = 'hnsw_opt_m2';
SELECT elements, live, unreachable FROM meridian.hnsw_check('hnsw_opt_m2');
DROP TABLE hnsw_opt;

-- Settings: defaults
SHOW hnsw.ef_search;
SHOW hnsw.iterative_scan;
SHOW hnsw.max_scan_tuples;
SHOW hnsw.build_threads;
SELECT name, vartype, min_val, max_val, enumvals, context
FROM pg_settings WHERE name LIKE 'hnsw.%' ORDER BY name;

-- hnsw.ef_search: 1..1000
SET hnsw.ef_search = 0;
SET hnsw.ef_search = 1001;
SET hnsw.ef_search = -1;
SET hnsw.ef_search = 1;
SHOW hnsw.ef_search;
SET hnsw.ef_search = 1000;
SHOW hnsw.ef_search;
RESET hnsw.ef_search;
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ('SET hnsw.ef_search = 0'),
    ('SET hnsw.ef_search = 1001'),
    ($$SET hnsw.ef_search = 'many'$$)) t(q);

-- hnsw.iterative_scan: off | relaxed_order | strict_order
SET hnsw.iterative_scan = bogus;
SET hnsw.iterative_scan = on;
SET hnsw.iterative_scan = off;
SHOW hnsw.iterative_scan;
SET hnsw.iterative_scan = relaxed_order;
SHOW hnsw.iterative_scan;
SET hnsw.iterative_scan = strict_order;
SHOW hnsw.iterative_scan;
RESET hnsw.iterative_scan;
SELECT pg_temp.sqlstate_of($$SET hnsw.iterative_scan = 'bogus'$$);

-- hnsw.max_scan_tuples: at least 1
SET hnsw.max_scan_tuples = 0;
SET hnsw.max_scan_tuples = 1;
RESET hnsw.max_scan_tuples;

-- hnsw.build_threads: 0..64
SET hnsw.build_threads = -1;
SET hnsw.build_threads = 65;
SET hnsw.build_threads = 64;
RESET hnsw.build_threads;

-- The hnsw prefix is reserved
SET hnsw.no_such_setting = 1;
SELECT pg_temp.sqlstate_of('SET hnsw.no_such_setting = 1');

-- Dimensions: a record must fit in a page, so the limit depends on m
-- (2003 with the default m = 16, 1835 with m = 100)
CREATE TABLE hnsw_dims (a vector(2003), b vector(2004), c vector(1835), d vector(1836), e vector(1));
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ('CREATE INDEX ON hnsw_dims USING hnsw (a)'),
    ('CREATE INDEX ON hnsw_dims USING hnsw (b)'),
    ('CREATE INDEX ON hnsw_dims USING hnsw (c) WITH (m = 100, ef_construction = 200)'),
    ('CREATE INDEX ON hnsw_dims USING hnsw (d) WITH (m = 100, ef_construction = 200)'),
    ('CREATE INDEX ON hnsw_dims USING hnsw (b) WITH (m = 8)'),
    ('CREATE INDEX ON hnsw_dims USING hnsw (e)')) t(q);
CREATE INDEX ON hnsw_dims USING hnsw (b);
-- A 2003-dimension index works: its records straddle pages
INSERT INTO hnsw_dims (a)
SELECT array_fill(i::real, ARRAY[2003])::vector FROM generate_series(1, 20) i;
CREATE INDEX hnsw_dims_a ON hnsw_dims USING hnsw (a);
INSERT INTO hnsw_dims (a)
SELECT array_fill(i::real, ARRAY[2003])::vector FROM generate_series(21, 40) i;
SELECT elements, live, unreachable FROM meridian.hnsw_check('hnsw_dims_a');
SET enable_seqscan = off;
SELECT a[1] FROM (SELECT a::real[] AS a FROM hnsw_dims
                  ORDER BY a <-> array_fill(22.2::real, ARRAY[2003])::vector LIMIT 3) s;
RESET enable_seqscan;
DROP TABLE hnsw_dims;
