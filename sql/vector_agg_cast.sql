-- The vector type: aggregates and casts.
CREATE FUNCTION pg_temp.sqlstate_of(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- avg and sum
SELECT avg(v), sum(v) FROM (VALUES ('[1,2,3]'::vector), ('[4,5,6]'), ('[1,1,1]')) t(v);
SELECT avg(v), sum(v) FROM (VALUES ('[1,2]'::vector), (NULL), ('[3,5]')) t(v);
SELECT avg(v), sum(v) FROM (VALUES (NULL::vector), (NULL)) t(v);
SELECT avg(v), sum(v) FROM (VALUES ('[1,2]'::vector)) t(v) WHERE false;
SELECT avg(v) IS NULL AS avg_null, sum(v) IS NULL AS sum_null FROM (SELECT '[1]'::vector v WHERE false) t;
SELECT avg(v) FROM (VALUES ('[1,2]'::vector), ('[1,2,3]')) t(v);
SELECT sum(v) FROM (VALUES ('[1,2]'::vector), ('[1,2,3]')) t(v);
SELECT sum(v) FROM (VALUES ('[3e38]'::vector), ('[3e38]')) t(v);
SELECT avg(v) FROM (VALUES ('[3e38]'::vector), ('[3e38]')) t(v);  -- sums in double: no overflow
SELECT k, avg(v), sum(v) FROM (VALUES (1, '[1,1]'::vector), (2, '[2,4]'), (1, '[3,3]'), (2, NULL)) t(k, v)
GROUP BY k ORDER BY k;
-- Window frames and grouping sets (sum updates its state in place: earlier results must not change)
SELECT id, sum(v) OVER (ORDER BY id) AS running_sum,
       avg(v) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS moving_avg,
       sum(v) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS moving_sum
FROM (VALUES (1, '[1,1]'::vector), (2, '[2,2]'), (3, NULL), (4, '[4,4]')) t(id, v) ORDER BY id;
SELECT g, sum(v), avg(v) FROM (VALUES (1, '[1,1]'::vector), (2, '[2,2]'), (1, '[3,3]')) t(g, v)
GROUP BY ROLLUP (g) ORDER BY g;
-- The transition functions called directly leave their arguments alone
SELECT vector_accum('{0}', '[1,2]'), vector_accum('{1,1,2}', '[3,4]'), vector_avg('{2,4,6}');
SELECT vector_combine('{1,1,2}', '{2,3,4}'), vector_combine('{0}', '{1,5,6}'), vector_combine('{1,5,6}', '{0}');
SELECT vector_avg('{0}') IS NULL AS empty;
SELECT pg_temp.sqlstate_of($$SELECT vector_combine('{1,1,2}', '{1,1,2,3}')$$);
-- From a table, where small values are stored with short headers
CREATE TABLE vector_agg_t (k int, v vector(3));
INSERT INTO vector_agg_t SELECT i % 3, ARRAY[i, i % 7, -i]::vector FROM generate_series(1, 3000) i;
INSERT INTO vector_agg_t VALUES (0, NULL);
SELECT avg(v), sum(v) FROM vector_agg_t;
SELECT k, avg(v), sum(v) FROM vector_agg_t GROUP BY k ORDER BY k;
-- Parallel plans: partial aggregates combined
ALTER TABLE vector_agg_t SET (parallel_workers = 2);
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM vector_agg_t;
SELECT avg(v), sum(v) FROM vector_agg_t;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
SELECT a.aggfnoid::regprocedure, a.aggtransfn, a.aggcombinefn, a.aggfinalfn, a.agginitval, p.proparallel
FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
WHERE p.proargtypes[0] = 'vector'::regtype ORDER BY 1::text;
DROP TABLE vector_agg_t;

-- Casts from arrays (assignment) and to real[] (implicit)
SELECT ARRAY[1,2,3]::vector, ARRAY[1.5,2.25]::real[]::vector, ARRAY[0.1,-2]::float8[]::vector,
       ARRAY[1.5,2.125]::numeric[]::vector;
SELECT '{1,2,3}'::int[]::vector(3), '{1,2,3}'::real[]::vector(3), '{1,2,3}'::float8[]::vector(3),
       '{1,2,3}'::numeric[]::vector(3);
SELECT '[1,2,3]'::vector::real[], '[1.5,-0]'::vector::real[];
SELECT array_length('[1,2,3]'::vector::real[], 1), ('[1,2,3]'::vector::real[])[2];
SELECT ('[1,2,3]'::vector::real[])::vector = '[1,2,3]' AS round_trip;
SELECT '[1,2,3]'::vector(3)::real[];
SELECT pg_typeof(v), v FROM (SELECT '[4,5]'::vector::real[] AS v) t;
SELECT castcontext, castsource::regtype, casttarget::regtype FROM pg_cast
WHERE castsource = 'vector'::regtype OR casttarget = 'vector'::regtype ORDER BY 2::text, 3::text;
-- Assignment from arrays into vector columns
CREATE TABLE vector_cast_t (v vector(2));
INSERT INTO vector_cast_t VALUES (ARRAY[1,2]), (ARRAY[1.5,2.5]::real[]), (ARRAY[3,4]::float8[]), (ARRAY[5,6]::numeric[]);
INSERT INTO vector_cast_t VALUES (ARRAY[1,2,3]);
INSERT INTO vector_cast_t VALUES (ARRAY[1,2,3]::float8[]);
SELECT * FROM vector_cast_t;
DROP TABLE vector_cast_t;
-- Rejected arrays
SELECT ARRAY[[1,2],[3,4]]::vector;
SELECT ARRAY[1,NULL,3]::vector;
SELECT '{}'::int[]::vector;
SELECT ARRAY[1,2]::vector(3);
SELECT pg_temp.sqlstate_of(q) FROM (VALUES
    ($$SELECT ARRAY[[1,2],[3,4]]::vector$$),
    ($$SELECT ARRAY[[1.5]]::real[]::vector$$),
    ($$SELECT ARRAY[1,NULL]::vector$$),
    ($$SELECT ARRAY[NULL]::float8[]::vector$$),
    ($$SELECT '{}'::real[]::vector$$),
    ($$SELECT ARRAY[1,2]::vector(3)$$),
    ($$SELECT ARRAY['NaN']::real[]::vector$$),
    ($$SELECT ARRAY['Infinity']::real[]::vector$$),
    ($$SELECT ARRAY['-Infinity']::float8[]::vector$$),
    ($$SELECT ARRAY['NaN']::numeric[]::vector$$),
    ($$SELECT ARRAY[1e50]::float8[]::vector$$),
    ($$SELECT ARRAY[1e50]::numeric[]::vector$$),
    ($$SELECT array_fill(1, ARRAY[16001])::vector$$),
    ($$SELECT array_fill(1, ARRAY[16000])::vector(16000)$$)) t(q);
