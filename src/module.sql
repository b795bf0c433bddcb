-- Meridian 0.1.0 install script, assembled by the Makefile from one part per concern
-- (src/module.sql, src/vector/*.sql, src/hnsw/*.sql, src/ids/*.sql). Edit the parts, not the
-- assembled file.
\echo Use "CREATE EXTENSION meridian" to load this file. \quit

CREATE SCHEMA meridian;
COMMENT ON SCHEMA meridian IS 'Meridian administration and inspection functions';
-- Everyone may use the schema (meridian.vector_id in a generated column, say); the
-- administration and inspection functions are revoked from PUBLIC one by one.
GRANT USAGE ON SCHEMA meridian TO PUBLIC;
