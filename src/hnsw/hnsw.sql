
-- ---------------------------------------------------------------------------------------------
-- The hnsw index access method (src/hnsw)

CREATE FUNCTION meridian_hnsw_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME' LANGUAGE C;

CREATE ACCESS METHOD hnsw TYPE INDEX HANDLER meridian_hnsw_handler;
COMMENT ON ACCESS METHOD hnsw IS 'hierarchical navigable small world graph index for vectors';

CREATE OPERATOR CLASS vector_l2_ops
    DEFAULT FOR TYPE vector USING hnsw AS
    OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
    FUNCTION 1 vector_l2_squared_distance(vector, vector);

CREATE OPERATOR CLASS vector_ip_ops
    FOR TYPE vector USING hnsw AS
    OPERATOR 1 <#> (vector, vector) FOR ORDER BY float_ops,
    FUNCTION 1 vector_negative_inner_product(vector, vector);

CREATE OPERATOR CLASS vector_cosine_ops
    FOR TYPE vector USING hnsw AS
    OPERATOR 1 <=> (vector, vector) FOR ORDER BY float_ops,
    FUNCTION 1 vector_negative_inner_product(vector, vector),
    FUNCTION 2 vector_norm(vector);

CREATE FUNCTION meridian.hnsw_check(index regclass,
    OUT elements bigint, OUT live bigint, OUT deleted bigint, OUT unreachable bigint,
    OUT avg_out_degree double precision, OUT max_level integer, OUT entry_point bigint, OUT free_slots bigint)
    RETURNS record
    AS 'MODULE_PATHNAME', 'meridian_hnsw_check' LANGUAGE C STRICT VOLATILE;
-- It reads every page of the index: like amcheck's functions, only for superusers and the roles
-- they grant EXECUTE to.
REVOKE ALL ON FUNCTION meridian.hnsw_check(regclass) FROM PUBLIC;
COMMENT ON FUNCTION meridian.hnsw_check(regclass) IS
    'structure of an hnsw index: elements (live + deleted), unreachable elements from the entry point, average level-0 out-degree, max level';
