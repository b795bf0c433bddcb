-- The hnsw access method: index definitions it rejects, query errors, meridian.hnsw_check misuse.

-- sqlstate_of(query) runs a statement and shows the SQLSTATE and message it fails with.
CREATE FUNCTION pg_temp.sqlstate_of(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

CREATE TABLE hnsw_err (id int, n int, f real[], t text, v vector(3), w vector(3), x vector);
INSERT INTO hnsw_err VALUES (1, 1, '{1,2,3}', 'a', '[1,2,3]', '[3,2,1]', '[1,2]');

-- A column without dimensions
CREATE INDEX ON hnsw_err USING hnsw (x);
CREATE INDEX ON hnsw_err USING hnsw ((v + w));
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ('CREATE INDEX ON hnsw_err USING hnsw (x)'),
    ('CREATE INDEX ON hnsw_err USING hnsw (x vector_cosine_ops)'),
    ('CREATE INDEX ON hnsw_err USING hnsw ((v + w))')) t(q);

-- Not a vector column, or not an hnsw operator class
CREATE INDEX ON hnsw_err USING hnsw (n);
CREATE INDEX ON hnsw_err USING hnsw (f);
CREATE INDEX ON hnsw_err USING hnsw (v int4_ops);
CREATE INDEX ON hnsw_err USING hnsw (v vector_ops);
CREATE INDEX ON hnsw_err USING hnsw (v no_such_ops);
CREATE INDEX ON hnsw_err USING hnsw (n vector_l2_ops);
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ('CREATE INDEX ON hnsw_err USING hnsw (n)'),
    ('CREATE INDEX ON hnsw_err USING hnsw (t)'),
    ('CREATE INDEX ON hnsw_err USING hnsw (v int4_ops)'),
    ('CREATE INDEX ON hnsw_err USING hnsw (v vector_ops)'),
    ('CREATE INDEX ON hnsw_err USING hnsw (n vector_l2_ops)')) t(q);

-- What the access method does not support
CREATE INDEX ON hnsw_err USING hnsw (v, w);
CREATE INDEX ON hnsw_err USING hnsw (v) INCLUDE (id);
CREATE UNIQUE INDEX ON hnsw_err USING hnsw (v);
CREATE INDEX ON hnsw_err USING hnsw (v DESC);
CREATE INDEX ON hnsw_err USING hnsw (v NULLS FIRST);
ALTER TABLE hnsw_err ADD CONSTRAINT hnsw_err_excl EXCLUDE USING hnsw (v WITH <->);
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ('CREATE INDEX ON hnsw_err USING hnsw (v, w)'),
    ('CREATE INDEX ON hnsw_err USING hnsw (v vector_l2_ops, w vector_cosine_ops)'),
    ('CREATE INDEX ON hnsw_err USING hnsw (v) INCLUDE (id)'),
    ('CREATE UNIQUE INDEX ON hnsw_err USING hnsw (v)'),
    ('CREATE INDEX ON hnsw_err USING hnsw (v DESC)')) t(q);
CREATE INDEX hnsw_err_v ON hnsw_err USING hnsw (v);
CLUSTER hnsw_err USING hnsw_err_v;

-- Expression indexes: fine when the expression has dimensions
CREATE INDEX hnsw_err_expr ON hnsw_err USING hnsw ((f::vector(3)));
CREATE INDEX hnsw_err_expr2 ON hnsw_err USING hnsw ((x::vector(2)) vector_cosine_ops);
SELECT elements, live FROM meridian.hnsw_check('hnsw_err_expr');
SELECT elements, live FROM meridian.hnsw_check('hnsw_err_expr2');
-- ... and a row whose expression fails cannot be inserted
INSERT INTO hnsw_err (id, f, x) VALUES (2, '{1,2}', '[1,2]');
INSERT INTO hnsw_err (id, f, x) VALUES (2, '{1,2,3}', '[1,2,3]');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_err ORDER BY f::vector(3) <-> '[1,1,1]' LIMIT 1;
SELECT id FROM hnsw_err ORDER BY f::vector(3) <-> '[1,1,1]' LIMIT 1;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_err ORDER BY x::vector(2) <=> '[1,1]' LIMIT 1;
SELECT id FROM hnsw_err ORDER BY x::vector(2) <=> '[1,1]' LIMIT 1;
RESET enable_seqscan;
DROP INDEX hnsw_err_expr, hnsw_err_expr2;

-- A query vector with other dimensions than the index
INSERT INTO hnsw_err (id, v) SELECT i, ARRAY[i, i * 2, i * 3]::real[]::vector FROM generate_series(10, 40) i;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_err ORDER BY v <-> '[1,2]' LIMIT 1;
SELECT id FROM hnsw_err ORDER BY v <-> '[1,2]' LIMIT 1;
SELECT id FROM hnsw_err ORDER BY v <-> '[1,2,3,4]' LIMIT 1;
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ($$SELECT id FROM hnsw_err ORDER BY v <-> '[1,2]' LIMIT 1$$),
    ($$SELECT id FROM hnsw_err ORDER BY v <-> '[1,2,3,4]' LIMIT 1$$)) t(q);
-- the sequential scan says the same
SET enable_seqscan = on;
SET enable_indexscan = off;
SELECT pg_temp.sqlstate_of($$SELECT id FROM hnsw_err ORDER BY v <-> '[1,2]' LIMIT 1$$);
RESET enable_indexscan;
-- a NULL query vector: every distance is NULL, the scan still returns rows
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM hnsw_err ORDER BY v <-> NULL LIMIT 5) s;
RESET enable_seqscan;

-- Inserting a row with other dimensions into an expression index
CREATE TABLE hnsw_err2 (id int, x vector);
CREATE INDEX ON hnsw_err2 USING hnsw ((x::vector(2)));
INSERT INTO hnsw_err2 VALUES (1, '[1,2]');
INSERT INTO hnsw_err2 VALUES (2, '[1,2,3]');
DROP TABLE hnsw_err2;

-- meridian.hnsw_check on what is not an hnsw index
CREATE INDEX hnsw_err_btree ON hnsw_err (id);
SELECT * FROM meridian.hnsw_check('hnsw_err_btree');
SELECT * FROM meridian.hnsw_check('hnsw_err');
SELECT * FROM meridian.hnsw_check('no_such_index');
SELECT * FROM meridian.hnsw_check(NULL);
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ($$SELECT meridian.hnsw_check('hnsw_err_btree')$$),
    ($$SELECT meridian.hnsw_check('hnsw_err')$$),
    ($$SELECT meridian.hnsw_check('pg_class_oid_index')$$)) t(q);

DROP TABLE hnsw_err;
