-- The vector type: distances, arithmetic, functions and comparison.
CREATE FUNCTION pg_temp.sqlstate_of(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Distances (small integers: every SIMD kernel gives exact sums)
SELECT l2_distance('[0,0]', '[3,4]'), '[0,0]'::vector <-> '[3,4]';
SELECT l2_distance('[1,2,3]', '[3,4,5]'), vector_l2_squared_distance('[1,2,3]', '[3,4,5]');
SELECT inner_product('[1,2,3]', '[4,5,6]'), vector_negative_inner_product('[1,2,3]', '[4,5,6]'),
       '[1,2,3]'::vector <#> '[4,5,6]';
SELECT cosine_distance('[1,2]', '[2,4]'), cosine_distance('[1,2]', '[-2,-4]'), cosine_distance('[1,0]', '[0,5]'),
       '[1,1]'::vector <=> '[1,0]';
SELECT cosine_distance('[1,2]', '[0,0]'), cosine_distance('[0,0]', '[0,0]');
SELECT l1_distance('[1,2,3]', '[4,0,3]'), '[1,2,3]'::vector <+> '[4,0,3]';
-- Long vectors (every kernel length class) give the same results as their definitions
SELECT l2_distance(a, b) = sqrt(s.l2) AS l2, inner_product(a, b) = s.ip AS ip, l1_distance(a, b) = s.l1 AS l1,
       vector_norm(a) = sqrt(s.n) AS norm
FROM generate_series(1, 70) n,
     LATERAL (SELECT array_agg((i % 7) - 3)::vector AS a, array_agg((i % 5) - 2)::vector AS b,
                     sum((((i % 7) - 3) - ((i % 5) - 2))^2) AS l2, sum(((i % 7) - 3) * ((i % 5) - 2)) AS ip,
                     sum(abs(((i % 7) - 3) - ((i % 5) - 2))) AS l1, sum(((i % 7) - 3)^2) AS n
              FROM generate_series(1, n) i) s
GROUP BY 1, 2, 3, 4;
SELECT l2_distance(array_fill(1, ARRAY[16000])::vector, array_fill(2, ARRAY[16000])::vector),
       inner_product(array_fill(1, ARRAY[784])::vector, array_fill(2, ARRAY[784])::vector);
-- Dimension mismatch
SELECT l2_distance('[1,2,3]', '[1,2]');
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ($$SELECT '[1,2,3]'::vector <-> '[1,2]'$$),
    ($$SELECT '[1,2,3]'::vector <#> '[1,2]'$$),
    ($$SELECT '[1,2,3]'::vector <=> '[1,2]'$$),
    ($$SELECT '[1,2,3]'::vector <+> '[1,2]'$$),
    ($$SELECT inner_product('[1]', '[1,2]')$$),
    ($$SELECT vector_l2_squared_distance('[1]', '[1,2]')$$),
    ($$SELECT '[1,2,3]'::vector + '[1,2]'$$),
    ($$SELECT '[1,2,3]'::vector - '[1,2]'$$),
    ($$SELECT '[1,2,3]'::vector * '[1,2]'$$)) t(q);
-- Commutators
SELECT o.oprname, c.oprname AS commutator FROM pg_operator o LEFT JOIN pg_operator c ON c.oid = o.oprcom
WHERE o.oprleft = 'vector'::regtype AND o.oprright = 'vector'::regtype ORDER BY 1;

-- Arithmetic
SELECT '[1,2,3]'::vector + '[4,5,6]', '[1,2,3]'::vector - '[4,5,6]', '[1,2,3]'::vector * '[4,5,6]';
SELECT '[3e38]'::vector + '[3e38]';
SELECT '[-3e38]'::vector - '[3e38]';
SELECT '[1e20]'::vector * '[1e20]';
SELECT '[1e-30]'::vector * '[1e-30]';
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ($$SELECT '[3e38]'::vector + '[3e38]'$$),
    ($$SELECT '[1e-30]'::vector * '[1e-30]'$$)) t(q);
SELECT '[1,2]'::vector || '[3]', '[1]'::vector || '[2]' || '[3,4]';
SELECT vector_dims(array_fill(1, ARRAY[8000])::vector || array_fill(1, ARRAY[8000])::vector);
SELECT pg_temp.sqlstate_of($$SELECT array_fill(1, ARRAY[8000])::vector || array_fill(1, ARRAY[8001])::vector$$);

-- Functions of one vector
SELECT vector_dims('[1,2,3]'), vector_dims(array_fill(0.5, ARRAY[16000])::vector);
SELECT vector_norm('[3,4]'), vector_norm('[0,0]'), vector_norm('[1,1]'), vector_norm('[-2]');
SELECT vector_norm('[3e20,4e20]'), vector_norm('[3e-30,4e-30]');  -- no float overflow or underflow
SELECT l2_normalize('[3,4]'), l2_normalize('[0,0,0]'), l2_normalize('[-5]'), l2_normalize('[3e-30,4e-30]');
SELECT vector_norm(l2_normalize('[1,2,3,4]')) BETWEEN 0.9999999 AND 1.0000001 AS unit;
SELECT subvector('[1,2,3,4,5]', 1, 3), subvector('[1,2,3,4,5]', 3, 2), subvector('[1,2,3,4,5]', 5, 1),
       subvector('[1,2,3,4,5]', 1, 5);
-- Like substring(): positions outside 1..dim are dropped
SELECT subvector('[1,2,3,4,5]', 0, 3), subvector('[1,2,3,4,5]', -1, 3), subvector('[1,2,3,4,5]', 4, 10),
       subvector('[1,2,3,4,5]', 2, 2147483647), subvector('[1,2,3,4,5]', -5, 2147483647);
SELECT subvector('[1,2,3,4,5]', -2147483648, 2147483647);
SELECT subvector('[1,2,3,4,5]', 1, 0);
SELECT subvector('[1,2,3,4,5]', 6, 1);
SELECT subvector('[1,2,3,4,5]', -1, 2);
SELECT subvector('[1,2,3,4,5]', 2147483647, 2147483647);

-- Comparison and the default btree opclass
SELECT '[1,2,3]'::vector < '[1,2,4]', '[1,2,3]'::vector <= '[1,2,3]', '[1,2,3]'::vector = '[1,2,3]',
       '[1,2,3]'::vector <> '[1,2,3]', '[1,2,4]'::vector >= '[1,2,3]', '[1,2,4]'::vector > '[1,2,3]';
SELECT '[1,2]'::vector < '[1,2,3]', '[1,2]'::vector = '[1,2,0]', '[2]'::vector > '[1,9,9]', '[-0]'::vector = '[0]';
SELECT vector_cmp('[1,2]', '[1,2]'), vector_cmp('[1,2]', '[1,3]'), vector_cmp('[1,3]', '[1,2]'),
       vector_cmp('[1,2]', '[1,2,3]'), vector_cmp('[1,2,3]', '[1,2]');
CREATE TABLE vector_ops_t (id int, v vector);
INSERT INTO vector_ops_t VALUES (1, '[1,2,3]'), (2, '[1,2]'), (3, '[0,5]'), (4, '[1,2,3]'), (5, '[-1]'),
    (6, NULL), (7, '[1,2,2.5]'), (8, '[10]');
SELECT id, v FROM vector_ops_t ORDER BY v, id;
SELECT id, v FROM vector_ops_t ORDER BY v DESC NULLS LAST, id;
SELECT DISTINCT v FROM vector_ops_t ORDER BY v;
SELECT v, count(*) FROM vector_ops_t GROUP BY v ORDER BY v;
CREATE INDEX vector_ops_t_v ON vector_ops_t (v);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM vector_ops_t WHERE v = '[1,2,3]';
SELECT id FROM vector_ops_t WHERE v = '[1,2,3]' ORDER BY id;
SELECT id FROM vector_ops_t WHERE v < '[1,2]' ORDER BY id;
SELECT id FROM vector_ops_t WHERE v >= '[1,2,3]' ORDER BY id;
RESET enable_seqscan;
SELECT opcname, opcdefault FROM pg_opclass WHERE opcintype = 'vector'::regtype AND opcmethod =
    (SELECT oid FROM pg_am WHERE amname = 'btree');
-- Nearest neighbours by sequential scan
SELECT id, v <-> '[1,2,3]' AS d FROM vector_ops_t WHERE vector_dims(v) = 3 ORDER BY v <-> '[1,2,3]', id;
DROP TABLE vector_ops_t;

-- Functions are immutable, strict and parallel safe
SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'meridian'
WHERE p.prokind = 'f' AND (p.provolatile, p.proisstrict, p.proparallel) <> ('i', true, 's')
  AND (p.proargtypes::regtype[] && ARRAY['vector'::regtype] OR p.prorettype = 'vector'::regtype)
ORDER BY 1;

-- The SIMD kernel set in use is one of three
SELECT meridian.distance_isa() IN ('scalar', 'avx2', 'avx512') AS known_isa;
