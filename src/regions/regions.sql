
-- ---------------------------------------------------------------------------------------------
-- Regions (src/regions, docs/regions.md): the catalog of regions and replicated tables the output
-- plugin and meridian-replicator read, the functions that edit it, this region's public key,
-- replication progress and table checksums. The catalog tables are user catalog tables (readable
-- during logical decoding) and extension configuration tables (pg_dump keeps their rows).

CREATE TABLE meridian.regions (
    name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    conninfo text NOT NULL,
    public_key bytea CHECK (public_key IS NULL OR length(public_key) = 32),
    is_local boolean NOT NULL DEFAULT false
) WITH (user_catalog_table = true);
CREATE UNIQUE INDEX regions_one_local ON meridian.regions ((true)) WHERE is_local;
COMMENT ON TABLE meridian.regions IS
    'every region of the replication group, this one (is_local) included: edit with meridian.create_region, set_local_region, drop_region';
SELECT pg_catalog.pg_extension_config_dump('meridian.regions', '');

CREATE TABLE meridian.replicated_tables (
    relid regclass PRIMARY KEY
) WITH (user_catalog_table = true);
COMMENT ON TABLE meridian.replicated_tables IS
    'tables whose changes are replicated: edit with meridian.replicate_table';
SELECT pg_catalog.pg_extension_config_dump('meridian.replicated_tables', '');

-- Written by meridian-replicator: one row per peer it has streamed from. Runtime state, not
-- configuration: pg_dump leaves it out (replication origins do not survive a dump either).
CREATE TABLE meridian.region_progress (
    region text PRIMARY KEY REFERENCES meridian.regions ON DELETE CASCADE ON UPDATE CASCADE,
    connected boolean NOT NULL DEFAULT false,
    applied_lsn pg_lsn,
    last_heartbeat timestamptz,
    last_error text
);
COMMENT ON TABLE meridian.region_progress IS
    'replication progress per peer, maintained by meridian-replicator; read it through meridian.region_status';

CREATE VIEW meridian.region_status AS
SELECT r.name AS region,
       coalesce(p.connected, false) AS connected,
       p.applied_lsn,
       extract(epoch FROM now() - p.last_heartbeat)::double precision AS lag_seconds,
       p.last_heartbeat,
       p.last_error
FROM meridian.regions r
LEFT JOIN meridian.region_progress p ON p.region = r.name
WHERE NOT r.is_local;
COMMENT ON VIEW meridian.region_status IS
    'one row per peer region: connected, the peer''s WAL position applied here, seconds since the peer''s last applied heartbeat, the last stream error';

CREATE FUNCTION meridian.create_region(name text, conninfo text, public_key bytea DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF name IS NULL OR conninfo IS NULL THEN
        RAISE EXCEPTION 'region name and conninfo must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name !~ '^[a-z0-9][a-z0-9_-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid region name "%"', name USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A region name is 1 to 63 characters: lowercase ASCII letters, digits, "_" and "-", starting with a letter or digit.';
    END IF;
    IF public_key IS NOT NULL AND length(public_key) <> 32 THEN
        RAISE EXCEPTION 'invalid Ed25519 public key for region "%"', name USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('A public key is 32 bytes, not %s.', length(public_key)),
            HINT = 'meridian-replicator keygen prints it as 64 hex digits: pass decode(''<hex>'', ''hex'').';
    END IF;
    LOCK TABLE meridian.regions IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT FROM meridian.regions r WHERE r.name = create_region.name) THEN
        RAISE EXCEPTION 'region "%" already exists', name USING ERRCODE = 'duplicate_object';
    END IF;
    -- A peer streams from the slot named after this region with "-" as "_" (slot names allow no
    -- "-"): two regions with the same slot name would take each other's changes.
    IF EXISTS (SELECT FROM meridian.regions r WHERE replace(r.name, '-', '_') = replace(create_region.name, '-', '_')) THEN
        RAISE EXCEPTION 'region name "%" collides with region "%"', name,
            (SELECT r.name FROM meridian.regions r WHERE replace(r.name, '-', '_') = replace(create_region.name, '-', '_'))
            USING ERRCODE = 'duplicate_object',
            DETAIL = format('Both would use the replication slot "%s" ("-" becomes "_" in slot names).', replace(name, '-', '_'));
    END IF;
    -- Shared memory keeps the progress of 64 peers (src/consistency/shared_state.cpp).
    IF (SELECT count(*) FROM meridian.regions) >= 65 THEN
        RAISE EXCEPTION 'too many regions' USING ERRCODE = 'program_limit_exceeded',
            DETAIL = 'A replication group has at most 65 regions: each server keeps the progress of at most 64 peers.',
            HINT = 'Drop a region you no longer use with meridian.drop_region.';
    END IF;
    INSERT INTO meridian.regions (name, conninfo, public_key) VALUES (name, conninfo, public_key);
    PERFORM meridian.replication_catalog_changed();
END $$;
COMMENT ON FUNCTION meridian.create_region(text, text, bytea) IS
    'registers a region (this one or a peer): its name, the libpq conninfo other regions reach it with, its Ed25519 public key (32 bytes)';

CREATE FUNCTION meridian.set_local_region(name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    LOCK TABLE meridian.regions IN SHARE ROW EXCLUSIVE MODE;
    IF NOT EXISTS (SELECT FROM meridian.regions r WHERE r.name = set_local_region.name) THEN
        RAISE EXCEPTION 'region "%" does not exist', name USING ERRCODE = 'undefined_object',
            HINT = 'Register it first with meridian.create_region.';
    END IF;
    -- Two statements: the unique index on is_local is checked row by row.
    UPDATE meridian.regions r SET is_local = false WHERE r.is_local AND r.name <> set_local_region.name;
    UPDATE meridian.regions r SET is_local = true WHERE r.name = set_local_region.name AND NOT r.is_local;
    DELETE FROM meridian.region_progress p WHERE p.region = set_local_region.name;
    PERFORM meridian.replication_catalog_changed();
END $$;
COMMENT ON FUNCTION meridian.set_local_region(text) IS
    'marks the registered region this database is (and no other)';

CREATE FUNCTION meridian.drop_region(name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM meridian.regions r WHERE r.name = drop_region.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'region "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    -- Its progress in shared memory (src/consistency) goes too; not transactional, harmless if
    -- this rolls back (the replicator notes it again with the next heartbeat).
    PERFORM meridian.forget_peer_progress(name);
    PERFORM meridian.replication_catalog_changed();
END $$;
COMMENT ON FUNCTION meridian.drop_region(text) IS 'removes a region from the catalog (its progress row goes with it)';

CREATE FUNCTION meridian.replicate_table(tbl regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c pg_catalog.pg_class;
    key_cols int2[];
    key_type oid;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO c FROM pg_class WHERE oid = tbl;
    IF c.relkind <> 'r' THEN
        RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = 'wrong_object_type',
            DETAIL = 'Only plain tables can be replicated (no partitioned tables, views, foreign tables).';
    END IF;
    IF c.relpersistence <> 'p' THEN
        RAISE EXCEPTION 'table "%" is not logged', tbl USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'Changes of temporary and unlogged tables are not written to WAL, so they cannot be replicated.';
    END IF;
    SELECT i.indkey::int2[], a.atttypid INTO key_cols, key_type
    FROM pg_index i
    LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = tbl AND i.indisprimary;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table "%" has no primary key', tbl USING ERRCODE = 'invalid_table_definition',
            HINT = 'A replicated table needs a primary key of one uuid column, e.g. id uuid GENERATED ALWAYS AS (meridian.vector_id(embedding)) STORED PRIMARY KEY.';
    END IF;
    IF cardinality(key_cols) <> 1 OR key_type IS DISTINCT FROM 'uuid'::regtype THEN
        RAISE EXCEPTION 'the primary key of table "%" is not one uuid column', tbl USING ERRCODE = 'invalid_table_definition',
            DETAIL = format('Its primary key is (%s).',
                            (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY k.n)
                             FROM unnest(key_cols) WITH ORDINALITY AS k(attnum, n)
                             JOIN pg_attribute a ON a.attrelid = tbl AND a.attnum = k.attnum)),
            HINT = 'Replication identifies rows by a uuid primary key of exactly one column.';
    END IF;
    IF c.relreplident NOT IN ('d', 'f') THEN
        RAISE EXCEPTION 'table "%" does not log its primary key on delete', tbl USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'Its replica identity is neither DEFAULT nor FULL.',
            HINT = format('ALTER TABLE %s REPLICA IDENTITY DEFAULT', tbl);
    END IF;
    -- (ON CONFLICT is not available on user catalog tables.)
    LOCK TABLE meridian.replicated_tables IN SHARE ROW EXCLUSIVE MODE;
    IF NOT EXISTS (SELECT FROM meridian.replicated_tables r WHERE r.relid = tbl) THEN
        INSERT INTO meridian.replicated_tables (relid) VALUES (tbl);
        PERFORM meridian.replication_catalog_changed();
    END IF;
    -- Deletes leave tombstones (src/apply, docs/apply.md): for local deletes and, ENABLE ALWAYS,
    -- for the replicator's under session_replication_role = replica.
    IF NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = tbl AND t.tgname = 'meridian_tombstone') THEN
        EXECUTE format('CREATE TRIGGER meridian_tombstone AFTER DELETE ON %s FOR EACH ROW EXECUTE FUNCTION meridian.tombstone_trigger()', tbl);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = tbl AND t.tgname = 'meridian_tombstone' AND t.tgenabled = 'A') THEN
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER meridian_tombstone', tbl);
    END IF;
    -- Writes wait for the write quorum at commit (src/consistency, docs/consistency.md); this marks
    -- the transactions that need it. Not fired by the replicator (session_replication_role = replica).
    IF NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = tbl AND t.tgname = 'meridian_quorum_write') THEN
        EXECUTE format('CREATE TRIGGER meridian_quorum_write AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH STATEMENT EXECUTE FUNCTION meridian.note_replicated_write()', tbl);
    END IF;
END $$;
COMMENT ON FUNCTION meridian.replicate_table(regclass) IS
    'replicates a table (idempotent): it needs a primary key of one uuid column; create the same table in every region';

CREATE FUNCTION meridian.local_public_key() RETURNS bytea
    AS 'MODULE_PATHNAME', 'meridian_local_public_key' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION meridian.local_public_key() IS
    'the Ed25519 public key (32 bytes) of the secret key in meridian.signing_key_file';

-- The SET clauses pin every setting that changes a value's text form, so every region (and
-- every session) hashes the same text for the same value.
CREATE FUNCTION meridian.table_checksum(tbl regclass) RETURNS text
    AS 'MODULE_PATHNAME', 'meridian_table_checksum' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
    SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' SET timezone = 'UTC'
    SET extra_float_digits = 1 SET bytea_output = 'hex' SET lc_monetary = 'C';
COMMENT ON FUNCTION meridian.table_checksum(regclass) IS
    'row-order-independent content hash: "<rows>:<sum mod 2^256 of each row''s SHA-256, 64 hex>"; equal in two regions exactly when the contents are';

REVOKE ALL ON FUNCTION meridian.create_region(text, text, bytea), meridian.set_local_region(text),
    meridian.drop_region(text), meridian.replicate_table(regclass) FROM PUBLIC;

-- A dropped table leaves the replicated set at once: its OID could otherwise be reused by an
-- unrelated table that would then be replicated by mistake.
CREATE FUNCTION meridian.forget_dropped_tables() RETURNS event_trigger
    LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    DELETE FROM meridian.replicated_tables r
    USING pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND r.relid::oid = d.objid;
    IF FOUND THEN
        PERFORM meridian.replication_catalog_changed();
    END IF;
END
$$;
REVOKE ALL ON FUNCTION meridian.forget_dropped_tables() FROM PUBLIC;
CREATE EVENT TRIGGER meridian_forget_dropped_tables ON sql_drop
    EXECUTE FUNCTION meridian.forget_dropped_tables();
