-- When the planner uses an hnsw index: only for ORDER BY <the opclass operator> (ascending) on the
-- indexed column, chosen on cost alone on a 2,000-row table.
SET hnsw.build_threads = 1;

CREATE TABLE hnsw_plan (id int PRIMARY KEY, v vector(8));
INSERT INTO hnsw_plan
SELECT i, ARRAY[(i * 37 + 11) % 101, (i * 53 + 7) % 103, (i * 71 + 3) % 107, (i * 29 + 5) % 109,
                (i * 83 + 1) % 113, (i * 17 + 13) % 127, (i * 43 + 2) % 131, (i * 61 + 9) % 137]::real[]::vector
FROM generate_series(1, 2000) i;
CREATE INDEX hnsw_plan_l2 ON hnsw_plan USING hnsw (v vector_l2_ops);
CREATE INDEX hnsw_plan_cos ON hnsw_plan USING hnsw (v vector_cosine_ops);
ANALYZE hnsw_plan;

-- Chosen by cost, without disabling anything
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_plan ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_plan ORDER BY v <=> '[50,50,50,50,50,50,50,50]' LIMIT 5;
-- the same with the sequential scan disabled
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_plan ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 5;
RESET enable_seqscan;
-- the index plan's estimated cost is below the sort's, and the scan's startup cost is most of it
CREATE FUNCTION pg_temp.plan_costs(query text, OUT node text, OUT startup float8, OUT total float8)
LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
    node := plan->0->'Plan'->'Plans'->0->>'Node Type';
    startup := (plan->0->'Plan'->'Plans'->0->>'Startup Cost')::float8;
    total := (plan->0->'Plan'->>'Total Cost')::float8;
END $$;
CREATE TEMP TABLE hnsw_plan_costs AS
SELECT 'index' AS plan, * FROM pg_temp.plan_costs($$SELECT id FROM hnsw_plan ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 5$$);
SET enable_indexscan = off;
INSERT INTO hnsw_plan_costs
SELECT 'sort', * FROM pg_temp.plan_costs($$SELECT id FROM hnsw_plan ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 5$$);
RESET enable_indexscan;
SELECT plan, node FROM hnsw_plan_costs ORDER BY plan;
SELECT i.total < s.total AS index_cheaper, i.startup > 0 AS index_has_startup_cost
FROM hnsw_plan_costs i, hnsw_plan_costs s WHERE i.plan = 'index' AND s.plan = 'sort';

-- A parameterised query (generic plan) uses it too
PREPARE hnsw_plan_knn(vector) AS SELECT id FROM hnsw_plan ORDER BY v <-> $1 LIMIT 5;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE hnsw_plan_knn('[50,50,50,50,50,50,50,50]');
EXECUTE hnsw_plan_knn('[50,50,50,50,50,50,50,50]');
RESET plan_cache_mode;
DEALLOCATE hnsw_plan_knn;

-- Never an index-only scan or a bitmap scan: the index keeps no column values for the executor
EXPLAIN (COSTS OFF) SELECT v FROM hnsw_plan ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 5;

-- Not used, even with the sequential scan disabled:
SET enable_seqscan = off;
-- no ORDER BY
EXPLAIN (COSTS OFF) SELECT count(*) FROM hnsw_plan;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_plan WHERE v <-> '[50,50,50,50,50,50,50,50]' < 20;
-- an operator without an hnsw operator class here
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_plan ORDER BY v <#> '[50,50,50,50,50,50,50,50]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_plan ORDER BY v <+> '[50,50,50,50,50,50,50,50]' LIMIT 5;
-- descending distance
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_plan ORDER BY v <-> '[50,50,50,50,50,50,50,50]' DESC LIMIT 5;
-- the distance function instead of the operator
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_plan ORDER BY l2_distance(v, '[50,50,50,50,50,50,50,50]') LIMIT 5;
-- an expression of the column
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_plan ORDER BY (v + v) <-> '[50,50,50,50,50,50,50,50]' LIMIT 5;
RESET enable_seqscan;

-- The indexed column on the right of the operator: <-> is its own commutator, so the index serves
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_plan ORDER BY '[50,50,50,50,50,50,50,50]' <-> v LIMIT 5;

-- With both indexes dropped the same queries sort
DROP INDEX hnsw_plan_l2, hnsw_plan_cos;
EXPLAIN (COSTS OFF) SELECT id FROM hnsw_plan ORDER BY v <-> '[50,50,50,50,50,50,50,50]' LIMIT 5;

RESET hnsw.build_threads;
DROP TABLE hnsw_plan;
