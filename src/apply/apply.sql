
-- ---------------------------------------------------------------------------------------------
-- The apply side of replication (src/apply, docs/apply.md): meridian-replicator applies each
-- received, verified transaction message with meridian.apply_transaction under a replication
-- origin; rows resolve last-writer-wins by (commit timestamp, region); deletes leave tombstones.

-- One row per deleted key of a replicated table. Its version is the commit timestamp and the
-- replication origin of its xmin, exactly like a row's: a refresh is an UPDATE, so xmin moves.
CREATE TABLE meridian.tombstones (
    relid oid NOT NULL,
    id uuid NOT NULL,
    PRIMARY KEY (relid, id)
);
COMMENT ON TABLE meridian.tombstones IS
    'deleted keys of replicated tables, so a late, older insert or update is refused: written by the meridian_tombstone trigger and meridian.apply_transaction, purged by meridian.purge_tombstones';

-- AFTER DELETE ... FOR EACH ROW on every replicated table, ENABLE ALWAYS (installed by
-- meridian.replicate_table): records or refreshes the deleted key's tombstone.
CREATE FUNCTION meridian.tombstone_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'meridian_tombstone_trigger' LANGUAGE C;
COMMENT ON FUNCTION meridian.tombstone_trigger() IS
    'trigger of replicated tables: a deleted row leaves a tombstone in meridian.tombstones';

CREATE FUNCTION meridian.purge_tombstones() RETURNS bigint
    AS 'MODULE_PATHNAME', 'meridian_purge_tombstones' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION meridian.purge_tombstones() IS
    'deletes tombstones older than meridian.tombstone_retention (by commit timestamp) and those of tables no longer replicated; returns how many';

CREATE FUNCTION meridian.apply_transaction(message bytea) RETURNS integer
    AS 'MODULE_PATHNAME', 'meridian_apply_transaction' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION meridian.apply_transaction(bytea) IS
    'applies one decoded transaction message of a peer (its signature NOT checked: the caller verified it) under the session''s replication origin meridian_<region>; returns the number of row changes written, 0 when already applied';

-- The same, applied only when the origin's progress is `progress` (the end LSN of the transaction
-- sent before): a caller that pipelines its calls cannot apply a transaction whose predecessor failed.
CREATE FUNCTION meridian.apply_transaction(message bytea, progress pg_lsn) RETURNS integer
    AS 'MODULE_PATHNAME', 'meridian_apply_transaction' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION meridian.apply_transaction(bytea, pg_lsn) IS
    'meridian.apply_transaction(message), refused (55000) unless the replication origin''s progress is exactly progress';

-- Group flush (docs/apply.md): the replicator applies with synchronous_commit = off and calls
-- this before it reports applied transactions as flushed to their source region.
CREATE FUNCTION meridian.flush_wal() RETURNS pg_lsn
    AS 'MODULE_PATHNAME', 'meridian_flush_wal' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION meridian.flush_wal() IS
    'flushes the WAL up to the current insert position and returns it: every transaction the session committed before the call is durable';

-- (tombstone_trigger stays executable: it runs as whoever deletes from a replicated table, and
-- writes the tombstone as the owner of meridian.tombstones; called directly it refuses to run.)
REVOKE ALL ON FUNCTION meridian.purge_tombstones(), meridian.apply_transaction(bytea),
    meridian.apply_transaction(bytea, pg_lsn), meridian.flush_wal() FROM PUBLIC;
