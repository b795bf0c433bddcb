// Page initialisation and the per-relation cache of an index's shape (from its meta page).
#include "hnsw/hnsw.hpp"
#include "hnsw/page_store.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "utils/lsyscache.h"
}

#include <cstring>
#include <string>

namespace meridian::hnsw {

namespace {

void set_special(Page page, uint16 kind) {
    auto *sp = reinterpret_cast<page_special *>(PageGetSpecialPointer(page));
    sp->magic = page_magic;
    sp->kind = kind;
    sp->unused = 0;
}

}  // namespace

void init_stream_page(Page page) {
    PageInit(page, BLCKSZ, page_special_size);
    set_special(page, 1);
    // The whole content area is data: no hole for full-page images to skip.
    reinterpret_cast<PageHeader>(page)->pd_lower = static_cast<LocationIndex>(BLCKSZ - page_special_size);
}

void init_meta_page(Page page, const index_shape &shape) {
    PageInit(page, BLCKSZ, page_special_size);
    set_special(page, 0);
    auto *m = reinterpret_cast<meta_page *>(PageGetContents(page));
    std::memset(m, 0, stream_page_payload);
    m->magic = page_magic;
    m->version = format_version;
    m->dims = shape.layout.dims;
    m->m = shape.layout.m;
    m->ef_construction = static_cast<uint32>(shape.ef_construction);
    m->metric = static_cast<uint32>(shape.kind);
    m->record_size = shape.layout.record_size;
    m->high_water = 0;
    m->entry_point = invalid_id;
    m->entry_level = -1;
    m->slab_id = invalid_id;
    m->slab_used = 0;
    m->free_head = invalid_id;
    m->free_count = 0;
    reinterpret_cast<PageHeader>(page)->pd_lower = static_cast<LocationIndex>(BLCKSZ - page_special_size);
}

index_cache &cache_of(Relation index) {
    if (index->rd_amcache == nullptr) {
        meta_page m = read_meta_header(index);
        if (m.version != format_version)
            throw meridian::error(sqlstate::feature_not_supported,
                                  "hnsw index \"" + std::string(RelationGetRelationName(index)) +
                                      "\" has on-disk format " + std::to_string(m.version) + ", expected " +
                                      std::to_string(format_version),
                                  "", "REINDEX the index.");
        auto *cache = static_cast<index_cache *>(
            pg::call([&] { return MemoryContextAllocZero(index->rd_indexcxt, sizeof(index_cache)); }));
        cache->shape.kind = static_cast<metric>(m.metric);
        cache->shape.ef_construction = static_cast<int>(m.ef_construction);
        cache->shape.layout = record_layout::make(m.dims, m.m);
        index->rd_amcache = cache;
    }
    return *static_cast<index_cache *>(index->rd_amcache);
}

const index_shape &shape_of(Relation index) { return cache_of(index).shape; }

metric metric_of_opclass(Relation index) {
    Oid distance_proc = index_getprocid(index, 1, 1);
    Oid norm_proc = index_getprocid(index, 1, 2);
    if (!OidIsValid(distance_proc))
        throw meridian::error(sqlstate::invalid_object_definition, "hnsw operator class has no distance function");
    char *name = pg::call([&] { return get_func_name(distance_proc); });
    std::string fn = name ? name : "";
    if (fn == "vector_l2_squared_distance")
        return metric::l2;
    if (fn == "vector_negative_inner_product")
        return OidIsValid(norm_proc) ? metric::cosine : metric::inner_product;
    throw meridian::error(sqlstate::invalid_object_definition,
                          "hnsw operator class uses unsupported distance function \"" + fn + "\"");
}

uint32 max_dims_for(int m) {
    // A record must fit in one page's payload so that it spans at most two pages.
    record_layout none = record_layout::make(0, static_cast<std::uint32_t>(m));
    return static_cast<uint32>((stream_page_payload - none.record_size) / 4);
}

}  // namespace meridian::hnsw

namespace meridian::hnsw {

index_shape shape_for_new_index(Relation index) {
    if (index->rd_index->indnatts != 1)
        throw meridian::error(sqlstate::feature_not_supported, "hnsw indexes support one column only");
    int32 typmod = TupleDescAttr(RelationGetDescr(index), 0)->atttypmod;
    if (typmod < 1)
        throw meridian::error(sqlstate::invalid_parameter_value, "column does not have dimensions",
                              "An hnsw index needs a column declared with a dimension count, such as vector(3).");
    auto *opts = reinterpret_cast<index_options *>(index->rd_options);
    int m = opts ? opts->m : default_m;
    int efc = opts ? opts->ef_construction : default_ef_construction;
    if (efc < 2 * m)
        throw meridian::error(sqlstate::invalid_parameter_value, "ef_construction must be greater than or equal to 2 * m");
    uint32 max_dims = max_dims_for(m);
    if (static_cast<uint32>(typmod) > max_dims)
        throw meridian::error(sqlstate::program_limit_exceeded,
                              "column cannot have more than " + std::to_string(max_dims) +
                                  " dimensions for hnsw index with m = " + std::to_string(m));
    index_shape shape;
    shape.kind = metric_of_opclass(index);
    shape.ef_construction = efc;
    shape.layout = record_layout::make(static_cast<std::uint32_t>(typmod), static_cast<std::uint32_t>(m));
    return shape;
}

}  // namespace meridian::hnsw
