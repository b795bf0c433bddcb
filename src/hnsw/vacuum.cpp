// VACUUM: mark dead elements deleted, repair the neighbor lists that point at them (neighbors of
// a deleted element are offered as replacements), move the entry point off deleted elements,
// then free the deleted slots for reuse by later inserts.
#include "hnsw/page_store.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "commands/vacuum.h"
}

#include <algorithm>
#include <cstring>
#include <vector>

namespace meridian::hnsw {

namespace {

struct header {
    std::uint8_t state;
    std::uint8_t level;
    ItemPointerData tid;
    std::uint32_t next_dup;
};

header read_header(page_store &store, std::uint32_t id) {
    char bytes[record_layout::off_count0];
    {
        stream_read r(store.relation(), store.layout().record_position(id), sizeof bytes);
        r.copy(0, sizeof bytes, bytes);
    }
    element_header e = decode_header(bytes);
    header h;
    h.state = e.state;
    h.level = e.level;
    std::memcpy(&h.tid, e.tid, 6);
    h.next_dup = e.next_dup;
    return h;
}

void delay_point() {
    pg::call([] { vacuum_delay_point(); });
}

// New list for `owner` at `level` without the deleted elements. Replacements come from a search
// around the owner at that level (ef_construction wide, as an insert's), entered at its remaining
// neighbors and at the deleted neighbors' neighbors, then chosen with the heuristic.
bool repair_list(page_store &store, const index_shape &shape, visited_set &visited, std::uint32_t owner, int level,
                 const std::vector<std::uint8_t> &deleted, std::vector<float> &owner_vec,
                 std::vector<float> &cand_vecs) {
    const record_layout &layout = store.layout();
    auto is_deleted = [&](std::uint32_t id) { return id < deleted.size() && deleted[id]; };
    std::vector<std::uint32_t> list(layout.m0), sub(layout.m0);
    for (int attempt = 0; attempt < 3; attempt++) {
        int n = store.read_list(owner, level, list.data());
        bool affected = false;
        for (int i = 0; i < n; i++)
            affected |= is_deleted(list[static_cast<std::size_t>(i)]);
        if (!affected)
            return true;
        if (store.read_vector(owner, owner_vec.data()) != state_live)
            return true;

        visited.reset(0);
        visited.mark(owner);
        layer_search<page_store> search(store, owner_vec.data(), level, visited, layout.m0);
        element_info info;
        std::vector<std::uint32_t> entered;
        auto enter = [&](std::uint32_t x) {
            found f{0, x, {}};
            if (x != owner && !is_deleted(x) && store.visit(x, owner_vec.data(), &f.dist, &info)) {
                entered.push_back(x);
                std::memcpy(f.tid, info.tid, 6);
                search.add_entry(f, info.state);
            }
        };
        for (int i = 0; i < n; i++) {
            std::uint32_t x = list[static_cast<std::size_t>(i)];
            if (!is_deleted(x)) {
                enter(x);
                continue;
            }
            int k = store.read_list(x, level, sub.data());
            for (int j = 0; j < k; j++)
                enter(sub[static_cast<std::size_t>(j)]);
        }
        std::vector<found> cand;
        search.run(static_cast<std::size_t>(shape.ef_construction), cand);
        // The owner's remaining neighbors and the deleted neighbors' neighbors compete too, even
        // when the search ranked them past ef_construction: the graph keeps its local structure.
        for (std::uint32_t x : entered) {
            bool present = false;
            for (const found &f : cand)
                present |= f.id == x;
            found f{0, x, {}};
            if (!present && store.visit(x, owner_vec.data(), &f.dist, &info) && info.state == state_live)
                cand.push_back(f);
        }
        cand.erase(std::remove_if(cand.begin(), cand.end(), [&](const found &f) { return f.id == owner || is_deleted(f.id); }),
                   cand.end());
        std::sort(cand.begin(), cand.end(), [](const found &a, const found &b) { return a.dist < b.dist; });

        // Repair, do not rebuild: every live member of the list stays (back-links gave lists edges
        // the heuristic alone would not choose, and on clustered data they keep the graph
        // navigable); the slots of the deleted members go to new candidates, nearest first, each
        // kept only if no list member is closer to it than the owner (the HNSW heuristic).
        std::vector<std::uint32_t> result;
        for (int i = 0; i < n; i++)
            if (!is_deleted(list[static_cast<std::size_t>(i)]))
                result.push_back(list[static_cast<std::size_t>(i)]);
        std::size_t cap = level == 0 ? layout.m0 : layout.m;
        cand_vecs.resize((cand.size() + result.size()) * layout.dims);
        std::vector<const float *> kept_vecs;
        std::size_t used = 0;
        auto load = [&](std::uint32_t id) -> const float * {
            float *p = cand_vecs.data() + (used++) * layout.dims;
            return store.read_vector(id, p) == state_live ? p : nullptr;
        };
        for (std::uint32_t x : result)
            if (const float *p = load(x))
                kept_vecs.push_back(p);
        for (const found &c : cand) {
            if (result.size() >= cap)
                break;
            if (std::find(result.begin(), result.end(), c.id) != result.end())
                continue;
            const float *cv = load(c.id);
            if (cv == nullptr)
                continue;
            bool good = true;
            for (const float *kv : kept_vecs)
                if (store.distance(cv, kv) < c.dist) {
                    good = false;
                    break;
                }
            if (good) {
                result.push_back(c.id);
                kept_vecs.push_back(cv);
            }
        }
        // A list never shrinks by a repair: slots the heuristic left empty take the nearest
        // remaining candidates, so each deleted edge is replaced by one.
        for (const found &c : cand) {
            if (result.size() >= static_cast<std::size_t>(n) || result.size() >= cap)
                break;
            if (std::find(result.begin(), result.end(), c.id) == result.end())
                result.push_back(c.id);
        }
        backlink bl;
        bl.owner = owner;
        bl.level = level;
        bl.expected.assign(list.begin(), list.begin() + n);
        bl.replacement = result;
        if (store.replace_list(bl))
            return true;
    }
    return false;
}

// Points `owner`'s next-duplicate pointer past deleted elements of its ring (the deleted ones
// keep their pointers until they are freed, so the ring can still be walked).
void repair_ring(page_store &store, std::uint32_t owner, std::uint32_t next, const std::vector<std::uint8_t> &deleted) {
    if (next == invalid_id || next >= deleted.size() || !deleted[next])
        return;
    std::uint32_t n = next;
    for (std::size_t steps = 0; n != invalid_id && n != owner && n < deleted.size() && deleted[n] && steps < deleted.size();
         steps++)
        n = read_header(store, n).next_dup;
    std::uint32_t replacement = (n == owner || n >= deleted.size() || deleted[n]) ? invalid_id : n;
    store.replace_next_dup(owner, next, replacement);
}

// Repairs can cut off a live element whose only incoming links came from deleted elements. Walk
// the graph from the entry point without entering deleted elements (they are about to be freed)
// and link every live element not reached from its nearest reachable element.
void reconnect(page_store &store, const index_shape &shape, const std::vector<std::uint8_t> &deleted) {
    const record_layout &layout = shape.layout;
    visited_set visited;
    inserter<page_store> ins(store, layout, shape.ef_construction, visited);
    std::vector<float> vec(layout.dims);
    std::vector<std::uint32_t> list(layout.m0 + 1);
    auto is_deleted = [&](std::uint32_t id) { return id < deleted.size() && deleted[id]; };
    for (int round = 0; round < 3; round++) {
        std::uint32_t ep;
        int ep_level;
        if (!store.entry_point(&ep, &ep_level))
            return;
        const std::uint32_t hwm = read_meta_header(store.relation()).high_water;
        std::vector<char> seen(hwm, 0);
        std::vector<std::uint32_t> stack;
        if (ep < hwm && !is_deleted(ep)) {
            seen[ep] = 1;
            stack.push_back(ep);
        }
        while (!stack.empty()) {
            std::uint32_t id = stack.back();
            stack.pop_back();
            header h = read_header(store, id);
            if (h.state != state_live)
                continue;
            for (int level = 0; level <= h.level; level++) {
                int n = store.neighbors(id, level, list.data());
                for (int i = 0; i < n; i++) {
                    std::uint32_t x = list[static_cast<std::size_t>(i)];
                    if (x < hwm && !seen[x] && !is_deleted(x)) {
                        seen[x] = 1;
                        stack.push_back(x);
                    }
                }
            }
        }
        bool linked = false;
        for (std::uint32_t u = 0; u < hwm; u++) {
            if ((u & 255) == 0)
                delay_point();
            if (seen[u] || is_deleted(u) || store.read_vector(u, vec.data()) != state_live)
                continue;
            linked |= ins.attach(u, vec.data());
        }
        if (!linked)
            return;
    }
}

}  // namespace

IndexBulkDeleteResult *bulk_delete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
                                   IndexBulkDeleteCallback callback, void *callback_state) {
    if (stats == nullptr)
        stats = static_cast<IndexBulkDeleteResult *>(pg::call([] { return palloc0(sizeof(IndexBulkDeleteResult)); }));
    Relation index = info->index;
    const index_shape &shape = shape_of(index);
    const record_layout &layout = shape.layout;
    page_store store(index, shape);
    meta_page meta = read_meta_header(index);
    const std::uint32_t hwm = meta.high_water;

    // Pass 1: mark.
    std::vector<std::uint8_t> deleted(hwm, 0);
    std::size_t deleted_count = 0;
    double live = 0;
    for (std::uint32_t id = 0; id < hwm; id++) {
        if ((id & 255) == 0)
            delay_point();
        header h = read_header(store, id);
        if (h.state == state_deleted) {
            deleted[id] = 1;
            deleted_count++;
            continue;
        }
        if (h.state != state_live)
            continue;
        bool dead = pg::call([&] { return callback(&h.tid, callback_state); });
        if (!dead) {
            live++;
            continue;
        }
        stream_write w(index);
        w.add_range(layout.record_position(id), 1);
        w.begin();
        std::uint8_t state;
        w.read(layout.record_position(id), 1, &state);
        if (state == state_live) {
            state = state_deleted;
            w.write(layout.record_position(id), 1, &state);
            w.commit();
            deleted[id] = 1;
            deleted_count++;
            stats->tuples_removed += 1;
        }
    }
    stats->num_index_tuples = live;
    stats->num_pages = pg::call([&] { return RelationGetNumberOfBlocks(index); });
    if (deleted_count == 0)
        return stats;

    // Pass 2: repair lists that point at deleted elements; find a live replacement entry point.
    std::vector<float> owner_vec(layout.dims), cand_vecs;
    visited_set repair_visited;
    std::uint32_t best = invalid_id;
    int best_level = -1;
    for (std::uint32_t id = 0; id < hwm; id++) {
        if ((id & 63) == 0)
            delay_point();
        if (deleted[id])
            continue;
        header h = read_header(store, id);
        if (h.state != state_live)
            continue;
        if (h.level > best_level) {
            best = id;
            best_level = h.level;
        }
        for (int level = 0; level <= h.level; level++)
            repair_list(store, shape, repair_visited, id, level, deleted, owner_vec, cand_vecs);
        repair_ring(store, id, h.next_dup, deleted);
    }
    {
        stream_write w(index);
        w.add_meta();
        w.begin();
        meta_page *m = w.meta();
        if (m->entry_point != invalid_id && m->entry_point < hwm && deleted[m->entry_point]) {
            m->entry_point = best;
            m->entry_level = best_level;
            w.commit();
        }
    }

    reconnect(store, shape, deleted);

    // Pass 3: free the deleted slots and offer them to inserts.
    // Each freed slot is pushed on the meta page's free chain in the same WAL record.
    std::vector<char> blank(layout.record_size, 0);
    std::size_t freed = 0;
    for (std::uint32_t id = 0; id < hwm; id++) {
        if (!deleted[id])
            continue;
        if ((freed & 63) == 0)
            delay_point();
        stream_write w(index);
        w.add_meta();
        w.add_range(layout.record_position(id), layout.record_size);
        w.begin();
        std::uint8_t state;
        w.read(layout.record_position(id), 1, &state);
        if (state != state_deleted)
            continue;
        meta_page *m = w.meta();
        std::memcpy(blank.data() + free_chain_offset, &m->free_head, 4);
        w.write(layout.record_position(id), layout.record_size, blank.data());
        m->free_head = id;
        m->free_count++;
        w.commit();
        freed++;
    }
    return stats;
}

IndexBulkDeleteResult *vacuum_cleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats) {
    if (info->analyze_only)
        return stats;
    if (stats == nullptr) {
        stats = static_cast<IndexBulkDeleteResult *>(pg::call([] { return palloc0(sizeof(IndexBulkDeleteResult)); }));
        const index_shape &shape = shape_of(info->index);
        page_store store(info->index, shape);
        meta_page meta = read_meta_header(info->index);
        double live = 0;
        for (std::uint32_t id = 0; id < meta.high_water; id++) {
            if ((id & 1023) == 0)
                delay_point();
            live += read_header(store, id).state == state_live;
        }
        stats->num_index_tuples = live;
    }
    stats->num_pages = pg::call([&] { return RelationGetNumberOfBlocks(info->index); });
    return stats;
}

}  // namespace meridian::hnsw
