// Index scans: ORDER BY embedding <op> query. The first batch is the classic ef_search-wide
// search; when the executor wants more rows (a WHERE clause filtered some out), the same search
// continues past them (iterative scan) until hnsw.max_scan_tuples elements were visited.
#include "hnsw/element_input.hpp"
#include "hnsw/page_store.hpp"
#include "pg/context_owned.hpp"

extern "C" {
#include "access/relscan.h"
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

namespace meridian::hnsw {

namespace {

// Visited sets are large (one tag per element) and reused across the scans of a backend.
std::vector<std::unique_ptr<visited_set>> &visited_pool() {
    static std::vector<std::unique_ptr<visited_set>> pool;
    return pool;
}

struct scan_state {
    scan_state(Relation index) : shape(shape_of(index)), store(index, shape) {
        // The search reads records without pin or lock; get_tuple confirms each row it returns.
        store.set_optimistic(true);
        auto &pool = visited_pool();
        if (pool.empty()) {
            visited = std::make_unique<visited_set>();
        } else {
            visited = std::move(pool.back());
            pool.pop_back();
        }
    }
    // Runs from a memory context callback too (error cleanup): must not throw.
    ~scan_state() {
        search.reset();
        try {
            visited_pool().push_back(std::move(visited));
        } catch (...) {
            // out of memory: the visited set is simply freed instead of reused
        }
    }

    const index_shape shape;  // a copy: rd_amcache may be rebuilt between calls
    page_store store;
    std::unique_ptr<visited_set> visited;
    std::vector<float> query;
    std::unique_ptr<layer_search<page_store>> search;
    std::vector<found> batch;
    std::size_t position = 0;
    bool batch_confirmed = false;  // the rest of the batch was confirmed and re-sorted
    float last_distance = 0;
    bool started = false;
    bool have_last = false;
    int batches = 0;
};

using scan_holder = pg::context_owned<scan_state>;

scan_state &state_of(IndexScanDesc scan) { return *static_cast<scan_holder *>(scan->opaque)->get(); }

void start(IndexScanDesc scan, scan_state &so) {
    so.started = true;
    const record_layout &layout = so.shape.layout;
    bool have_query = false;
    if (!(scan->orderByData[0].sk_flags & SK_ISNULL)) {
        const vec::Vector *v = pg::call([&] { return vec::datum_get_vector(scan->orderByData[0].sk_argument); });
        if (static_cast<std::uint32_t>(v->dim) != layout.dims)
            throw meridian::error(sqlstate::data_exception, "different vector dimensions " +
                                                                std::to_string(layout.dims) + " and " +
                                                                std::to_string(v->dim));
        element_input in(v, so.shape);
        if (in.indexable()) {
            so.query.assign(in.data(), in.data() + layout.dims);
            have_query = true;
        }
    }
    if (!have_query)
        so.query.assign(layout.dims, 0.0f);
    meta_page meta = read_meta_header(scan->indexRelation);
    if (meta.entry_point == invalid_id)
        return;
    element_info info;
    found ep{0, meta.entry_point, {}};
    if (!so.store.visit(ep.id, so.query.data(), &ep.dist, &info))
        return;
    std::vector<std::uint32_t> scratch(layout.m0 + 1);
    ep = greedy_descent(so.store, so.query.data(), ep, meta.entry_level, 0, scratch);
    // The level-0 search starts from where the descent ended: measure it again for its state
    // and heap TID (it may be a deleted element, traversed but never returned).
    if (!so.store.visit(ep.id, so.query.data(), &ep.dist, &info))
        return;
    std::memcpy(ep.tid, info.tid, 6);
    so.visited->reset(meta.high_water);
    so.search = std::make_unique<layer_search<page_store>>(so.store, so.query.data(), 0, *so.visited, layout.m0);
    so.search->add_entry(ep, info.state);
}

// Confirms a search result under pin and share lock (the search read it optimistically): false
// when it is no longer a live element; else its heap TID and distance are replaced by the locked
// read's, and *moved says whether the distance differs from the search's by more than rounding
// (a write or buffer replacement raced with the optimistic read).
bool confirm(scan_state &so, found &f, bool *moved) {
    element_info info;
    float d;
    if (!so.store.visit_confirmed(f.id, so.query.data(), &d, &info) || info.state != state_live)
        return false;
    std::memcpy(f.tid, info.tid, 6);
    // The search may have summed the distance in bounded chunks: allow for that rounding.
    *moved = std::fabs(d - f.dist) > 1e-4f * std::max(std::fabs(d), 1.0f);
    if (*moved)
        f.dist = d;
    return true;
}

// After a raced result: confirm the rest of the batch and put it back in distance order.
void confirm_rest(scan_state &so) {
    std::vector<found> rest;
    rest.reserve(so.batch.size() - so.position);
    for (std::size_t i = so.position; i < so.batch.size(); i++) {
        found f = so.batch[i];
        element_info info;
        if (so.store.visit_confirmed(f.id, so.query.data(), &f.dist, &info) && info.state == state_live) {
            std::memcpy(f.tid, info.tid, 6);
            rest.push_back(f);
        }
    }
    std::stable_sort(rest.begin(), rest.end(), [](const found &a, const found &b) { return a.dist < b.dist; });
    so.batch.resize(so.position);
    so.batch.insert(so.batch.end(), rest.begin(), rest.end());
    so.batch_confirmed = true;
}

}  // namespace

IndexScanDesc begin_scan(Relation index, int nkeys, int norderbys) {
    IndexScanDesc scan = pg::call([&] { return RelationGetIndexScan(index, nkeys, norderbys); });
    auto so = std::make_unique<scan_state>(index);
    scan->opaque = pg::call([&] { return scan_holder::attach(CurrentMemoryContext, so.get()); });
    so.release();  // owned by the scan's memory context from here on
    return scan;
}

void rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys) {
    scan_state &so = state_of(scan);
    so.search.reset();
    so.batch.clear();
    so.position = 0;
    so.batch_confirmed = false;
    so.started = false;
    so.have_last = false;
    so.batches = 0;
    if (keys && scan->numberOfKeys > 0)
        std::memmove(scan->keyData, keys, static_cast<std::size_t>(scan->numberOfKeys) * sizeof(ScanKeyData));
    if (orderbys && scan->numberOfOrderBys > 0)
        std::memmove(scan->orderByData, orderbys, static_cast<std::size_t>(scan->numberOfOrderBys) * sizeof(ScanKeyData));
}

bool get_tuple(IndexScanDesc scan, ScanDirection) {
    scan_state &so = state_of(scan);
    if (!so.started) {
        if (scan->numberOfOrderBys == 0)
            throw meridian::error(sqlstate::feature_not_supported, "cannot scan hnsw index without order");
        start(scan, so);
    }
    const auto mode = static_cast<iterative_mode>(iterative_scan);
    for (;;) {
        while (so.position < so.batch.size()) {
            if (!so.batch_confirmed) {
                bool moved = false;
                if (!confirm(so, so.batch[so.position], &moved)) {
                    so.position++;
                    continue;
                }
                if (moved) {
                    confirm_rest(so);
                    continue;
                }
            }
            const found &f = so.batch[so.position++];
            // Strict order: a late find closer than a row already returned is dropped.
            if (mode != iterative_mode::relaxed_order && so.have_last && f.dist < so.last_distance)
                continue;
            so.last_distance = f.dist;
            so.have_last = true;
            std::memcpy(&scan->xs_heaptid, f.tid, sizeof(ItemPointerData));
            scan->xs_recheck = false;
            scan->xs_recheckorderby = false;
            return true;
        }
        if (!so.search || so.search->exhausted())
            return false;
        if (so.batches > 0 && (mode == iterative_mode::off ||
                               so.search->visited_count() >= static_cast<std::size_t>(max_scan_tuples)))
            return false;
        so.batch.clear();
        so.position = 0;
        so.batch_confirmed = false;
        so.search->run(static_cast<std::size_t>(ef_search), so.batch);
        so.batches++;
        if (so.batch.empty())
            return false;
    }
}

void end_scan(IndexScanDesc scan) {
    static_cast<scan_holder *>(scan->opaque)->release();
}

}  // namespace meridian::hnsw
