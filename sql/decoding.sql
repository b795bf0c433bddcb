-- Replication decoding (src/decoding, docs/protocol.md): the SQL codec tools and the `meridian`
-- logical-decoding output plugin. The regress cluster runs with wal_level = logical.

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
