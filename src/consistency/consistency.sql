
-- ---------------------------------------------------------------------------------------------
-- Consistency per query and per write (src/consistency, docs/consistency.md): the write quorum,
-- the statement trigger that marks quorum writes, the peers' progress as meridian-replicator
-- reports it (shared memory), and meridian.region_status's staleness and availability.

CREATE TABLE meridian.write_quorum_setting (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    write_quorum integer NOT NULL CHECK (write_quorum >= 1)
);
COMMENT ON TABLE meridian.write_quorum_setting IS
    'the write quorum set with meridian.set_write_quorum (no row: the default, a majority of the regions)';
SELECT pg_catalog.pg_extension_config_dump('meridian.write_quorum_setting', '');

-- SECURITY DEFINER: any role may read the quorum its writes wait for; the catalog it counts
-- (meridian.regions, with the peers' conninfo) stays closed to them.
CREATE FUNCTION meridian.write_quorum() RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT least(coalesce((SELECT s.write_quorum FROM meridian.write_quorum_setting s), n / 2 + 1), greatest(n, 1))
    FROM (SELECT count(*)::integer AS n FROM meridian.regions) r
$$;
COMMENT ON FUNCTION meridian.write_quorum() IS
    'how many regions, this one included, must durably apply a write of a replicated table before COMMIT returns: the value set with meridian.set_write_quorum (at most the number of regions), by default floor(R/2)+1 of R regions';

CREATE FUNCTION meridian.set_write_quorum(w integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    IF w IS NULL THEN
        RAISE EXCEPTION 'write quorum must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    LOCK TABLE meridian.regions IN SHARE MODE;
    SELECT count(*) INTO n FROM meridian.regions;
    IF w < 1 OR w > greatest(n, 1) THEN
        RAISE EXCEPTION 'write quorum % is out of range', w USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('It counts regions, this one included: 1 to %s with the %s region(s) registered.', greatest(n, 1), n);
    END IF;
    DELETE FROM meridian.write_quorum_setting;
    INSERT INTO meridian.write_quorum_setting (write_quorum) VALUES (w);
    -- Backends re-read the quorum, meridian-replicator rewrites synchronous_standby_names.
    PERFORM meridian.replication_catalog_changed();
END $$;
COMMENT ON FUNCTION meridian.set_write_quorum(integer) IS
    'sets the write quorum: how many regions, this one included, must durably apply a write of a replicated table before COMMIT returns (meridian-replicator applies it to synchronous_standby_names within a second)';
REVOKE ALL ON FUNCTION meridian.set_write_quorum(integer) FROM PUBLIC;

CREATE FUNCTION meridian.note_replicated_write() RETURNS trigger
    AS 'MODULE_PATHNAME', 'meridian_note_replicated_write' LANGUAGE C;
COMMENT ON FUNCTION meridian.note_replicated_write() IS
    'statement trigger on replicated tables: marks the transaction as a quorum write (quorum admission at commit)';

CREATE FUNCTION meridian.note_peer_progress(region text, applied_through pg_lsn, watermark timestamptz) RETURNS boolean
    AS 'MODULE_PATHNAME', 'meridian_note_peer_progress' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION meridian.note_peer_progress(text, pg_lsn, timestamptz) IS
    'called by meridian-replicator after applying a peer''s heartbeat: every change of the peer before applied_through, and every commit of the peer before watermark (local clock), is applied here; false without shared_preload_libraries';
REVOKE ALL ON FUNCTION meridian.note_peer_progress(text, pg_lsn, timestamptz) FROM PUBLIC;

CREATE FUNCTION meridian.forget_peer_progress(region text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'meridian_forget_peer_progress' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION meridian.forget_peer_progress(text) IS
    'forgets what was noted about a peer''s progress (meridian.drop_region does it): bounded and strong reads then wait for the next note';
REVOKE ALL ON FUNCTION meridian.forget_peer_progress(text) FROM PUBLIC;

CREATE FUNCTION meridian.note_peer_partitioned(region text, partitioned boolean) RETURNS boolean
    AS 'MODULE_PATHNAME', 'meridian_note_peer_partitioned' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION meridian.note_peer_partitioned(text, boolean) IS
    'called by meridian-replicator every 100 ms: whether the peer is cut off from a write quorum of regions (bounded reads stop waiting for such a peer while it is unavailable here)';
REVOKE ALL ON FUNCTION meridian.note_peer_partitioned(text, boolean) FROM PUBLIC;

CREATE FUNCTION meridian.peer_freshness(OUT region text, OUT applied_through pg_lsn, OUT watermark timestamptz,
                                        OUT heartbeat_at timestamptz, OUT staleness_ms double precision,
                                        OUT unavailable boolean, OUT partitioned boolean) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'meridian_peer_freshness' LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 8;
COMMENT ON FUNCTION meridian.peer_freshness() IS
    'per peer noted since the server started: applied position, watermark and staleness on the local clock, last heartbeat, whether it is unavailable (no heartbeat for meridian.heartbeat_timeout) and whether meridian-replicator judges it cut off from a write quorum';

-- Replaces the view of regions.sql with two more columns at the end.
CREATE OR REPLACE VIEW meridian.region_status AS
SELECT r.name AS region,
       coalesce(p.connected, false) AS connected,
       p.applied_lsn,
       extract(epoch FROM now() - p.last_heartbeat)::double precision AS lag_seconds,
       p.last_heartbeat,
       p.last_error,
       f.staleness_ms,
       coalesce(f.unavailable, true) AS unavailable
FROM meridian.regions r
LEFT JOIN meridian.region_progress p ON p.region = r.name
LEFT JOIN meridian.peer_freshness() f ON f.region = r.name
WHERE NOT r.is_local;
COMMENT ON VIEW meridian.region_status IS
    'one row per peer region: connected, the peer''s WAL position applied here, seconds since the peer''s last applied heartbeat, the last stream error, how stale its data is here (ms, local clock) and whether it is unavailable (no heartbeat for meridian.heartbeat_timeout)';
-- Monitoring roles (pg_monitor, as for pg_stat_replication) read it without the catalog itself.
GRANT SELECT ON meridian.region_status TO pg_monitor;
