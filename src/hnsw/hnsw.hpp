// The hnsw index access method: shared structs, limits and declarations of the glue files.
// Storage design: docs/architecture.md ("The hnsw index storage").
#pragma once

#include "pg/postgres.hpp"
#include "core/hnsw_layout.hpp"

extern "C" {
#include "access/amapi.h"
#include "access/generic_xlog.h"
#include "access/genam.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
}

#include <cstdint>

namespace meridian::hnsw {

// ---- limits and defaults (SQL-visible) ----
constexpr int default_m = 16;
constexpr int min_m = 2;
constexpr int max_m = 100;
constexpr int default_ef_construction = 64;
constexpr int min_ef_construction = 4;
constexpr int max_ef_construction = 1000;
constexpr int default_ef_search = 40;
constexpr int min_ef_search = 1;
constexpr int max_ef_search = 1000;

enum class metric : std::uint32_t { l2 = 0, inner_product = 1, cosine = 2 };

enum class iterative_mode : int { off = 0, relaxed_order = 1, strict_order = 2 };

// GUCs (options.cpp)
extern int ef_search;
extern int iterative_scan;   // iterative_mode
extern int max_scan_tuples;
extern int build_threads;

// Build progress subphases reported in pg_stat_progress_create_index.
constexpr int phase_loading = 2;  // 1 is PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE
constexpr int phase_building = 3;
constexpr int phase_writing = 4;
constexpr int phase_inserting = 5;

// reloptions
struct index_options {
    int32 vl_len_;
    int m;
    int ef_construction;
};

// ---- pages ----
constexpr uint32 page_magic = 0x4D524448;  // "MRDH"
constexpr uint32 format_version = 1;
constexpr BlockNumber meta_block = 0;
constexpr BlockNumber first_stream_block = 1;

// Special space of every page, so tools can recognise them.
struct page_special {
    uint32 magic;
    uint16 kind;   // 0 meta, 1 stream
    uint16 unused;
};

struct meta_page {
    uint32 magic;
    uint32 version;
    uint32 dims;
    uint32 m;
    uint32 ef_construction;
    uint32 metric;
    uint32 record_size;
    uint32 high_water;    // ids below this have been allocated
    uint32 entry_point;   // invalid_id when the graph is empty
    int32 entry_level;
    uint32 slab_id;       // slab currently being filled (invalid_id if none)
    uint32 slab_used;     // lists used in it
    uint32 free_head;     // first slot of the free chain (invalid_id: empty); see free_chain_offset
    uint32 free_count;    // slots in the chain
};

constexpr std::size_t page_content_offset = MAXALIGN(SizeOfPageHeaderData);
constexpr std::size_t page_special_size = MAXALIGN(sizeof(page_special));
constexpr std::size_t stream_page_payload = BLCKSZ - page_content_offset - page_special_size;
// A slot VACUUM freed holds the next free slot's id at this offset of its record (the rest is zero).
constexpr std::uint32_t free_chain_offset = 4;

// Immutable facts about one index, read from its meta page once per relcache entry.
struct index_shape {
    metric kind;
    int ef_construction;
    record_layout layout;
};

// What a backend caches per index in rd_amcache (palloc'd in rd_indexcxt, plain data only):
// the shape, and for each block the buffer it was last found in, so that most page reads skip
// the shared buffer mapping table (ReadRecentBuffer).
struct index_cache {
    index_shape shape;
    Buffer *recent;
    BlockNumber recent_size;
    BlockNumber known_blocks;  // the relation has at least this many blocks (it never shrinks)
};

// pages.cpp
void init_meta_page(Page page, const index_shape &shape);
index_cache &cache_of(Relation index);
void init_stream_page(Page page);
const index_shape &shape_of(Relation index);  // cached in rd_amcache
metric metric_of_opclass(Relation index);
uint32 max_dims_for(int m);

// Access method callbacks (one file each).
IndexBuildResult *build(Relation heap, Relation index, IndexInfo *info);
void build_empty(Relation index);
bool insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid, Relation heap,
            IndexUniqueCheck check_unique, bool index_unchanged, IndexInfo *info);
IndexScanDesc begin_scan(Relation index, int nkeys, int norderbys);
void rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys);
bool get_tuple(IndexScanDesc scan, ScanDirection dir);
void end_scan(IndexScanDesc scan);
IndexBulkDeleteResult *bulk_delete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
                                   IndexBulkDeleteCallback callback, void *callback_state);
IndexBulkDeleteResult *vacuum_cleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats);
bytea *parse_options(Datum reloptions, bool validate);
void cost_estimate(struct PlannerInfo *root, struct IndexPath *path, double loop_count, Cost *startup_cost,
                   Cost *total_cost, Selectivity *selectivity, double *correlation, double *pages);

}  // namespace meridian::hnsw
