-- Replication decoding (src/decoding, docs/protocol.md): the SQL codec tools and the `meridian`
-- logical-decoding output plugin. The regress cluster runs with wal_level = logical.

-- A signing key for the plugin (a fixed test key; its public half is
-- d46b8fad2fb8fdb5157c0f715972ce2fb6700f6b4e18ca398353812ac6500a58), written by the server so it
-- is the server user's, with mode 0600, and set with ALTER SYSTEM. The reload reaches the
-- postmaster before the next connection is made: the session after \c has it.
SELECT meridian.uuid_v5('00000000-0000-0000-0000-000000000000', '') IS NOT NULL AS library_loaded;
SELECT current_setting('data_directory') || '/meridian_regress_signing.key' AS keyfile \gset
SELECT format('rm -f %1$s && umask 077 && cat > %1$s', quote_literal(:'keyfile')) AS keycmd \gset
COPY (SELECT 'ca43f5c99969069b02bb75df2e485fdc051fc2e2810c57ef83bb6e64fb119cf9d46b8fad2fb8fdb5157c0f715972ce2fb6700f6b4e18ca398353812ac6500a58') TO PROGRAM :'keycmd';
ALTER SYSTEM SET meridian.signing_key_file = :'keyfile';
SELECT pg_reload_conf();
\c
-- Writes commit locally: with several regions registered they would be quorum writes
-- (docs/consistency.md), which sql/consistency.sql covers.
SET synchronous_commit = local;
SELECT encode(meridian.local_public_key(), 'hex') AS public_key;
-- PostgreSQL 15.19+ allows only the output plugins listed in output_plugin_libraries (a
-- superuser may extend it per session; servers list meridian in postgresql.conf).
SET output_plugin_libraries = pgoutput, test_decoding, meridian;

-- An error's SQLSTATE and message, as text (no line numbers in the expected output).
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN sqlstate || ': ' || sqlerrm;
END $$;

-- ---------------------------------------------------------------------------------------------
-- 1. encode_message / decode_message / verify_message

-- A heartbeat: the worked example of docs/protocol.md section 4, byte for byte (unsigned).
SELECT meridian.encode_message('{"kind": "heartbeat", "region": "us-east", "wal_lsn": "0/3000060",
                                 "time": "2025-01-01 02:06:39.999999+00"}')
    = '\x01485e0000000775732d656173746000000300000000ff4bd3439acd0200'::bytea || decode(repeat('00', 64), 'hex') AS worked_example;
SELECT meridian.decode_message(meridian.encode_message(
    '{"kind": "heartbeat", "region": "us-east", "wal_lsn": "0/3000060", "time": "2026-11-24 10:00:00.5+00"}'));
-- Timestamps come back in UTC whatever the input's zone; special and out-of-range values survive.
SELECT meridian.decode_message(meridian.encode_message(
    '{"kind": "heartbeat", "region": "r", "wal_lsn": "1/0", "time": "2026-11-24 12:00:00+02"}')) ->> 'time';
SELECT meridian.decode_message(meridian.encode_message(
    '{"kind": "heartbeat", "region": "r", "wal_lsn": "1/0", "time": "-infinity"}')) ->> 'time';
SELECT meridian.decode_message(meridian.encode_message(
    '{"kind": "heartbeat", "region": "r", "wal_lsn": "1/0", "time": 9223372036854775806}')) -> 'time';

-- A transaction with every column state, a named type, a vector, and a delete: decode(encode(j)) = j.
CREATE TEMP TABLE msg AS SELECT jsonb_build_object(
    'kind', 'transaction', 'region', 'us-east', 'xid', 4294967295,
    'commit_lsn', '0/16B3748', 'end_lsn', 'FFFFFFFF/FFFFFFFF', 'commit_time', '2026-11-24 10:00:00.123456+00',
    'changes', jsonb_build_array(
        jsonb_build_object('op', 'insert', 'schema', 'public', 'table', 'items',
            'key', '6f1c2a9e-2b7c-4b8e-9d3a-1f2e3d4c5b6a', 'columns', jsonb_build_array(
            jsonb_build_object('name', 'id', 'type', 'uuid', 'value', uuid_send('6f1c2a9e-2b7c-4b8e-9d3a-1f2e3d4c5b6a')::text),
            jsonb_build_object('name', 'embedding', 'type', 'vector', 'value', vector_send('[1,-0,2.5]')::text),
            jsonb_build_object('name', 'payload', 'type', 'jsonb', 'value', jsonb_send('{"a": [1, "é"]}')::text),
            jsonb_build_object('name', 'n', 'type', 'numeric', 'value', numeric_send(-12345.678)::text),
            jsonb_build_object('name', 'arr', 'type', 'pg_catalog._int4', 'value', array_send('{1,2,3}'::int4[])::text),
            jsonb_build_object('name', 'note', 'type', 'text', 'null', true))),
        jsonb_build_object('op', 'update', 'schema', 'public', 'table', 'items "quoted"',
            'key', '6f1c2a9e-2b7c-4b8e-9d3a-1f2e3d4c5b6a', 'columns', jsonb_build_array(
            jsonb_build_object('name', 'big', 'type', 'text', 'unchanged', true),
            jsonb_build_object('name', 'b', 'type', 'boolean', 'value', boolsend(true)::text))),
        jsonb_build_object('op', 'update', 'schema', 'public', 'table', 'no columns',
            'key', '00000000-0000-0000-0000-000000000000', 'columns', '[]'::jsonb),
        jsonb_build_object('op', 'delete', 'schema', 'public', 'table', 'items',
            'key', '6f1c2a9e-2b7c-4b8e-9d3a-1f2e3d4c5b6a'))) AS j;
SELECT meridian.decode_message(meridian.encode_message(j)) = j AS round_trip,
       length(meridian.encode_message(j)) AS bytes,
       substr(meridian.encode_message(j), length(meridian.encode_message(j)) - 63) = decode(repeat('00', 64), 'hex') AS zero_signature
FROM msg;
SELECT jsonb_pretty(meridian.decode_message(meridian.encode_message(j))) FROM msg;
-- An empty transaction is a valid message (the plugin never sends one).
SELECT meridian.decode_message(meridian.encode_message(
    '{"kind": "transaction", "region": "r", "xid": 0, "commit_lsn": "0/1", "end_lsn": "0/2",
      "commit_time": "2000-01-01 00:00:00+00", "changes": []}'));

-- An unsigned message never verifies; a malformed key is an error, a malformed message is false.
SELECT meridian.verify_message(meridian.encode_message(j), decode(repeat('11', 32), 'hex')) FROM msg;
SELECT meridian.verify_message('\x01', decode(repeat('11', 32), 'hex'));
SELECT pg_temp.err($$SELECT meridian.verify_message('\x01', '\x0102')$$);

-- Every class of bad bytes is refused with SQLSTATE 08P01, naming the reason.
CREATE TEMP TABLE hb AS SELECT meridian.encode_message(
    '{"kind": "heartbeat", "region": "us-east", "wal_lsn": "0/3000060", "time": "2026-11-24 10:00:00+00"}') AS m;
SELECT pg_temp.err($$SELECT meridian.decode_message('')$$) AS empty;
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', substr(m, 1, 50))) AS truncated FROM hb;
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', substr(m, 1, 4))) AS truncated_header FROM hb;
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', m || '\x00'::bytea)) AS appended FROM hb;
-- a byte inside the body that the length field covers: trailing bytes
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)',
    set_byte(substr(m, 1, 30) || '\x00'::bytea || substr(m, 31), 2, 95))) AS trailing FROM hb;
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', set_byte(m, 0, 2))) AS version FROM hb;
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', set_byte(m, 1, ascii('X')))) AS kind FROM hb;
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', set_byte(m, 2, 200))) AS length_field FROM hb;
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', set_byte(m, 6, 0))) AS empty_region FROM hb;
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', set_byte(m, 7, 255))) AS region_not_utf8 FROM hb;
-- in a transaction: the first change's operation byte, a column's type tag and flags
CREATE TEMP TABLE tx AS SELECT meridian.encode_message(
    '{"kind": "transaction", "region": "r", "xid": 1, "commit_lsn": "0/10", "end_lsn": "0/20",
      "commit_time": "2026-11-24 10:00:00+00", "changes": [{"op": "insert", "schema": "s", "table": "t",
      "key": "6f1c2a9e-2b7c-4b8e-9d3a-1f2e3d4c5b6a", "columns": [{"name": "c", "type": "int4", "value": "\\x00000001"}]}]}') AS m;
-- layout: header 6, region 2, xid 4, LSNs 16, time 8, count 4 -> op at 40, schema 41-42, table 43-44,
-- key 45-60, column count 61-62, column name 63-64, tag 65, flags 66, length 67-70, value 71-74
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', set_byte(m, 40, ascii('X')))) AS operation FROM tx;
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', set_byte(m, 65, 18))) AS type_tag FROM tx;
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', set_byte(m, 66, 2))) AS flags FROM tx;
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', set_byte(m, 65, 2))) AS value_size FROM tx;
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', set_byte(m, 36, 2))) AS change_count FROM tx;
SELECT pg_temp.err(format('SELECT meridian.decode_message(%L)', set_byte(m, 12, 0))) AS zero_lsn FROM tx;
SELECT meridian.decode_message(m) -> 'changes' -> 0 -> 'columns' FROM tx;

-- Bad JSON is refused with SQLSTATE 22023; values the codec refuses with 08P01.
SELECT pg_temp.err($$SELECT meridian.encode_message('[1]')$$);
SELECT pg_temp.err($$SELECT meridian.encode_message('{"kind": "ping"}')$$);
SELECT pg_temp.err($$SELECT meridian.encode_message('{"kind": "heartbeat", "region": "r", "wal_lsn": "0/1"}')$$);
SELECT pg_temp.err($$SELECT meridian.encode_message('{"kind": "heartbeat", "region": "r", "wal_lsn": "0/1", "time": 0, "extra": 1}')$$);
SELECT pg_temp.err($$SELECT meridian.encode_message('{"kind": "heartbeat", "region": "r", "wal_lsn": "1", "time": 0}')$$);
SELECT pg_temp.err($$SELECT meridian.encode_message('{"kind": "heartbeat", "region": "r", "wal_lsn": "0/0", "time": 0}')$$);
SELECT pg_temp.err($$SELECT meridian.encode_message('{"kind": "heartbeat", "region": "", "wal_lsn": "0/1", "time": 0}')$$);
SELECT pg_temp.err($$SELECT meridian.encode_message('{"kind": "heartbeat", "region": "r", "wal_lsn": "0/1", "time": "soon"}')$$);
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{xid}', '-1'))) FROM msg;
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{xid}', '1.5'))) FROM msg;
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{end_lsn}', '"0/16B3748"'))) FROM msg;
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{changes,0,op}', '"upsert"'))) FROM msg;
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{changes,0,key}', '"nope"'))) FROM msg;
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{changes,0,columns,0,type}', '"integer"'))) FROM msg;
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{changes,0,columns,0,value}', '"00"'))) FROM msg;
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{changes,0,columns,0,value}', '"\\x0"'))) FROM msg;
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{changes,0,columns,0,"null"}', 'true'))) FROM msg;
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{changes,0,columns,5,"null"}', 'false'))) FROM msg;
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{changes,0,columns,0,value}', '"\\x00"'))) FROM msg;
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{changes,0,columns,1,name}', '"id"'))) FROM msg;
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{changes,0,columns,5}', '{"name": "x", "type": "text", "unchanged": true}'))) FROM msg;
SELECT pg_temp.err(format('SELECT meridian.encode_message(%L)', jsonb_set(j, '{changes,3,columns}', '[]'))) FROM msg;

-- ---------------------------------------------------------------------------------------------
-- 2. The output plugin

CREATE TABLE dec_items (
    id uuid PRIMARY KEY,
    embedding vector(3),
    payload jsonb,
    note text,
    big text,
    note_len int GENERATED ALWAYS AS (length(note)) STORED,  -- generated: not sent
    tags int[]
);
CREATE TABLE dec_other (id uuid PRIMARY KEY, x int);
SELECT meridian.replicate_table('dec_items');

-- Options: proto_version '1' is required; nothing else is accepted. Creating a slot needs none.
SELECT 'created' FROM pg_create_logical_replication_slot('dec_slot', 'meridian');
SELECT pg_temp.err($$SELECT count(*) FROM pg_logical_slot_peek_binary_changes('dec_slot', NULL, NULL)$$);
SELECT pg_temp.err($$SELECT count(*) FROM pg_logical_slot_peek_binary_changes('dec_slot', NULL, NULL, 'proto_version', '2')$$);
SELECT pg_temp.err($$SELECT count(*) FROM pg_logical_slot_peek_binary_changes('dec_slot', NULL, NULL, 'proto_version', '1', 'format', 'json')$$);
-- The output is binary.
SELECT pg_temp.err($$SELECT count(*) FROM pg_logical_slot_peek_changes('dec_slot', NULL, NULL, 'proto_version', '1')$$);

-- No local region: a replicated change cannot be sent (nothing else stops the stream).
INSERT INTO dec_other VALUES ('00000000-0000-0000-0000-0000000000ff', 0);
SELECT count(*) FROM pg_logical_slot_get_binary_changes('dec_slot', NULL, NULL, 'proto_version', '1');
INSERT INTO dec_items (id) VALUES ('00000000-0000-0000-0000-0000000000ff');
SELECT pg_temp.err($$SELECT count(*) FROM pg_logical_slot_get_binary_changes('dec_slot', NULL, NULL, 'proto_version', '1')$$);
SELECT pg_drop_replication_slot('dec_slot');
DELETE FROM dec_items;
DELETE FROM dec_other;

SELECT meridian.create_region('dec-east', 'host=east.invalid');
SELECT meridian.set_local_region('dec-east');
SELECT 'created' FROM pg_create_logical_replication_slot('dec_slot', 'meridian');
SELECT clock_timestamp() AS started \gset

-- 1: two replicated rows (one with NULLs) and a row of a table that is not replicated
BEGIN;
INSERT INTO dec_items (id, embedding, payload, note, tags)
    VALUES ('11111111-1111-1111-1111-111111111111', '[1,-0,2.5]', '{"a": [1, "b"]}', 'hello', '{1,2}');
INSERT INTO dec_other VALUES ('99999999-9999-9999-9999-999999999999', 1);
INSERT INTO dec_items (id) VALUES ('22222222-2222-2222-2222-222222222222');
COMMIT;
-- nothing: a transaction without replicated changes, and an empty one
INSERT INTO dec_other VALUES ('99999999-9999-9999-9999-999999999998', 2);
BEGIN;
COMMIT;
-- 2: a heartbeat
SELECT meridian.emit_heartbeat() AS heartbeat_lsn \gset
-- 3: an update (every column of the new row; the generated one left out)
UPDATE dec_items SET note = 'hello, world' WHERE id = '11111111-1111-1111-1111-111111111111';
-- 4: a row with an out-of-line (TOASTed) value, then 5: an update that leaves it unchanged
INSERT INTO dec_items (id, big)
    SELECT '33333333-3333-3333-3333-333333333333', string_agg(md5(i::text), '') FROM generate_series(1, 2000) i;
UPDATE dec_items SET note = 'toasted' WHERE id = '33333333-3333-3333-3333-333333333333';
-- 6: an update of the primary key: a delete of the old key and an insert of the new row
UPDATE dec_items SET id = '44444444-4444-4444-4444-444444444444' WHERE id = '22222222-2222-2222-2222-222222222222';
-- 7: a delete
DELETE FROM dec_items WHERE id = '11111111-1111-1111-1111-111111111111';
-- nothing: changes and heartbeats with a replication origin (what the replicator applies)
SELECT 'origin' FROM pg_replication_origin_create('dec_origin');
SELECT pg_replication_origin_session_setup('dec_origin');
INSERT INTO dec_items (id) VALUES ('55555555-5555-5555-5555-555555555555');
SELECT 'heartbeat' FROM meridian.emit_heartbeat();
SELECT pg_replication_origin_session_reset();
SELECT pg_replication_origin_drop('dec_origin');
-- 8: catalog edits reach the plugin at their position: dec_other becomes replicated, and
-- 9: the local region changes
INSERT INTO dec_other VALUES ('99999999-9999-9999-9999-999999999997', 3);  -- not replicated yet
SELECT meridian.replicate_table('dec_other');
INSERT INTO dec_other VALUES ('99999999-9999-9999-9999-999999999996', 4);
SELECT meridian.create_region('dec-west', 'host=west.invalid');
SELECT meridian.set_local_region('dec-west');
DELETE FROM dec_other WHERE x = 4;
-- TRUNCATE is not replicated
TRUNCATE dec_other;

CREATE TEMP TABLE out AS
SELECT row_number() OVER () AS n, lsn, data, meridian.decode_message(data) AS m
FROM pg_logical_slot_get_binary_changes('dec_slot', NULL, NULL, 'proto_version', '1');

-- Every message is signed with the local key; positions and times are the source's.
SELECT n, m ->> 'kind' AS kind, m ->> 'region' AS region,
       meridian.verify_message(data, meridian.local_public_key()) AS signed,
       CASE m ->> 'kind'
           WHEN 'transaction' THEN lsn = (m ->> 'end_lsn')::pg_lsn AND (m ->> 'commit_lsn')::pg_lsn < lsn
               AND (m ->> 'commit_time')::timestamptz = pg_xact_commit_timestamp((m ->> 'xid')::xid)
           ELSE lsn = (m ->> 'wal_lsn')::pg_lsn AND lsn = :'heartbeat_lsn'
               AND (m ->> 'time')::timestamptz BETWEEN :'started' AND clock_timestamp()
       END AS positions_and_times
FROM out ORDER BY n;
-- In commit order.
SELECT bool_and(a.lsn < b.lsn) AS ordered FROM out a JOIN out b ON b.n = a.n + 1;

-- The changes, values shown as the send bytes (the TOASTed one by its length).
SELECT n, c.i, c.ch ->> 'op' AS op, c.ch ->> 'schema' AS schema, c.ch ->> 'table' AS tbl, c.ch ->> 'key' AS key,
       (SELECT string_agg(format('%s %s %s', col ->> 'name', col ->> 'type',
                   CASE WHEN col ? 'null' THEN 'NULL' WHEN col ? 'unchanged' THEN 'UNCHANGED'
                        WHEN length(col ->> 'value') > 200 THEN format('(%s bytes)', (length(col ->> 'value') - 2) / 2)
                        ELSE col ->> 'value' END), E'\n' ORDER BY k)
        FROM jsonb_array_elements(c.ch -> 'columns') WITH ORDINALITY AS x(col, k)) AS columns
FROM out, jsonb_array_elements(m -> 'changes') WITH ORDINALITY AS c(ch, i)
ORDER BY n, c.i;

-- The values are the types' send formats: they read back as the rows.
SELECT vector_send('[1,-0,2.5]')::text, jsonb_send('{"a": [1, "b"]}')::text, array_send('{1,2}'::int[])::text;

-- A replicated table without a uuid primary key by now: a clear error.
SELECT 'created' FROM pg_create_logical_replication_slot('dec_slot2', 'meridian');
ALTER TABLE dec_other DROP CONSTRAINT dec_other_pkey;
INSERT INTO dec_other VALUES ('99999999-9999-9999-9999-999999999995', 5);
SELECT pg_temp.err($$SELECT count(*) FROM pg_logical_slot_get_binary_changes('dec_slot2', NULL, NULL, 'proto_version', '1')$$);
SELECT pg_drop_replication_slot('dec_slot2');

-- Clean up: slots, tables, regions, the key setting.
SELECT pg_drop_replication_slot('dec_slot');
DROP TABLE dec_items, dec_other;
SELECT count(*) AS replicated_left FROM meridian.replicated_tables;
DELETE FROM meridian.regions;
ALTER SYSTEM RESET meridian.signing_key_file;
SELECT pg_reload_conf();
