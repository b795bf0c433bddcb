-- meridian.apply_transaction (src/apply, docs/apply.md): applying peer transactions under a
-- replication origin, idempotence, last-writer-wins, tombstones, and the errors.
-- Messages are built with meridian.encode_message (unsigned: apply_transaction does not verify).
-- Region names are unique to this test: replication origins are cluster-wide.
-- Writes commit locally: with several regions registered they would be quorum writes
-- (docs/consistency.md), which sql/consistency.sql covers.
SET synchronous_commit = local;
SET client_min_messages = warning;

SELECT meridian.create_region('apply-east', 'host=east'),
       meridian.create_region('apply-west', 'host=west'),
       meridian.create_region('apply-south', 'host=south');
SELECT meridian.set_local_region('apply-east');

CREATE TABLE apply_items (id uuid PRIMARY KEY, embedding vector(3), payload jsonb, note text);
SELECT meridian.replicate_table('apply_items');

-- A transaction message of a region: end_lsn, commit time, changes.
CREATE FUNCTION msg(region text, end_lsn pg_lsn, t timestamptz, changes jsonb) RETURNS bytea
LANGUAGE sql AS $$
  SELECT meridian.encode_message(jsonb_build_object('kind', 'transaction', 'region', region, 'xid', 1,
      'commit_lsn', (end_lsn - 8)::text, 'end_lsn', end_lsn::text, 'commit_time', t, 'changes', changes)) $$;
-- An insert or update of apply_items (note may be marked unchanged with note_unchanged).
CREATE FUNCTION row_change(op text, id uuid, emb text, payload jsonb, note text,
                           note_unchanged boolean DEFAULT false, tbl text DEFAULT 'apply_items') RETURNS jsonb
LANGUAGE sql AS $$
  SELECT jsonb_build_object('op', op, 'schema', 'public', 'table', tbl, 'key', id, 'columns', jsonb_build_array(
      jsonb_build_object('name', 'id', 'type', 'uuid', 'value', uuid_send(id)::text),
      jsonb_build_object('name', 'embedding', 'type', 'vector', 'value', vector_send(emb::vector)::text),
      jsonb_build_object('name', 'payload', 'type', 'jsonb', 'value', jsonb_send(payload)::text),
      CASE WHEN note_unchanged THEN jsonb_build_object('name', 'note', 'type', 'text', 'unchanged', true)
           WHEN note IS NULL THEN jsonb_build_object('name', 'note', 'type', 'text', 'null', true)
           ELSE jsonb_build_object('name', 'note', 'type', 'text', 'value', textsend(note)::text) END)) $$;
CREATE FUNCTION del(id uuid) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('op', 'delete', 'schema', 'public', 'table', 'apply_items', 'key', id) $$;
-- The version of a row of apply_items: (commit timestamp, region).
CREATE FUNCTION version_of(k uuid) RETURNS TABLE (t timestamptz, origin text) LANGUAGE sql AS $$
  SELECT c.timestamp, coalesce(o.roname, '(local)')
  FROM apply_items i, pg_xact_commit_timestamp_origin(i.xmin) c LEFT JOIN pg_replication_origin o ON o.roident = c.roident
  WHERE i.id = k $$;

-- ---------------------------------------------------------------------------------------------
-- Errors before anything is applied.

-- No replication origin in this session.
SELECT meridian.apply_transaction(msg('apply-west', '0/100', now(), '[]'));
SELECT pg_replication_origin_create('meridian_apply-west') > 0 AS created,
       pg_replication_origin_create('meridian_apply-south') > 0 AS created;
SELECT pg_replication_origin_session_setup('meridian_apply-west');
-- A message of another region than the session's origin.
SELECT meridian.apply_transaction(msg('apply-south', '0/100', now(), '[]'));
-- A heartbeat.
SELECT meridian.apply_transaction(meridian.encode_message(
    '{"kind": "heartbeat", "region": "apply-west", "wal_lsn": "0/100", "time": "2026-11-24 10:00:00+00"}'));
-- Garbage.
SELECT meridian.apply_transaction('\x0154'::bytea);
-- Not a registered peer / the local region (sessions set up under their origins).
SELECT pg_replication_origin_session_reset();
SELECT pg_replication_origin_create('meridian_apply-east') > 0 AS created,
       pg_replication_origin_create('meridian_apply-nowhere') > 0 AS created;
SELECT pg_replication_origin_session_setup('meridian_apply-east');
SELECT meridian.apply_transaction(msg('apply-east', '0/100', now(), '[]'));
SELECT pg_replication_origin_session_reset();
SELECT pg_replication_origin_session_setup('meridian_apply-nowhere');
SELECT meridian.apply_transaction(msg('apply-nowhere', '0/100', now(), '[]'));
SELECT pg_replication_origin_session_reset();
SELECT pg_replication_origin_drop('meridian_apply-east'), pg_replication_origin_drop('meridian_apply-nowhere');

-- ---------------------------------------------------------------------------------------------
-- Inserts from apply-west: versioned with the message's commit time and the origin; the origin's
-- progress is the message's end_lsn, recorded with the commit.
SELECT pg_replication_origin_session_setup('meridian_apply-west');
SELECT meridian.apply_transaction(msg('apply-west', '0/1000', '2026-11-24 10:00:00+00', jsonb_build_array(
    row_change('insert', '00000000-0000-0000-0000-000000000001', '[1,0,0]', '{"n": 1}', 'one'),
    row_change('insert', '00000000-0000-0000-0000-000000000002', '[0,1,0]', '{"n": 2}', NULL))));
SELECT id, embedding, payload, note FROM apply_items ORDER BY id;
SELECT * FROM version_of('00000000-0000-0000-0000-000000000001');
SELECT pg_replication_origin_progress('meridian_apply-west', false);

-- The same message again (a resend after a restart): nothing happens.
SELECT meridian.apply_transaction(msg('apply-west', '0/1000', '2026-11-24 10:00:00+00', jsonb_build_array(
    row_change('insert', '00000000-0000-0000-0000-000000000003', '[0,0,1]', '{"n": 3}', 'three'))));
SELECT count(*) FROM apply_items;

-- An update that leaves a column unchanged keeps the stored value; a NULL is stored as NULL.
SELECT meridian.apply_transaction(msg('apply-west', '0/2000', '2026-11-24 10:00:01+00', jsonb_build_array(
    row_change('update', '00000000-0000-0000-0000-000000000001', '[1,1,0]', '{"n": 10}', NULL, true),
    row_change('update', '00000000-0000-0000-0000-000000000002', '[0,1,1]', '{"n": 20}', 'two'))));
SELECT id, embedding, payload, note FROM apply_items ORDER BY id;
SELECT pg_replication_origin_progress('meridian_apply-west', false);

-- An update of a missing row that leaves a column unchanged cannot be applied: skipped (LOG).
SELECT meridian.apply_transaction(msg('apply-west', '0/2100', '2026-11-24 10:00:01+00', jsonb_build_array(
    row_change('update', '00000000-0000-0000-0000-000000000009', '[9,9,9]', '{}', NULL, true))));
-- An update of a missing row with every column is an insert.
SELECT meridian.apply_transaction(msg('apply-west', '0/2200', '2026-11-24 10:00:01+00', jsonb_build_array(
    row_change('update', '00000000-0000-0000-0000-000000000009', '[9,9,9]', '{}', 'nine'))));
SELECT id, note FROM apply_items ORDER BY id;
-- Progress advances even when nothing was written.
SELECT pg_replication_origin_progress('meridian_apply-west', false);

-- A delete removes the row and leaves a tombstone with the delete's version.
SELECT meridian.apply_transaction(msg('apply-west', '0/3000', '2026-11-24 10:00:02+00', jsonb_build_array(
    del('00000000-0000-0000-0000-000000000009'))));
SELECT count(*) FROM apply_items WHERE id = '00000000-0000-0000-0000-000000000009';
SELECT t.id, c.timestamp, o.roname
FROM meridian.tombstones t, pg_xact_commit_timestamp_origin(t.xmin) c JOIN pg_replication_origin o ON o.roident = c.roident
WHERE t.relid = 'apply_items'::regclass;

-- ---------------------------------------------------------------------------------------------
-- Last-writer-wins against another region's rows: apply-south writes at 10:00:05.
SELECT pg_replication_origin_session_reset();
SELECT pg_replication_origin_session_setup('meridian_apply-south');
SELECT meridian.apply_transaction(msg('apply-south', '0/5000', '2026-11-24 10:00:05+00', jsonb_build_array(
    row_change('insert', '00000000-0000-0000-0000-000000000005', '[5,5,5]', '{}', 'south at :05'))));
SELECT pg_replication_origin_session_reset();
SELECT pg_replication_origin_session_setup('meridian_apply-west');
-- apply-west at :04 is older: refused. At :05, a tie broken by region name: "apply-west" > "apply-south", it wins.
SELECT meridian.apply_transaction(msg('apply-west', '0/5000', '2026-11-24 10:00:04+00', jsonb_build_array(
    row_change('update', '00000000-0000-0000-0000-000000000005', '[5,5,5]', '{}', 'west at :04'))));
SELECT note FROM apply_items WHERE id = '00000000-0000-0000-0000-000000000005';
SELECT meridian.apply_transaction(msg('apply-west', '0/5100', '2026-11-24 10:00:05+00', jsonb_build_array(
    row_change('update', '00000000-0000-0000-0000-000000000005', '[5,5,5]', '{}', 'west at :05'))));
SELECT note FROM apply_items WHERE id = '00000000-0000-0000-0000-000000000005';
SELECT * FROM version_of('00000000-0000-0000-0000-000000000005');
-- Back in apply-south: its own :05 tie now loses to apply-west's :05 ...
SELECT pg_replication_origin_session_reset();
SELECT pg_replication_origin_session_setup('meridian_apply-south');
SELECT meridian.apply_transaction(msg('apply-south', '0/5100', '2026-11-24 10:00:05+00', jsonb_build_array(
    row_change('update', '00000000-0000-0000-0000-000000000005', '[5,5,5]', '{}', 'south again at :05'))));
SELECT note FROM apply_items WHERE id = '00000000-0000-0000-0000-000000000005';
-- ... and a later one wins.
SELECT meridian.apply_transaction(msg('apply-south', '0/5200', '2026-11-24 10:00:06+00', jsonb_build_array(
    row_change('update', '00000000-0000-0000-0000-000000000005', '[5,5,5]', '{}', 'south at :06'))));
SELECT note FROM apply_items WHERE id = '00000000-0000-0000-0000-000000000005';
-- A region's own stream is in its commit order: an earlier clock reading of the same region still replaces.
SELECT meridian.apply_transaction(msg('apply-south', '0/5300', '2026-11-24 09:00:00+00', jsonb_build_array(
    row_change('update', '00000000-0000-0000-0000-000000000005', '[5,5,5]', '{}', 'south, clock stepped back'))));
SELECT note FROM apply_items WHERE id = '00000000-0000-0000-0000-000000000005';
SELECT pg_replication_origin_session_reset();

-- ---------------------------------------------------------------------------------------------
-- Last-writer-wins against local rows (no origin: the local region, the local commit timestamp).
INSERT INTO apply_items VALUES ('00000000-0000-0000-0000-00000000000a', '[1,2,3]', '{}', 'local');
SELECT origin FROM version_of('00000000-0000-0000-0000-00000000000a');
SELECT pg_replication_origin_session_setup('meridian_apply-west');
-- Older than the local write: refused, both as an update and as an insert.
SELECT meridian.apply_transaction(msg('apply-west', '0/6000', now() - interval '1 hour', jsonb_build_array(
    row_change('update', '00000000-0000-0000-0000-00000000000a', '[1,2,3]', '{}', 'west, older'),
    row_change('insert', '00000000-0000-0000-0000-00000000000a', '[1,2,3]', '{}', 'west, older'))));
SELECT note FROM apply_items WHERE id = '00000000-0000-0000-0000-00000000000a';
-- Newer: an insert of an existing key updates it.
SELECT meridian.apply_transaction(msg('apply-west', '0/6100', now() + interval '1 hour', jsonb_build_array(
    row_change('insert', '00000000-0000-0000-0000-00000000000a', '[1,2,3]', '{}', 'west, newer'))));
SELECT note FROM apply_items WHERE id = '00000000-0000-0000-0000-00000000000a';
SELECT origin FROM version_of('00000000-0000-0000-0000-00000000000a');
SELECT pg_replication_origin_session_reset();
-- A local update replaces it; the peer's older update then loses.
UPDATE apply_items SET note = 'local again' WHERE id = '00000000-0000-0000-0000-000000000001';
SELECT pg_replication_origin_session_setup('meridian_apply-west');
SELECT meridian.apply_transaction(msg('apply-west', '0/6200', now() - interval '1 minute', jsonb_build_array(
    row_change('update', '00000000-0000-0000-0000-000000000001', '[1,1,0]', '{}', 'west, older than local'))));
SELECT note FROM apply_items WHERE id = '00000000-0000-0000-0000-000000000001';

-- ---------------------------------------------------------------------------------------------
-- Deletes and tombstones.
-- A delete older than the row it names loses ...
SELECT meridian.apply_transaction(msg('apply-west', '0/7000', now() - interval '1 minute', jsonb_build_array(
    del('00000000-0000-0000-0000-000000000001'))));
SELECT count(*) FROM apply_items WHERE id = '00000000-0000-0000-0000-000000000001';
-- ... a newer one wins.
SELECT meridian.apply_transaction(msg('apply-west', '0/7100', now() + interval '1 hour', jsonb_build_array(
    del('00000000-0000-0000-0000-000000000001'))));
SELECT count(*) FROM apply_items WHERE id = '00000000-0000-0000-0000-000000000001';
SELECT pg_replication_origin_session_reset();
-- An update older than the delete (another region's, arriving late) is refused by the tombstone,
-- a late, older insert too; a newer insert brings the key back.
SELECT pg_replication_origin_session_setup('meridian_apply-south');
SELECT meridian.apply_transaction(msg('apply-south', '0/7000', now() + interval '30 minutes', jsonb_build_array(
    row_change('update', '00000000-0000-0000-0000-000000000001', '[1,1,1]', '{}', 'south, older than the delete'),
    row_change('insert', '00000000-0000-0000-0000-000000000001', '[1,1,1]', '{}', 'south, older than the delete'))));
SELECT count(*) FROM apply_items WHERE id = '00000000-0000-0000-0000-000000000001';
SELECT meridian.apply_transaction(msg('apply-south', '0/7100', now() + interval '2 hours', jsonb_build_array(
    row_change('insert', '00000000-0000-0000-0000-000000000001', '[1,1,1]', '{}', 'south, after the delete'))));
SELECT note FROM apply_items WHERE id = '00000000-0000-0000-0000-000000000001';
-- A delete of a key that does not exist here leaves a tombstone, so its older insert, arriving
-- later, is refused; a delete older than that tombstone does not refresh it.
SELECT meridian.apply_transaction(msg('apply-south', '0/7200', now() + interval '3 hours', jsonb_build_array(
    del('00000000-0000-0000-0000-0000000000b0'))));
SELECT pg_replication_origin_session_reset();
SELECT pg_replication_origin_session_setup('meridian_apply-west');
SELECT meridian.apply_transaction(msg('apply-west', '0/7200', now() + interval '150 minutes', jsonb_build_array(
    row_change('insert', '00000000-0000-0000-0000-0000000000b0', '[0,0,0]', '{}', 'late older insert'))));
SELECT meridian.apply_transaction(msg('apply-west', '0/7300', now() + interval '160 minutes', jsonb_build_array(
    del('00000000-0000-0000-0000-0000000000b0'))));
SELECT count(*) FROM apply_items WHERE id = '00000000-0000-0000-0000-0000000000b0';
SELECT o.roname FROM meridian.tombstones t, pg_xact_commit_timestamp_origin(t.xmin) c
    JOIN pg_replication_origin o ON o.roident = c.roident
WHERE t.id = '00000000-0000-0000-0000-0000000000b0';
SELECT pg_replication_origin_session_reset();
-- Local deletes leave tombstones too (the trigger fires for every delete).
DELETE FROM apply_items WHERE id = '00000000-0000-0000-0000-00000000000a';
SELECT c.roident FROM meridian.tombstones t, pg_xact_commit_timestamp_origin(t.xmin) c
WHERE t.id = '00000000-0000-0000-0000-00000000000a';

-- Purge: tombstones older than meridian.tombstone_retention (7 days by default) go, recent ones stay.
SHOW meridian.tombstone_retention;
SELECT pg_replication_origin_session_setup('meridian_apply-west');
SELECT meridian.apply_transaction(msg('apply-west', '0/8000', '2020-01-01 00:00:00+00', jsonb_build_array(
    del('00000000-0000-0000-0000-0000000000c0'))));
SELECT pg_replication_origin_session_reset();
SELECT count(*) FROM meridian.tombstones;
SELECT meridian.purge_tombstones() >= 1 AS purged;
SELECT id FROM meridian.tombstones WHERE id <> '00000000-0000-0000-0000-000000000009' ORDER BY id;

-- ---------------------------------------------------------------------------------------------
-- Errors while applying: nothing of the message is applied, the origin does not advance.
SELECT pg_replication_origin_session_setup('meridian_apply-west');
SELECT pg_replication_origin_progress('meridian_apply-west', false);
-- Column sets that differ (DDL is not replicated): an extra column, a missing one, another type.
SELECT meridian.apply_transaction(msg('apply-west', '0/9000', now(), jsonb_build_array(
    row_change('insert', '00000000-0000-0000-0000-0000000000d0', '[0,0,0]', '{}', 'x'),
    jsonb_set(row_change('insert', '00000000-0000-0000-0000-0000000000d1', '[0,0,0]', '{}', 'x'), '{columns,4}',
              '{"name": "color", "type": "text", "null": true}'))));
SELECT meridian.apply_transaction(msg('apply-west', '0/9000', now(), jsonb_build_array(
    row_change('insert', '00000000-0000-0000-0000-0000000000d0', '[0,0,0]', '{}', 'x') #- '{columns,3}')));
SELECT meridian.apply_transaction(msg('apply-west', '0/9000', now(), jsonb_build_array(
    jsonb_set(row_change('insert', '00000000-0000-0000-0000-0000000000d0', '[0,0,0]', '{}', 'x'), '{columns,2}',
              jsonb_build_object('name', 'payload', 'type', 'text', 'value', textsend('{}')::text)))));
SELECT meridian.apply_transaction(msg('apply-west', '0/9000', now(), jsonb_build_array(
    jsonb_set(row_change('insert', '00000000-0000-0000-0000-0000000000d0', '[0,0,0]', '{}', 'x'), '{columns,3}',
              jsonb_build_object('name', 'note', 'type', 'pg_catalog.name', 'value', namesend('x')::text)))));
-- The typmod applies: vector(3) refuses 4 dimensions.
SELECT meridian.apply_transaction(msg('apply-west', '0/9000', now(), jsonb_build_array(
    row_change('insert', '00000000-0000-0000-0000-0000000000d0', '[0,0,0,0]', '{}', 'x'))));
-- A key that is not the row's primary key value.
SELECT meridian.apply_transaction(msg('apply-west', '0/9000', now(), jsonb_build_array(
    jsonb_set(row_change('insert', '00000000-0000-0000-0000-0000000000d0', '[0,0,0]', '{}', 'x'), '{key}',
              '"00000000-0000-0000-0000-0000000000d9"'))));
-- A table that is not replicated, one that does not exist.
CREATE TABLE apply_not_replicated (id uuid PRIMARY KEY, embedding vector(3), payload jsonb, note text);
SELECT meridian.apply_transaction(msg('apply-west', '0/9000', now(), jsonb_build_array(
    row_change('insert', '00000000-0000-0000-0000-0000000000d0', '[0,0,0]', '{}', 'x', false, 'apply_not_replicated'))));
SELECT meridian.apply_transaction(msg('apply-west', '0/9000', now(), jsonb_build_array(
    row_change('insert', '00000000-0000-0000-0000-0000000000d0', '[0,0,0]', '{}', 'x', false, 'nowhere'))));
-- Two transactions in one local transaction.
BEGIN;
SELECT meridian.apply_transaction(msg('apply-west', '0/9000', now(), '[]'));
SELECT meridian.apply_transaction(msg('apply-west', '0/9100', now(), '[]'));
ROLLBACK;
SELECT pg_replication_origin_progress('meridian_apply-west', false);
SELECT count(*) FROM apply_items WHERE id = '00000000-0000-0000-0000-0000000000d0';
-- After those errors the session applies normally.
SELECT meridian.apply_transaction(msg('apply-west', '0/9000', now(), jsonb_build_array(
    row_change('insert', '00000000-0000-0000-0000-0000000000d0', '[0,0,0]', '{}', 'after the errors'))));
SELECT pg_replication_origin_progress('meridian_apply-west', false);
SELECT pg_replication_origin_session_reset();

-- ---------------------------------------------------------------------------------------------
-- Applied rows go through the normal index insert: an hnsw index finds them.
CREATE INDEX items_embedding ON apply_items USING hnsw (embedding vector_l2_ops);
SELECT pg_replication_origin_session_setup('meridian_apply-west');
SELECT meridian.apply_transaction(msg('apply-west', '0/A000', now(), (
    SELECT jsonb_agg(row_change('insert', meridian.uuid_v5('00000000-0000-0000-0000-000000000000', i::text),
                                format('[%s,%s,%s]', i, i * 2, 100 - i), jsonb_build_object('i', i), 'hnsw ' || i))
    FROM generate_series(1, 50) i)));
SELECT pg_replication_origin_session_reset();
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT note FROM apply_items ORDER BY embedding <-> '[20,40,80.5]' LIMIT 3;
SELECT note FROM apply_items ORDER BY embedding <-> '[20,40,80.5]' LIMIT 3;
RESET enable_seqscan;

-- Without track_commit_timestamp there are no versions: refused (cannot be shown here, the
-- setting needs a restart; see docs/apply.md).

-- ---------------------------------------------------------------------------------------------
-- In order (the two-argument form): meridian-replicator pipelines its calls and names the origin
-- progress each expects, so a call refused or failed stops every call queued behind it.
SELECT pg_replication_origin_session_setup('meridian_apply-south');
SELECT pg_replication_origin_session_progress(false) AS south_progress \gset
SELECT meridian.apply_transaction(msg('apply-south', '0/8000', '2026-11-24 10:00:08+00', '[]'), '0/1');
SELECT pg_replication_origin_session_progress(false) = :'south_progress' AS unchanged;
SELECT meridian.apply_transaction(msg('apply-south', '0/8000', '2026-11-24 10:00:08+00', '[]'), :'south_progress');
SELECT pg_replication_origin_session_progress(false);
-- Group flush: after meridian.flush_wal() every commit before it is durable.
SELECT meridian.flush_wal() <= pg_current_wal_flush_lsn() AS flushed;
SELECT has_function_privilege('public', 'meridian.flush_wal()', 'execute') AS public_may_flush,
       has_function_privilege('public', 'meridian.apply_transaction(bytea, pg_lsn)', 'execute') AS public_may_apply;
SELECT pg_replication_origin_session_reset();

-- Tombstones of dropped tables go, whatever their age (how many are left here depends on the
-- date the test runs: the one of 000...09 is dated 2026-11-24 and older than the retention later).
SELECT count(*) AS tombstones_left FROM meridian.tombstones \gset
DROP TABLE apply_items, apply_not_replicated;
SELECT meridian.purge_tombstones() = :tombstones_left AS dropped_tables_purged;
SELECT count(*) FROM meridian.tombstones;
SELECT pg_replication_origin_drop('meridian_apply-west'), pg_replication_origin_drop('meridian_apply-south');
-- Leave the database as it was for the tests that follow.
DROP FUNCTION msg, row_change, del, version_of;
SELECT meridian.drop_region('apply-east'), meridian.drop_region('apply-west'), meridian.drop_region('apply-south');
