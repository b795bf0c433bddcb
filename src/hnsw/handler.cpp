// The hnsw access method handler and the extern "C" shims of its callbacks. Every shim is a
// guarded call into C++ (src/pg/guard.hpp); the C++ implementations live one concern per file.
#include "hnsw/hnsw.hpp"
#include "hnsw/page_store.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/reloptions.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "optimizer/optimizer.h"
#include "utils/selfuncs.h"
#include "utils/float.h"
}

#include <algorithm>
#include <cmath>

namespace meridian::hnsw {

void cost_estimate(PlannerInfo *root, IndexPath *path, double loop_count, Cost *startup_cost, Cost *total_cost,
                   Selectivity *selectivity, double *correlation, double *pages) {
    GenericCosts costs = {};
    if (path->indexorderbys == NIL) {
        // Without ORDER BY distance the index cannot answer anything: never choose it.
        *startup_cost = get_float8_infinity();
        *total_cost = get_float8_infinity();
        *selectivity = 0;
        *correlation = 0;
        *pages = 0;
        return;
    }
    genericcostestimate(root, path, loop_count, &costs);
    IndexOptInfo *index = path->indexinfo;
    double tuples = std::max(index->tuples, 1.0);
    // The graph's own m and dimensions (the meta page), not the reloptions: ALTER INDEX can
    // change those without rebuilding the graph.
    Relation rel = index_open(index->indexoid, NoLock);
    const record_layout layout = shape_of(rel).layout;
    index_close(rel, NoLock);
    const int m = static_cast<int>(layout.m);
    const double dims = layout.dims;
    // A search computes the distance to about ef_search * 2m elements (a few more with levels),
    // each a record of a page; the index is usually cached, so pages cost little.
    double visits = std::min(tuples, static_cast<double>(ef_search) * 2 * m * 1.5 + std::log(tuples) * m);
    double index_pages = std::max(static_cast<double>(index->pages), 1.0);
    double pages_touched = std::min(index_pages, visits);
    double per_visit = cpu_operator_cost * (1.0 + dims / 32.0) + cpu_index_tuple_cost;
    *startup_cost = visits * per_visit + pages_touched * seq_page_cost * 0.1;
    *total_cost = *startup_cost + costs.numIndexTuples * cpu_index_tuple_cost;
    *selectivity = 1.0;
    *correlation = 0;
    *pages = pages_touched;
}

}  // namespace meridian::hnsw

using namespace meridian;

extern "C" {

static IndexBuildResult *hnsw_build(Relation heap, Relation index, IndexInfo *info) {
    return pg::guarded([&] { return hnsw::build(heap, index, info); });
}
static void hnsw_build_empty(Relation index) {
    pg::guarded([&] { hnsw::build_empty(index); });
}
static bool hnsw_insert(Relation index, Datum *values, bool *isnull, ItemPointer tid, Relation heap,
                        IndexUniqueCheck check, bool unchanged, IndexInfo *info) {
    return pg::guarded([&] { return hnsw::insert(index, values, isnull, tid, heap, check, unchanged, info); });
}
static IndexBulkDeleteResult *hnsw_bulk_delete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
                                               IndexBulkDeleteCallback callback, void *state) {
    return pg::guarded([&] { return hnsw::bulk_delete(info, stats, callback, state); });
}
static IndexBulkDeleteResult *hnsw_vacuum_cleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats) {
    return pg::guarded([&] { return hnsw::vacuum_cleanup(info, stats); });
}
static void hnsw_cost_estimate(PlannerInfo *root, IndexPath *path, double loop_count, Cost *startup, Cost *total,
                               Selectivity *sel, double *corr, double *pages) {
    pg::guarded([&] { hnsw::cost_estimate(root, path, loop_count, startup, total, sel, corr, pages); });
}
static bytea *hnsw_options(Datum reloptions, bool validate) {
    return pg::guarded([&] { return hnsw::parse_options(reloptions, validate); });
}
static bool hnsw_validate(Oid) { return true; }
static char *hnsw_phase_name(int64 phase) {
    switch (phase) {
    case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
        return const_cast<char *>("initializing");
    case hnsw::phase_loading:
        return const_cast<char *>("loading tuples");
    case hnsw::phase_building:
        return const_cast<char *>("building graph");
    case hnsw::phase_writing:
        return const_cast<char *>("writing pages");
    case hnsw::phase_inserting:
        return const_cast<char *>("inserting past maintenance_work_mem");
    default:
        return nullptr;
    }
}
static IndexScanDesc hnsw_begin_scan(Relation index, int nkeys, int norderbys) {
    return pg::guarded([&] { return hnsw::begin_scan(index, nkeys, norderbys); });
}
static void hnsw_rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys) {
    pg::guarded([&] { hnsw::rescan(scan, keys, nkeys, orderbys, norderbys); });
}
static bool hnsw_get_tuple(IndexScanDesc scan, ScanDirection dir) {
    return pg::guarded([&] { return hnsw::get_tuple(scan, dir); });
}
static void hnsw_end_scan(IndexScanDesc scan) {
    pg::guarded([&] { hnsw::end_scan(scan); });
}

PG_FUNCTION_INFO_V1(meridian_hnsw_handler);
Datum meridian_hnsw_handler(PG_FUNCTION_ARGS);

Datum meridian_hnsw_handler(PG_FUNCTION_ARGS) {
    IndexAmRoutine *am = makeNode(IndexAmRoutine);
    am->amstrategies = 0;
    am->amsupport = 2;
    am->amoptsprocnum = 0;
    am->amcanorder = false;
    am->amcanorderbyop = true;
    am->amcanbackward = false;
    am->amcanunique = false;
    am->amcanmulticol = false;
    am->amoptionalkey = true;
    am->amsearcharray = false;
    am->amsearchnulls = false;
    am->amstorage = false;
    am->amclusterable = false;
    am->ampredlocks = false;
    am->amcanparallel = false;
    am->amcaninclude = false;
    am->amusemaintenanceworkmem = false;
    am->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
    am->amkeytype = InvalidOid;
    am->ambuild = hnsw_build;
    am->ambuildempty = hnsw_build_empty;
    am->aminsert = hnsw_insert;
    am->ambulkdelete = hnsw_bulk_delete;
    am->amvacuumcleanup = hnsw_vacuum_cleanup;
    am->amcanreturn = nullptr;
    am->amcostestimate = hnsw_cost_estimate;
    am->amoptions = hnsw_options;
    am->amproperty = nullptr;
    am->ambuildphasename = hnsw_phase_name;
    am->amvalidate = hnsw_validate;
    am->amadjustmembers = nullptr;
    am->ambeginscan = hnsw_begin_scan;
    am->amrescan = hnsw_rescan;
    am->amgettuple = hnsw_get_tuple;
    am->amgetbitmap = nullptr;
    am->amendscan = hnsw_end_scan;
    am->ammarkpos = nullptr;
    am->amrestrpos = nullptr;
    am->amestimateparallelscan = nullptr;
    am->aminitparallelscan = nullptr;
    am->amparallelrescan = nullptr;
    PG_RETURN_POINTER(am);
}

}  // extern "C"
