-- Deterministic ids: meridian.uuid_v5 (RFC 9562 UUIDv5) and meridian.vector_id.
-- uuid-ossp's uuid_generate_v5 and a pgcrypto SHA-1 reference serve as independent implementations.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- The four functions are IMMUTABLE STRICT PARALLEL SAFE.
SELECT p.oid::regprocedure AS function, p.provolatile, p.proisstrict, p.proparallel, p.prorettype::regtype
FROM pg_proc p
WHERE p.pronamespace = 'meridian'::regnamespace AND p.proname IN ('uuid_v5', 'vector_id')
ORDER BY 1::text;

-- RFC 9562 appendix A.4: namespace DNS, name "www.example.com".
SELECT meridian.uuid_v5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com');
SELECT meridian.uuid_v5(uuid_ns_dns(), 'www.example.com') = '2ed6657d-e927-568b-95e1-2665a8aea6a2' AS rfc_example;
SELECT meridian.uuid_v5(uuid_ns_dns(), 'www.example.com'::bytea) = '2ed6657d-e927-568b-95e1-2665a8aea6a2' AS rfc_example_bytea;

-- Text names agree with uuid-ossp, including the empty name and non-ASCII names.
SELECT name, meridian.uuid_v5(uuid_ns_url(), name) AS meridian,
       meridian.uuid_v5(uuid_ns_url(), name) = uuid_generate_v5(uuid_ns_url(), name) AS same_as_uuid_ossp
FROM (VALUES (''), ('a'), ('http://www.example.com/'), ('https://meridian.example/items/42')) AS t(name)
ORDER BY name COLLATE "C";
SELECT name, meridian.uuid_v5(uuid_ns_dns(), name) = uuid_generate_v5(uuid_ns_dns(), name) AS same_as_uuid_ossp,
       meridian.uuid_v5(uuid_ns_dns(), name) = meridian.uuid_v5(uuid_ns_dns(), convert_to(name, 'UTF8')) AS same_as_utf8_bytes
FROM (VALUES ('Grüße'), ('日本語のテキスト'), ('emoji 🚀'), (E'tab\tnewline\n'), ('Ωμέγα')) AS t(name)
ORDER BY name COLLATE "C";

-- Many names, of lengths 0..300 (every SHA-1 padding case) and in every standard namespace.
WITH names(name) AS (
    SELECT 'name-' || i FROM generate_series(1, 1000) AS i
    UNION SELECT repeat('x', i) FROM generate_series(0, 300) AS i
    UNION SELECT repeat('ü', i) FROM generate_series(0, 100) AS i
), namespaces(ns) AS (
    VALUES (uuid_ns_dns()), (uuid_ns_url()), (uuid_ns_oid()), (uuid_ns_x500()),
           ('f0630310-45a1-4419-af4e-294c5f495dad'::uuid), ('00000000-0000-0000-0000-000000000000'::uuid)
)
SELECT count(*) AS compared,
       count(*) FILTER (WHERE meridian.uuid_v5(ns, name) IS DISTINCT FROM uuid_generate_v5(ns, name)) AS different,
       count(DISTINCT meridian.uuid_v5(ns, name)) AS distinct_ids
FROM names, namespaces;

-- Bytea names (any bytes, also NUL and invalid UTF-8) agree with SHA-1 computed by pgcrypto:
-- the first 16 bytes of SHA-1(namespace || name), version nibble 5, variant bits 10.
CREATE FUNCTION pg_temp.ref_v5(ns uuid, name bytea) RETURNS uuid LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT encode(set_byte(set_byte(d, 6, (get_byte(d, 6) & 15) | 80), 8, (get_byte(d, 8) & 63) | 128), 'hex')::uuid
    FROM (SELECT substr(digest(uuid_send(ns) || name, 'sha1'), 1, 16) AS d) AS s
$$;
SELECT name, meridian.uuid_v5(uuid_ns_oid(), name) AS meridian,
       meridian.uuid_v5(uuid_ns_oid(), name) = pg_temp.ref_v5(uuid_ns_oid(), name) AS same_as_reference
FROM (VALUES (''::bytea), ('\x00'), ('\x0000'), ('\xff'), ('\xc328'), ('\x00ff80017f')) AS t(name)
ORDER BY name COLLATE "C";
SELECT count(*) AS compared,
       count(*) FILTER (WHERE meridian.uuid_v5(uuid_ns_x500(), name) IS DISTINCT FROM pg_temp.ref_v5(uuid_ns_x500(), name)) AS different
FROM (SELECT decode(repeat(lpad(to_hex(i % 256), 2, '0'), i), 'hex') AS name FROM generate_series(0, 300) AS i) AS t;

-- vector_id: UUIDv5 over the canonical bytes (dim as uint32 little-endian, then each element as
-- little-endian float32, -0.0 as 0.0) in the Meridian namespace; a reference built from
-- int4send/float4send (big-endian, so reversed) and pgcrypto.
CREATE FUNCTION pg_temp.le(b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT string_agg(substr(b, i, 1), ''::bytea ORDER BY i DESC) FROM generate_series(1, length(b)) AS i
$$;
CREATE FUNCTION pg_temp.canonical(v vector) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_temp.le(int4send(vector_dims(v)))
           || string_agg(pg_temp.le(float4send(CASE WHEN x = 0 THEN 0::real ELSE x END)), ''::bytea ORDER BY o)
    FROM unnest(v::real[]) WITH ORDINALITY AS t(x, o)
$$;
SELECT pg_temp.canonical('[1,-2.5,0]');
SELECT pg_temp.canonical('[0,-0]') AS canonical_of_negative_zero;
SELECT meridian.vector_id('[1,2,3]');
SELECT meridian.vector_id('[1,2,3]') = pg_temp.ref_v5('f0630310-45a1-4419-af4e-294c5f495dad', pg_temp.canonical('[1,2,3]')) AS same_as_reference;
SELECT setseed(0.25);
WITH vectors AS (
    SELECT d, array_agg(CASE WHEN random() < 0.1 THEN -0.0 ELSE random() * 20 - 10 END ORDER BY i)::real[]::vector AS v
    FROM generate_series(1, 40) AS d, generate_series(1, d * 7) AS i
    GROUP BY d
)
SELECT count(*) AS compared,
       count(*) FILTER (WHERE meridian.vector_id(v) IS DISTINCT FROM
                              pg_temp.ref_v5('f0630310-45a1-4419-af4e-294c5f495dad', pg_temp.canonical(v))) AS different,
       count(*) FILTER (WHERE meridian.vector_id(v, uuid_ns_dns()) IS DISTINCT FROM
                              pg_temp.ref_v5(uuid_ns_dns(), pg_temp.canonical(v))) AS different_in_dns_namespace
FROM vectors;

-- Deterministic, and -0.0 is 0.0; the one-argument form is the Meridian namespace.
SELECT meridian.vector_id('[0,-0]') AS negative_zero, meridian.vector_id('[0,0]') AS zero,
       meridian.vector_id('[0,-0]') = meridian.vector_id('[0,0]') AS same;
SELECT meridian.vector_id('[-0]') = meridian.vector_id('[0]') AS same_1d;
SELECT meridian.vector_id('[1.5,-2.25]') AS a, meridian.vector_id('[1.5, -2.25]') AS b;
SELECT meridian.vector_id('[1,2,3]') = meridian.vector_id('[1,2,3]', 'f0630310-45a1-4419-af4e-294c5f495dad') AS default_namespace;
-- Different values, dimensions or namespaces give different ids.
SELECT meridian.vector_id('[1,2,3]') <> meridian.vector_id('[1,2,3.0000002]') AS by_value,
       meridian.vector_id('[1,2]') <> meridian.vector_id('[1,2,0]') AS by_dimension,
       meridian.vector_id('[1,2,3]') <> meridian.vector_id('[1,2,3]', uuid_ns_dns()) AS by_namespace,
       meridian.uuid_v5(uuid_ns_dns(), 'x') <> meridian.uuid_v5(uuid_ns_url(), 'x') AS uuid_v5_by_namespace;
-- The typmod plays no part.
SELECT meridian.vector_id('[1,2,3]'::vector(3)) = meridian.vector_id('[1,2,3]'::vector) AS typmod_independent;

-- STRICT: NULL in, NULL out.
SELECT meridian.uuid_v5(NULL, 'a') IS NULL AS a, meridian.uuid_v5(uuid_ns_dns(), NULL::text) IS NULL AS b,
       meridian.uuid_v5(uuid_ns_dns(), NULL::bytea) IS NULL AS c, meridian.vector_id(NULL) IS NULL AS d,
       meridian.vector_id(NULL, uuid_ns_dns()) IS NULL AS e, meridian.vector_id('[1]', NULL) IS NULL AS f;

-- A generated primary key: the same vector twice violates it (also as -0.0).
CREATE TABLE ids_items (
    id uuid GENERATED ALWAYS AS (meridian.vector_id(embedding)) STORED PRIMARY KEY,
    embedding vector(3) NOT NULL
);
INSERT INTO ids_items (embedding) VALUES ('[1,2,3]'), ('[4,5,6]'), ('[0,0,1]') RETURNING id, embedding;
INSERT INTO ids_items (embedding) VALUES ('[1,2,3]');
INSERT INTO ids_items (embedding) VALUES ('[-0,0,1]');
UPDATE ids_items SET embedding = '[4,5,6]' WHERE embedding = '[1,2,3]';
UPDATE ids_items SET embedding = '[7,8,9]' WHERE embedding = '[1,2,3]' RETURNING id = meridian.vector_id('[7,8,9]') AS id_follows;
SELECT count(*) AS rows, count(*) FILTER (WHERE id = meridian.vector_id(embedding)) AS ids_match FROM ids_items;
-- Without a typmod, the same vectors get the same ids.
CREATE TABLE ids_items_any (
    id uuid GENERATED ALWAYS AS (meridian.vector_id(embedding)) STORED PRIMARY KEY,
    embedding vector NOT NULL
);
INSERT INTO ids_items_any (embedding) SELECT embedding FROM ids_items;
INSERT INTO ids_items_any (embedding) VALUES ('[1,2]');
SELECT count(*) AS same_ids FROM ids_items a JOIN ids_items_any b USING (id);
-- A large vector stored out of line (TOAST) gets the id of its literal.
INSERT INTO ids_items_any (embedding) SELECT array_agg(i::real / 7 ORDER BY i)::vector FROM generate_series(1, 3000) AS i;
SELECT pg_relation_size(reltoastrelid) > 0 AS stored_out_of_line FROM pg_class WHERE oid = 'ids_items_any'::regclass;
SELECT id = meridian.vector_id((SELECT array_agg(i::real / 7 ORDER BY i)::vector FROM generate_series(1, 3000) AS i)) AS toasted_same
FROM ids_items_any WHERE vector_dims(embedding) = 3000;
INSERT INTO ids_items_any (embedding) SELECT array_agg(i::real / 7 ORDER BY i)::vector FROM generate_series(1, 3000) AS i;

DROP TABLE ids_items, ids_items_any;
DROP EXTENSION pgcrypto;
DROP EXTENSION "uuid-ossp";
