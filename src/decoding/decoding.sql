
-- ---------------------------------------------------------------------------------------------
-- Replication decoding (src/decoding, docs/protocol.md): SQL tools over the wire codec, the
-- output plugin's catalog invalidation and the heartbeat writer. The output plugin itself is this
-- library's _PG_output_plugin_init: pg_create_logical_replication_slot(slot, 'meridian').

CREATE FUNCTION meridian.decode_message(message bytea) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'meridian_decode_message' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION meridian.decode_message(bytea) IS
    'a replication message (docs/protocol.md) as JSON; checks its structure but NOT its signature (see verify_message)';

CREATE FUNCTION meridian.encode_message(message jsonb) RETURNS bytea
    AS 'MODULE_PATHNAME', 'meridian_encode_message' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION meridian.encode_message(jsonb) IS
    'the replication message of a JSON form (as decode_message prints it), UNSIGNED: its signature is 64 zero bytes, which never verifies';

CREATE FUNCTION meridian.verify_message(message bytea, public_key bytea) RETURNS boolean
    AS 'MODULE_PATHNAME', 'meridian_verify_message' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION meridian.verify_message(bytea, bytea) IS
    'true when the message''s header is valid and its Ed25519 signature verifies with the 32-byte public key';

CREATE FUNCTION meridian.emit_heartbeat() RETURNS pg_lsn
    AS 'MODULE_PATHNAME', 'meridian_emit_heartbeat' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION meridian.emit_heartbeat() IS
    'writes a heartbeat (non-transactional logical message "meridian.heartbeat" holding the current time) and flushes it; returns its LSN, the heartbeat''s wal_lsn. Call it from a session without a replication origin';

CREATE FUNCTION meridian.replication_catalog_changed() RETURNS void
    AS 'MODULE_PATHNAME', 'meridian_replication_catalog_changed' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION meridian.replication_catalog_changed() IS
    'invalidates the output plugin''s caches of meridian.regions and meridian.replicated_tables (called by the functions that edit them)';

REVOKE ALL ON FUNCTION meridian.emit_heartbeat(), meridian.replication_catalog_changed() FROM PUBLIC;
