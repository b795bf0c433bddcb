-- Regions (docs/regions.md): the catalog tables, create/set_local/drop_region, replicate_table's
-- checks, local_public_key without a key file, the region_status view and table_checksum.
-- Writes commit locally: with several regions registered they would be quorum writes
-- (docs/consistency.md), which sql/consistency.sql covers.
SET synchronous_commit = local;

-- sqlstate_of(query) runs a statement and shows the SQLSTATE and message it fails with.
CREATE FUNCTION pg_temp.sqlstate_of(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- The catalog tables are user catalog tables and extension configuration tables; progress is not.
SELECT c.oid::regclass AS catalog, c.reloptions,
       c.oid = ANY (e.extconfig) AS dumped_by_pg_dump
FROM pg_class c, pg_extension e
WHERE e.extname = 'meridian' AND c.relnamespace = 'meridian'::regnamespace AND c.relkind = 'r'
ORDER BY 1::text;
SELECT p.oid::regprocedure AS function, p.prorettype::regtype, p.provolatile, p.proisstrict,
       has_function_privilege('public', p.oid, 'execute') AS public_execute
FROM pg_proc p
WHERE p.pronamespace = 'meridian'::regnamespace
  AND p.proname IN ('create_region', 'set_local_region', 'drop_region', 'replicate_table',
                    'local_public_key', 'table_checksum')
ORDER BY 1::text;

-- create_region
SELECT meridian.create_region('us-east', 'host=10.0.0.1 port=5432 dbname=app');
SELECT meridian.create_region('eu-west', 'host=10.0.0.2 dbname=app', decode(repeat('ab', 32), 'hex'));
SELECT meridian.create_region(name => 'ap-south', conninfo => 'host=10.0.0.3 dbname=app',
                              public_key => decode(repeat('01', 32), 'hex'));
SELECT meridian.create_region('a', '');
SELECT meridian.create_region(repeat('x', 63), 'host=x');
SELECT name, conninfo, encode(public_key, 'hex') AS public_key, is_local FROM meridian.regions ORDER BY name;
-- Names that map to the same replication slot ("-" becomes "_") are refused.
SELECT meridian.create_region('us_east', 'host=x');
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ($$SELECT meridian.create_region('us-east', 'host=other')$$),
    ($$SELECT meridian.create_region('US-East', 'host=x')$$),
    ($$SELECT meridian.create_region('', 'host=x')$$),
    ($$SELECT meridian.create_region('-west', 'host=x')$$),
    ($$SELECT meridian.create_region('us east', 'host=x')$$),
    ($$SELECT meridian.create_region('us.east', 'host=x')$$),
    ($$SELECT meridian.create_region(repeat('x', 64), 'host=x')$$),
    ($$SELECT meridian.create_region('ok', 'host=x', '\x0102')$$),
    ($$SELECT meridian.create_region('ok', 'host=x', decode(repeat('00', 33), 'hex'))$$),
    ($$SELECT meridian.create_region('ok', 'host=x', '\x')$$),
    ($$SELECT meridian.create_region(NULL, 'host=x')$$),
    ($$SELECT meridian.create_region('ok', NULL)$$)
) AS t(q);
-- The table's own checks hold for direct writes too.
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ($$INSERT INTO meridian.regions VALUES ('Bad', 'x')$$),
    ($$INSERT INTO meridian.regions VALUES ('ok', 'x', '\x00')$$),
    ($$INSERT INTO meridian.regions VALUES ('ok', NULL)$$),
    ($$UPDATE meridian.regions SET is_local = true$$)
) AS t(q);
SELECT count(*) AS regions FROM meridian.regions;

-- set_local_region: exactly one local region; setting another clears the previous one.
SELECT meridian.set_local_region('us-east');
SELECT name FROM meridian.regions WHERE is_local;
SELECT meridian.set_local_region('us-east');
SELECT meridian.set_local_region('eu-west');
SELECT name, is_local FROM meridian.regions ORDER BY name;
SELECT pg_temp.sqlstate_of($$SELECT meridian.set_local_region('nowhere')$$);
SELECT name FROM meridian.regions WHERE is_local;

-- region_status: one row per peer (not the local region); peers without progress are not connected.
SELECT * FROM meridian.region_status ORDER BY region;
-- (One transaction: now() is the same in the INSERT and the view.)
BEGIN;
INSERT INTO meridian.region_progress (region, connected, applied_lsn, last_heartbeat)
VALUES ('us-east', true, '0/3000060', now() - interval '2 seconds'),
       ('ap-south', false, '0/16B3748', now() - interval '90 seconds');
UPDATE meridian.region_progress SET last_error = 'invalid replication message: bad signature' WHERE region = 'ap-south';
SELECT region, connected, applied_lsn, round(lag_seconds::numeric, 3) AS lag_seconds,
       last_heartbeat = now() - (lag_seconds * interval '1 second') AS lag_matches_heartbeat, last_error
FROM meridian.region_status ORDER BY region;
COMMIT;
-- The local region never shows, even with a stale progress row (set_local_region removes it).
INSERT INTO meridian.region_progress (region, connected) VALUES ('eu-west', true);
SELECT region FROM meridian.region_status ORDER BY region;
SELECT meridian.set_local_region('eu-west');
SELECT count(*) AS local_progress_rows FROM meridian.region_progress WHERE region = 'eu-west';
SELECT pg_temp.sqlstate_of($$INSERT INTO meridian.region_progress (region) VALUES ('nowhere')$$);

-- drop_region; its progress goes with it.
SELECT meridian.drop_region('ap-south');
SELECT pg_temp.sqlstate_of($$SELECT meridian.drop_region('ap-south')$$);
SELECT region FROM meridian.region_progress ORDER BY region;
SELECT meridian.drop_region('a');
SELECT meridian.drop_region(repeat('x', 63));
SELECT name, is_local FROM meridian.regions ORDER BY name;
SELECT region, connected, applied_lsn FROM meridian.region_status ORDER BY region;

-- At most 65 regions (64 peers: the progress kept in shared memory).
SELECT count(*) AS created FROM (SELECT meridian.create_region('many-' || i, 'host=x')
    FROM generate_series(1, 65 - (SELECT count(*) FROM meridian.regions)::int) AS i) AS s;
SELECT count(*) AS regions FROM meridian.regions;
SELECT pg_temp.sqlstate_of($$SELECT meridian.create_region('one-too-many', 'host=x')$$);
SELECT count(*) AS dropped FROM (SELECT meridian.drop_region(name) FROM meridian.regions WHERE name LIKE 'many-%') AS s;
SELECT meridian.create_region('one-more', 'host=x');
SELECT meridian.drop_region('one-more');

-- replicate_table: a plain, logged table with a primary key of exactly one uuid column.
CREATE TABLE items (id uuid PRIMARY KEY, embedding vector(3), payload jsonb);
CREATE TABLE items_generated (id uuid GENERATED ALWAYS AS (meridian.vector_id(embedding)) STORED PRIMARY KEY,
                              embedding vector(3) NOT NULL);
CREATE TABLE "Mixed Case" (key uuid PRIMARY KEY, n int);
SELECT meridian.replicate_table('items');
SELECT meridian.replicate_table('items');
SELECT meridian.replicate_table('items_generated');
SELECT meridian.replicate_table('"Mixed Case"');
SELECT relid FROM meridian.replicated_tables ORDER BY relid::text;
-- A dropped table leaves the replicated set (event trigger).
CREATE TABLE dropped_soon (id uuid PRIMARY KEY);
SELECT meridian.replicate_table('dropped_soon');
SELECT count(*) AS listed_before_drop FROM meridian.replicated_tables;
DROP TABLE dropped_soon;
SELECT count(*) AS listed_after_drop FROM meridian.replicated_tables;
CREATE TABLE no_key (id uuid, n int);
CREATE TABLE int_key (id int PRIMARY KEY);
CREATE TABLE text_key (id text PRIMARY KEY);
CREATE TABLE two_keys (a uuid, b uuid, PRIMARY KEY (a, b));
CREATE TABLE unique_only (id uuid UNIQUE NOT NULL);
CREATE UNLOGGED TABLE unlogged_t (id uuid PRIMARY KEY);
CREATE TEMP TABLE temp_t (id uuid PRIMARY KEY);
CREATE TABLE parted (id uuid PRIMARY KEY) PARTITION BY HASH (id);
CREATE VIEW items_view AS SELECT * FROM items;
CREATE TABLE nothing_ident (id uuid PRIMARY KEY);
ALTER TABLE nothing_ident REPLICA IDENTITY NOTHING;
CREATE TABLE full_ident (id uuid PRIMARY KEY);
ALTER TABLE full_ident REPLICA IDENTITY FULL;
CREATE DOMAIN uuid_domain AS uuid;
CREATE TABLE domain_key (id uuid_domain PRIMARY KEY);
SELECT q, pg_temp.sqlstate_of(format('SELECT meridian.replicate_table(%L)', q)) FROM (VALUES
    ('no_key'), ('int_key'), ('text_key'), ('two_keys'), ('unique_only'), ('unlogged_t'), ('temp_t'),
    ('parted'), ('items_view'), ('nothing_ident'), ('domain_key'), ('full_ident')
) AS t(q);
SELECT pg_temp.sqlstate_of($$SELECT meridian.replicate_table('missing_table')$$);
-- The detail names the key.
\set VERBOSITY verbose
SELECT meridian.replicate_table('two_keys');
\set VERBOSITY default
SELECT relid FROM meridian.replicated_tables ORDER BY relid::text;

-- local_public_key: the regress cluster has no key file.
SHOW meridian.signing_key_file;
SELECT pg_temp.sqlstate_of($$SELECT meridian.local_public_key()$$);
SELECT pg_temp.sqlstate_of($$SET meridian.signing_key_file = '/tmp/x'$$);
SELECT name, context, vartype FROM pg_settings WHERE name = 'meridian.signing_key_file';

-- table_checksum: "<rows>:<64 hex>", independent of row order and of the physical column order.
SELECT meridian.table_checksum('items') AS empty;
CREATE TABLE cs_a (id uuid PRIMARY KEY, v vector(3), j jsonb, t text, f float8, ts timestamptz, b bytea, n numeric);
CREATE TABLE cs_b (LIKE cs_a INCLUDING ALL);
CREATE TABLE cs_c (n numeric, b bytea, ts timestamptz, f float8, t text, j jsonb, v vector(3), id uuid PRIMARY KEY);
CREATE TEMP TABLE cs_rows AS
SELECT meridian.uuid_v5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', i::text) AS id,
       format('[%s,%s,%s]', i, i * 0.5, -i)::vector(3) AS v,
       jsonb_build_object('i', i, 'even', i % 2 = 0) AS j,
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'row ' || i END AS t,
       i / 3.0::float8 AS f,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour' AS ts,
       decode(md5(i::text), 'hex') AS b,
       i * 1.25 AS n
FROM generate_series(1, 500) AS i;
INSERT INTO cs_a SELECT * FROM cs_rows ORDER BY id;
INSERT INTO cs_b SELECT * FROM cs_rows ORDER BY id DESC;
INSERT INTO cs_c (id, v, j, t, f, ts, b, n) SELECT * FROM cs_rows ORDER BY md5(t);
SELECT meridian.table_checksum('cs_a') ~ '^500:[0-9a-f]{64}$' AS format_ok,
       meridian.table_checksum('cs_a') = meridian.table_checksum('cs_b') AS same_rows_other_order,
       meridian.table_checksum('cs_a') = meridian.table_checksum('cs_c') AS same_rows_other_column_order;
-- Independent of session settings that change text forms.
SET timezone = 'Asia/Kolkata';
SET datestyle = 'SQL, DMY';
SET extra_float_digits = 0;
SET bytea_output = 'escape';
SELECT meridian.table_checksum('cs_a') = (SELECT meridian.table_checksum('cs_b')) AS same_under_other_settings;
SELECT meridian.table_checksum('cs_a') AS ref \gset
RESET timezone; RESET datestyle; RESET extra_float_digits; RESET bytea_output;
SELECT :'ref' = meridian.table_checksum('cs_a') AS same_as_under_other_settings;
-- After an update and back, and after physical churn (VACUUM FULL), the same again.
UPDATE cs_b SET t = t || '!' WHERE t = 'row 10';
UPDATE cs_b SET t = rtrim(t, '!') WHERE t = 'row 10!';
VACUUM FULL cs_b;
SELECT meridian.table_checksum('cs_a') = meridian.table_checksum('cs_b') AS same_after_churn;
-- Any one-value change differs: a float's last bit, a vector element, a NULL, a jsonb key, a
-- numeric's scale, a row more or less; a no-op update does not.
CREATE FUNCTION pg_temp.differs(change text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE before text := meridian.table_checksum('cs_b'); after text;
BEGIN
    EXECUTE change;
    after := meridian.table_checksum('cs_b');
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = (before <> after)::text;  -- roll the change back
EXCEPTION WHEN raise_exception THEN
    RETURN SQLERRM::boolean;
END $$;
SELECT change, pg_temp.differs(change) FROM (VALUES
    ($$UPDATE cs_b SET f = f + 1e-15 WHERE t = 'row 1'$$),
    ($$UPDATE cs_b SET v = '[1,0.5,-1.0000001]' WHERE t = 'row 1'$$),
    ($$UPDATE cs_b SET t = NULL WHERE t = 'row 1'$$),
    ($$UPDATE cs_b SET t = '' WHERE t IS NULL AND n = 8.75$$),
    ($$UPDATE cs_b SET j = j || '{"x": null}' WHERE t = 'row 2'$$),
    ($$UPDATE cs_b SET n = 1.250 WHERE t = 'row 1'$$),
    ($$UPDATE cs_b SET ts = ts + interval '1 microsecond' WHERE t = 'row 3'$$),
    ($$DELETE FROM cs_b WHERE t = 'row 4'$$),
    ($$INSERT INTO cs_b SELECT gen_random_uuid(), v, j, t, f, ts, b, n FROM cs_b WHERE t = 'row 5'$$),
    ($$UPDATE cs_b SET f = f WHERE t = 'row 6'$$)
) AS t(change);
SELECT meridian.table_checksum('cs_a') = meridian.table_checksum('cs_b') AS unchanged;
-- Duplicate rows count (a sum, not an XOR, of row hashes): 2 copies differ from 0 copies.
CREATE TABLE dup (n int);
SELECT meridian.table_checksum('dup') AS empty_dup;
INSERT INTO dup VALUES (1), (1);
SELECT meridian.table_checksum('dup') <> '0:' || repeat('0', 64) AS two_copies_nonzero;
-- Dropped columns do not count; column names do.
CREATE TABLE named_a (x int, y int);
CREATE TABLE named_b (x int, z int, y int);
ALTER TABLE named_b DROP COLUMN z;
CREATE TABLE named_c (x int, w int);
INSERT INTO named_a VALUES (1, 2);
INSERT INTO named_b VALUES (1, 2);
INSERT INTO named_c VALUES (1, 2);
SELECT meridian.table_checksum('named_a') = meridian.table_checksum('named_b') AS dropped_column_ignored,
       meridian.table_checksum('named_a') <> meridian.table_checksum('named_c') AS names_count;
-- Materialized views work; other relations and NULL do not.
CREATE MATERIALIZED VIEW cs_mv AS SELECT * FROM cs_a;
SELECT meridian.table_checksum('cs_mv') = meridian.table_checksum('cs_a') AS matview_same;
SELECT meridian.table_checksum(NULL) IS NULL AS strict;
SELECT q, pg_temp.sqlstate_of(format('SELECT meridian.table_checksum(%L)', q)) FROM (VALUES
    ('items_view'), ('parted'), ('cs_a_pkey')
) AS t(q);
-- Privileges: SELECT on the table, and no row-level security in the way.
CREATE ROLE meridian_regions_reader;
GRANT USAGE ON SCHEMA meridian TO meridian_regions_reader;
SET ROLE meridian_regions_reader;
SELECT pg_temp.sqlstate_of($$SELECT meridian.table_checksum('cs_a')$$);
SELECT pg_temp.sqlstate_of($$SELECT meridian.create_region('zz', 'host=x')$$);
RESET ROLE;
GRANT SELECT ON cs_a TO meridian_regions_reader;
ALTER TABLE cs_a ENABLE ROW LEVEL SECURITY;
SET ROLE meridian_regions_reader;
SELECT pg_temp.sqlstate_of($$SELECT meridian.table_checksum('cs_a')$$);
RESET ROLE;
ALTER TABLE cs_a DISABLE ROW LEVEL SECURITY;
SET ROLE meridian_regions_reader;
SELECT meridian.table_checksum('cs_a') = :'ref' AS reader_same;
RESET ROLE;
REVOKE ALL ON cs_a FROM meridian_regions_reader;
REVOKE USAGE ON SCHEMA meridian FROM meridian_regions_reader;
DROP ROLE meridian_regions_reader;
