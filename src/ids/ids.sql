
-- ---------------------------------------------------------------------------------------------
-- Deterministic ids (src/ids, docs/ids.md): name-based UUIDs (RFC 9562 UUIDv5) and vector ids,
-- the same in every region. IMMUTABLE, so they can define generated columns and index expressions.

CREATE FUNCTION meridian.uuid_v5(namespace uuid, name text) RETURNS uuid
    AS 'MODULE_PATHNAME', 'meridian_uuid_v5_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION meridian.uuid_v5(uuid, text) IS
    'RFC 9562 name-based UUID (version 5, SHA-1) of the name''s bytes in the database encoding';

CREATE FUNCTION meridian.uuid_v5(namespace uuid, name bytea) RETURNS uuid
    AS 'MODULE_PATHNAME', 'meridian_uuid_v5_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION meridian.uuid_v5(uuid, bytea) IS
    'RFC 9562 name-based UUID (version 5, SHA-1) of a binary name';

CREATE FUNCTION meridian.vector_id(v vector) RETURNS uuid
    AS 'MODULE_PATHNAME', 'meridian_vector_id' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION meridian.vector_id(vector) IS
    'deterministic id of a vector: UUIDv5 of its canonical bytes in the Meridian namespace f0630310-45a1-4419-af4e-294c5f495dad';

CREATE FUNCTION meridian.vector_id(v vector, namespace uuid) RETURNS uuid
    AS 'MODULE_PATHNAME', 'meridian_vector_id_ns' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION meridian.vector_id(vector, uuid) IS
    'deterministic id of a vector: UUIDv5 of its canonical bytes in the given namespace';
