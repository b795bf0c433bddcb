-- Consistency per query and per write (docs/consistency.md), on one server: settings and their
-- bounds, the write quorum, quorum admission, bounded and strong reads against peer progress
-- noted by hand (meridian-replicator notes it in real deployments; test/tap/070 runs that).
-- The server runs with shared_preload_libraries = 'meridian'.
\set VERBOSITY default
-- Settings and defaults
SHOW meridian.read_consistency;
SHOW meridian.max_staleness;
SHOW meridian.consistency_timeout;
SHOW meridian.heartbeat_timeout;
SHOW meridian.quorum_admission;
SET meridian.read_consistency = 'linearizable';
SET meridian.max_staleness = -1;
SET meridian.consistency_timeout = -1;
SET meridian.heartbeat_timeout = 0;
SET meridian.max_staleness = '2s';
SHOW meridian.max_staleness;
RESET meridian.max_staleness;

-- Write quorum: a majority of the registered regions by default, at most their number.
SELECT meridian.write_quorum();                       -- no region: 1
SELECT meridian.create_region('cons-here', 'host=127.0.0.1 port=1');
SELECT meridian.set_local_region('cons-here');
SELECT meridian.create_region('cons-far', format('host=127.0.0.1 port=%s dbname=%s', current_setting('port'), current_database()));
SELECT meridian.write_quorum();                       -- 2 regions: 2
SELECT meridian.create_region('cons-farther', 'host=127.0.0.1 port=1 connect_timeout=2');
SELECT meridian.write_quorum();                       -- 3 regions: 2
SELECT meridian.set_write_quorum(0);
SELECT meridian.set_write_quorum(4);
SELECT meridian.set_write_quorum(NULL);
SELECT meridian.set_write_quorum(3);
SELECT meridian.write_quorum();
SELECT meridian.drop_region('cons-farther');
SELECT meridian.write_quorum();                       -- never more than the regions: 2
SELECT meridian.set_write_quorum(1);
SELECT meridian.write_quorum();
SELECT has_function_privilege('public', 'meridian.set_write_quorum(integer)', 'execute') AS public_may_set,
       has_function_privilege('public', 'meridian.note_peer_progress(text, pg_lsn, timestamptz)', 'execute') AS public_may_note;

CREATE TABLE cons_items (id uuid PRIMARY KEY, embedding vector(2), note text);
CREATE TABLE cons_local (id int PRIMARY KEY);
SELECT meridian.replicate_table('cons_items');
SELECT tgname, tgtype FROM pg_trigger WHERE tgrelid = 'cons_items'::regclass AND NOT tgisinternal ORDER BY 1;

-- Quorum admission. Quorum 1: nothing to wait for.
INSERT INTO cons_items VALUES ('00000000-0000-0000-0000-000000000001', '[1,1]', 'quorum 1');
-- Quorum 2, but synchronous_standby_names (kept by meridian-replicator) does not name the peers:
-- refused before commit, nothing committed.
SELECT meridian.set_write_quorum(2);
INSERT INTO cons_items VALUES ('00000000-0000-0000-0000-000000000002', '[2,2]', 'refused');
SELECT count(*) FROM cons_items;
-- A local commit is not a quorum write; neither is a write of a table that is not replicated.
BEGIN;
SET LOCAL synchronous_commit = local;
INSERT INTO cons_items VALUES ('00000000-0000-0000-0000-000000000003', '[3,3]', 'local commit');
COMMIT;
INSERT INTO cons_local VALUES (1);
-- Admission off: the commit would wait like any synchronous commit; with no synchronous standby
-- configured it does not wait at all.
SET meridian.quorum_admission = off;
INSERT INTO cons_items VALUES ('00000000-0000-0000-0000-000000000004', '[4,4]', 'admission off');
RESET meridian.quorum_admission;
-- With synchronous_standby_names naming the peer but no stream from it: no live peer.
ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 ("cons-far")';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SHOW synchronous_standby_names;
INSERT INTO cons_items VALUES ('00000000-0000-0000-0000-000000000005', '[5,5]', 'no live peer');
-- A transaction writing only local tables commits locally instead of waiting for the peer.
INSERT INTO cons_local VALUES (2);
SHOW synchronous_commit;
ALTER SYSTEM RESET synchronous_standby_names;
SELECT pg_reload_conf();
SELECT meridian.set_write_quorum(1);
SELECT note FROM cons_items ORDER BY id;

-- Peer progress and region_status (shared memory outlives the test database: start afresh)
SELECT meridian.forget_peer_progress('cons-far') IS NOT NULL AS forgotten;
SELECT region, connected, staleness_ms IS NULL AS no_staleness, unavailable FROM meridian.region_status;
SELECT meridian.note_peer_progress('cons-far', '0/10', now() - interval '1 hour');
SELECT region, applied_through, staleness_ms > 3600000 AS an_hour_stale, unavailable FROM meridian.peer_freshness();
SELECT region, staleness_ms > 3600000 AS an_hour_stale, unavailable FROM meridian.region_status;
SELECT meridian.note_peer_progress('cons-far', '0/5', NULL);   -- never backwards
SELECT applied_through FROM meridian.peer_freshness();
SELECT meridian.forget_peer_progress('cons-elsewhere');

-- Errors whose text has timings or positions in it, shown with those masked.
CREATE FUNCTION cons_try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '[0-9A-F]+/[0-9A-F]+|[0-9]+ ms', '<n>', 'g');
END $$;

-- Bounded reads: the peer is an hour behind.
SET meridian.consistency_timeout = '50ms';
SET meridian.read_consistency = bounded;
SELECT cons_try('SELECT count(*) FROM cons_items');
SELECT count(*) FROM cons_local;                      -- not replicated: never waits
EXPLAIN (COSTS OFF) SELECT count(*) FROM cons_items;  -- EXPLAIN alone reads nothing
SELECT meridian.note_peer_progress('cons-far', '0/20', clock_timestamp());
SET meridian.max_staleness = '1h';
SELECT count(*) FROM cons_items;
-- Every statement that reads a replicated table, through a function too.
CREATE FUNCTION cons_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM cons_items';
SET meridian.max_staleness = 0;
SELECT cons_try('SELECT cons_count()');
RESET meridian.max_staleness;
-- Not in REPEATABLE READ
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM cons_items;
ROLLBACK;

-- Strong reads ask the peer (here: this same server) for its position, then wait for it to be
-- applied; nobody applies it here, so they time out.
SET meridian.read_consistency = strong;
SELECT cons_try('SELECT count(*) FROM cons_items');
-- Once the peer's position is applied (noted), the read goes through.
SELECT meridian.note_peer_progress('cons-far', 'FFFFFFFF/0', clock_timestamp());
SELECT note FROM cons_items ORDER BY embedding <-> '[1,1]' LIMIT 1;
-- A read quorum (meridian.strong_read_quorum): with a write quorum of both regions every quorum
-- write is already here, so no peer needs asking; with a write quorum of 1 the peer is asked.
SELECT meridian.forget_peer_progress('cons-far');
SET meridian.strong_read_quorum = on;
SELECT meridian.set_write_quorum(2);
SELECT cons_try('SELECT count(*) FROM cons_items');
SELECT meridian.set_write_quorum(1);
SELECT cons_try('SELECT count(*) FROM cons_items');
RESET meridian.strong_read_quorum;
SELECT meridian.note_peer_progress('cons-far', 'FFFFFFFF/0', clock_timestamp());
-- An unreachable peer fails the read and names it.
SELECT meridian.create_region('cons-nowhere', 'host=127.0.0.1 port=1 connect_timeout=2');
SELECT cons_try('SELECT count(*) FROM cons_items');
SELECT meridian.drop_region('cons-nowhere');
RESET meridian.read_consistency;
RESET meridian.consistency_timeout;
SELECT count(*) FROM cons_items;

-- An application role, with no privilege on the catalog (meridian.regions holds the peers'
-- conninfo), writes replicated tables and reads at every level: the catalog is read as its owner
-- (set_write_quorum makes this backend load it again, as the role). The role may read the write
-- quorum, not the catalog; pg_monitor reads region_status.
CREATE ROLE cons_app;
CREATE ROLE cons_monitor IN ROLE pg_monitor;
GRANT ALL ON cons_items TO cons_app;
SELECT meridian.set_write_quorum(1);
SET ROLE cons_app;
BEGIN;
SET LOCAL synchronous_commit = local;
INSERT INTO cons_items VALUES ('00000000-0000-0000-0000-000000000006', '[6,6]', 'by an application role');
COMMIT;
SET meridian.read_consistency = bounded;
SELECT note FROM cons_items WHERE id = '00000000-0000-0000-0000-000000000006';
SET meridian.read_consistency = strong;
SELECT note FROM cons_items WHERE id = '00000000-0000-0000-0000-000000000006';
RESET meridian.read_consistency;
SELECT meridian.write_quorum();
SELECT cons_try('SELECT count(*) FROM meridian.regions');
SELECT cons_try('SELECT count(*) FROM meridian.region_status');
RESET ROLE;
SET ROLE cons_monitor;
SELECT region, connected FROM meridian.region_status;
RESET ROLE;
REVOKE ALL ON cons_items FROM cons_app;
DROP ROLE cons_app, cons_monitor;

-- Shared memory keeps at most 64 peers (meridian.create_region keeps a group within it); one more
-- is refused with 54000, and a forgotten peer frees its slot.
DO $$ BEGIN
    FOR i IN 1..64 LOOP
        PERFORM meridian.note_peer_progress('limit-' || i, '0/1', NULL);
    END LOOP;
EXCEPTION WHEN program_limit_exceeded THEN NULL;  -- the slots other tests noted count too
END $$;
SELECT cons_try($$SELECT meridian.note_peer_progress('limit-65', '0/1', NULL)$$);
SELECT count(*) FROM (SELECT meridian.forget_peer_progress('limit-' || i) FROM generate_series(1, 64) i) s;
SELECT count(*) AS limit_peers_left FROM meridian.peer_freshness() WHERE region LIKE 'limit-%';
SELECT meridian.note_peer_progress('limit-65', '0/1', NULL), meridian.forget_peer_progress('limit-65');

-- Leave the database as it was for the tests that follow.
DROP FUNCTION cons_count, cons_try;
DROP TABLE cons_items, cons_local;
DELETE FROM meridian.write_quorum_setting;
SELECT meridian.drop_region('cons-far'), meridian.drop_region('cons-here');
SELECT count(*) FROM meridian.peer_freshness() WHERE region LIKE 'cons-%';
