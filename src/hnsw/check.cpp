// meridian.hnsw_check(index regclass): structural facts about a graph, for tests and DBAs.
#include "hnsw/page_store.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_am.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "access/relation.h"
#include "commands/defrem.h"
}

#include <string>
#include <vector>

namespace meridian::hnsw {

struct check_result {
    int64 elements = 0;     // live + deleted graph elements
    int64 live = 0;
    int64 deleted = 0;
    int64 unreachable = 0;  // live elements a search from the entry point cannot reach
    double avg_out_degree = 0;
    int32 max_level = -1;
    int64 entry_point = -1;
    int64 free_slots = 0;
};

check_result check_index(Relation index) {
    check_result r;
    const index_shape &shape = shape_of(index);
    page_store store(index, shape);
    meta_page meta = read_meta_header(index);
    const std::uint32_t hwm = meta.high_water;
    std::vector<std::uint8_t> state(hwm, state_free), level(hwm, 0);
    double degree_sum = 0;
    std::vector<std::uint32_t> list(shape.layout.m0 + 1);
    for (std::uint32_t id = 0; id < hwm; id++) {
        if ((id & 1023) == 0)
            pg::check_for_interrupts();
        std::uint8_t h[2];
        {
            stream_read rd(index, shape.layout.record_position(id), 2);
            rd.copy(0, 2, h);
        }
        state[id] = h[0];
        level[id] = h[1];
        if (h[0] == state_live || h[0] == state_deleted) {
            r.elements++;
            (h[0] == state_live ? r.live : r.deleted)++;
            degree_sum += store.read_list(id, 0, list.data());
            if (h[1] > r.max_level)
                r.max_level = h[1];
        } else if (h[0] == state_free) {
            r.free_slots++;
        }
    }
    r.avg_out_degree = r.elements > 0 ? degree_sum / static_cast<double>(r.elements) : 0;
    if (meta.entry_point != invalid_id)
        r.entry_point = meta.entry_point;

    std::int64_t reached_live = 0;
    if (meta.entry_point != invalid_id && meta.entry_point < hwm) {
        std::vector<char> seen(hwm, 0);
        std::vector<std::uint32_t> stack{meta.entry_point};
        seen[meta.entry_point] = 1;
        while (!stack.empty()) {
            std::uint32_t id = stack.back();
            stack.pop_back();
            if (state[id] != state_live && state[id] != state_deleted)
                continue;
            reached_live += state[id] == state_live;
            for (int l = 0; l <= level[id]; l++) {
                int n = store.neighbors(id, l, list.data());  // lists and, at level 0, the duplicate ring
                for (int i = 0; i < n; i++) {
                    std::uint32_t x = list[static_cast<std::size_t>(i)];
                    if (x < hwm && !seen[x]) {
                        seen[x] = 1;
                        stack.push_back(x);
                    }
                }
            }
        }
    }
    // Deleted elements are left out: VACUUM unlinks them on purpose before freeing them.
    r.unreachable = r.live - reached_live;
    return r;
}

}  // namespace meridian::hnsw

extern "C" {
PG_FUNCTION_INFO_V1(meridian_hnsw_check);
Datum meridian_hnsw_check(PG_FUNCTION_ARGS);
}

Datum meridian_hnsw_check(PG_FUNCTION_ARGS) {
    Oid relid = PG_GETARG_OID(0);
    Relation index = relation_open(relid, AccessShareLock);
    if (index->rd_rel->relkind != RELKIND_INDEX || index->rd_rel->relam != get_index_am_oid("hnsw", false))
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("\"%s\" is not an hnsw index", RelationGetRelationName(index))));
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "return type must be a row type");
    auto r = meridian::pg::guarded([&] { return meridian::hnsw::check_index(index); });
    relation_close(index, AccessShareLock);
    Datum values[8] = {Int64GetDatum(r.elements),     Int64GetDatum(r.live),        Int64GetDatum(r.deleted),
                       Int64GetDatum(r.unreachable),  Float8GetDatum(r.avg_out_degree), Int32GetDatum(r.max_level),
                       Int64GetDatum(r.entry_point),  Int64GetDatum(r.free_slots)};
    bool nulls[8] = {};
    if (r.entry_point < 0)
        nulls[6] = true;
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
