-- The vector type: text input and output, typmod, binary send/recv.
-- sqlstate_of(query) runs a statement and shows the SQLSTATE and message it fails with.
CREATE FUNCTION pg_temp.sqlstate_of(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Text input and output
SELECT '[1,2,3]'::vector;
SELECT '[-1,2.5,-3e-7]'::vector;
SELECT ' [ 1 ,2 ,	3 ] '::vector;
SELECT E'\n[\t1,\n2\r]\f'::vector;
SELECT '[1.23456789]'::vector;
SELECT '[0.1,1e-45,3.4028235e38,-3.4028235e38]'::vector;
SELECT '[-0,+5,0x10]'::vector;
SELECT '[1e-50]'::vector;  -- underflow to zero is accepted, as float4 strtof does
SELECT '[1,2,3]'::vector::text;
SELECT '[1,2,3]'::vector(3);
SELECT vector_dims('[1,2,3]'::vector(3));

-- Round trip of the shortest representation
SELECT v::text::vector = v AS round_trip
FROM (SELECT ('[' || string_agg((i * 0.123456789)::real::text, ',') || ']')::vector AS v
      FROM generate_series(1, 100) i) t;

-- Rejected input
SELECT '[1,NaN]'::vector;
SELECT '[Infinity]'::vector;
SELECT '[-inf,1]'::vector;
SELECT '[1e50]'::vector;
SELECT '[]'::vector;
SELECT '[ ]'::vector;
SELECT ''::vector;
SELECT '1,2,3'::vector;
SELECT '[1,2,3'::vector;
SELECT '[1,2,3]]'::vector;
SELECT '[1,,3]'::vector;
SELECT '[1,2,]'::vector;
SELECT '[,1]'::vector;
SELECT '[1 2]'::vector;
SELECT '[hello]'::vector;
SELECT '[1,2] x'::vector;
SELECT '[1,2]'::vector(3);
SELECT '[1,2,3,4]'::vector(3);
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ($$SELECT '[NaN]'::vector$$),
    ($$SELECT '[inf]'::vector$$),
    ($$SELECT '[-Infinity]'::vector$$),
    ($$SELECT '[1e50]'::vector$$),
    ($$SELECT '[-1e39]'::vector$$),
    ($$SELECT '[]'::vector$$),
    ($$SELECT '[1,x]'::vector$$),
    ($$SELECT '(1,2)'::vector$$),
    ($$SELECT '[1,2]'::vector(3)$$)) t(q);

-- Dimensions: 16000 is the limit, in text too
SELECT vector_dims(('[' || repeat('1,', 15999) || '1]')::vector);
SELECT vector_dims(('[' || repeat('1,', 15999) || '1]')::vector(16000));
SELECT pg_temp.sqlstate_of($$SELECT ('[' || repeat('1,', 16000) || '1]')::vector$$);

-- Typmod bounds
CREATE TABLE vector_io_t (v vector(3));
\d vector_io_t
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ($$CREATE TABLE vector_io_bad (v vector(0))$$),
    ($$CREATE TABLE vector_io_bad (v vector(-1))$$),
    ($$CREATE TABLE vector_io_bad (v vector(16001))$$),
    ($$CREATE TABLE vector_io_bad (v vector(2, 3))$$),
    ($$SELECT '[1]'::vector(0)$$)) t(q);
CREATE TABLE vector_io_max (v vector(16000));
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'vector_io_max'::regclass AND attname = 'v';
DROP TABLE vector_io_max;

-- Typmod enforced on assignment
INSERT INTO vector_io_t VALUES ('[1,2,3]'), ('[4,5,6]');
INSERT INTO vector_io_t VALUES ('[1,2]');
INSERT INTO vector_io_t SELECT '[1,2,3,4]'::vector;
INSERT INTO vector_io_t SELECT '[7,8,9]'::vector;
UPDATE vector_io_t SET v = '[1]'::vector WHERE v = '[7,8,9]';
SELECT * FROM vector_io_t ORDER BY v;
SELECT '[1,2]'::vector::vector(2), '[1,2]'::vector::vector(3);

-- Binary send: int16 dim, int16 unused, float4s, all in network byte order
SELECT vector_send('[1,2,3]');
SELECT vector_send('[-1.5]');
SELECT vector_send('[0,-0]');
SELECT length(vector_send(array_fill(1, ARRAY[16000])::vector));

-- Binary round trip through COPY (the server writes a file under /tmp named after this database)
SELECT current_database() AS db \gset
\set binfile '/tmp/meridian_' :db '_vector.bin'
CREATE TABLE vector_io_bin (id int, v vector);
INSERT INTO vector_io_bin VALUES (1, '[1,2,3]'), (2, '[-0.1,1e-30,3.4028235e38]'), (3, NULL),
    (4, array_fill(0.5, ARRAY[1000])::vector);
COPY vector_io_bin TO :'binfile' WITH (FORMAT binary);
CREATE TABLE vector_io_bin2 (id int, v vector);
COPY vector_io_bin2 FROM :'binfile' WITH (FORMAT binary);
SELECT a.id, a.v IS NOT DISTINCT FROM b.v AS same, vector_dims(b.v)
FROM vector_io_bin a JOIN vector_io_bin2 b USING (id) ORDER BY a.id;
-- recv checks the typmod of the target column
CREATE TABLE vector_io_bin3 (id int, v vector(3));
COPY vector_io_bin3 FROM :'binfile' WITH (FORMAT binary);
SELECT count(*) FROM vector_io_bin3;

-- Bad binary input, written as bytea and read back as vector (a binary bytea is its raw bytes)
CREATE TABLE vector_io_recv (v vector);
COPY (SELECT '\x000200003f80000040000000'::bytea) TO :'binfile' WITH (FORMAT binary);
COPY vector_io_recv FROM :'binfile' WITH (FORMAT binary);
SELECT * FROM vector_io_recv;
COPY (SELECT '\x000200013f80000040000000'::bytea) TO :'binfile' WITH (FORMAT binary);
COPY vector_io_recv FROM :'binfile' WITH (FORMAT binary);
COPY (SELECT '\x00000000'::bytea) TO :'binfile' WITH (FORMAT binary);
COPY vector_io_recv FROM :'binfile' WITH (FORMAT binary);
COPY (SELECT '\xffff0000'::bytea) TO :'binfile' WITH (FORMAT binary);
COPY vector_io_recv FROM :'binfile' WITH (FORMAT binary);
COPY (SELECT '\x3e810000'::bytea) TO :'binfile' WITH (FORMAT binary);
COPY vector_io_recv FROM :'binfile' WITH (FORMAT binary);
COPY (SELECT '\x000100007fc00000'::bytea) TO :'binfile' WITH (FORMAT binary);
COPY vector_io_recv FROM :'binfile' WITH (FORMAT binary);
COPY (SELECT '\x000100007f800000'::bytea) TO :'binfile' WITH (FORMAT binary);
COPY vector_io_recv FROM :'binfile' WITH (FORMAT binary);
COPY (SELECT '\x000200003f800000'::bytea) TO :'binfile' WITH (FORMAT binary);
COPY vector_io_recv FROM :'binfile' WITH (FORMAT binary);
COPY (SELECT '\x000100003f80000040000000'::bytea) TO :'binfile' WITH (FORMAT binary);
COPY vector_io_recv FROM :'binfile' WITH (FORMAT binary);
SELECT * FROM vector_io_recv;

-- Storage: external (no compression), like pgvector
SELECT typstorage, typalign FROM pg_type WHERE typname = 'vector';

DROP TABLE vector_io_t, vector_io_bin, vector_io_bin2, vector_io_bin3, vector_io_recv;
