// INSERT (and UPDATE of the indexed column): one element joins the graph on disk.
#include "core/hnsw_level.hpp"
#include "hnsw/element_input.hpp"
#include "hnsw/page_store.hpp"

#include <cstring>
#include <memory>

namespace meridian::hnsw {

bool insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid, Relation, IndexUniqueCheck, bool,
            IndexInfo *) {
    if (isnull[0])
        return false;
    const index_shape &shape = shape_of(index);
    element_input in(values[0], shape);
    if (!in.indexable())
        return false;
    const record_layout &layout = shape.layout;
    new_element e{in.data(), {}, level_for_vector(in.data(), layout.dims, static_cast<int>(layout.m), layout.max_level)};
    std::memcpy(e.tid, heap_tid, 6);

    // One visited set per backend, reused by every insert (aminsert does not nest).
    static std::unique_ptr<visited_set> visited;
    if (!visited)
        visited = std::make_unique<visited_set>();
    page_store store(index, shape);
    inserter<page_store> ins(store, layout, shape.ef_construction, *visited);
    ins.insert(e);
    return false;
}

}  // namespace meridian::hnsw
