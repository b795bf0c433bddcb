// HNSW graph algorithms over an abstract store: search (with resumable level-0 scans for
// iterative/filtered queries), the neighbor-selection heuristic and insertion with back-links.
// Pure C++. The PostgreSQL store (src/hnsw/page_store.*) reads and writes index pages; tests use
// an in-memory store. Store requirements are listed before each algorithm.
#pragma once

#include "core/hnsw_layout.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <queue>
#include <vector>

namespace meridian::hnsw {

struct found {
    float dist;  // exact, or a lower bound when `exact` is 0 (see visit_bounded)
    std::uint32_t id;
    std::uint8_t tid[6];
    std::uint8_t exact = 1;
};

struct element_info {
    std::uint8_t state;
    std::uint8_t tid[6];
    bool exact = true;
};

// Squared L2 distance that stops once the partial sum exceeds `bound`: the terms are
// non-negative, so the element is then certainly farther than the bound, and most of its vector
// need not be read. *exact says whether the whole sum was taken (else the result is a lower
// bound above `bound`). Chunks of 128 floats: two kilobytes of a 784-float vector per check.
template <class Kernel>
inline float l2_squared_bounded(Kernel &&l2, const float *q, const float *v, std::size_t n, float bound,
                                bool *exact) {
    constexpr std::size_t chunk = 128;
    float sum = 0;
    for (std::size_t i = 0; i < n; i += chunk) {
        std::size_t k = n - i < chunk ? n - i : chunk;
        sum += l2(q + i, v + i, k);
        if (sum > bound && i + k < n) {
            *exact = false;
            return sum;
        }
    }
    *exact = true;
    return sum;
}

struct by_dist_asc {
    bool operator()(const found &a, const found &b) const { return a.dist > b.dist; }  // min-heap
};
struct by_dist_desc {
    bool operator()(const found &a, const found &b) const { return a.dist < b.dist; }  // max-heap
};

// hnswlib-style visited marks: one tag per id, cleared in O(1) by bumping the generation.
class visited_set {
public:
    void reset(std::size_t id_limit) {
        if (tags_.size() < id_limit)
            tags_.resize(id_limit + id_limit / 4 + 64, 0);
        if (++generation_ == 0) {
            std::fill(tags_.begin(), tags_.end(), 0);
            generation_ = 1;
        }
        count_ = 0;
    }
    // True when id was not visited yet (and marks it).
    bool mark(std::uint32_t id) {
        if (id >= tags_.size())
            tags_.resize(static_cast<std::size_t>(id) + id / 4 + 64, 0);
        if (tags_[id] == generation_)
            return false;
        tags_[id] = generation_;
        count_++;
        return true;
    }
    // Marks ids[0..n) and moves the ones not visited before to the front, in order; returns
    // their count. The search's inner loop: the tags, their size and the generation stay in
    // registers instead of being reloaded after every store.
    int mark_all(std::uint32_t *ids, int n) {
        std::uint16_t *tags = tags_.data();
        std::size_t size = tags_.size();
        const std::uint16_t gen = generation_;
        int fresh = 0;
        for (int i = 0; i < n; i++) {
            const std::uint32_t id = ids[i];
            if (id >= size) {
                tags_.resize(static_cast<std::size_t>(id) + id / 4 + 64, 0);
                tags = tags_.data();
                size = tags_.size();
            }
            if (tags[id] != gen) {
                tags[id] = gen;
                ids[fresh++] = id;
            }
        }
        count_ += static_cast<std::size_t>(fresh);
        return fresh;
    }
    std::size_t count() const { return count_; }

private:
    std::vector<std::uint16_t> tags_;
    std::uint16_t generation_ = 0;
    std::size_t count_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Read-side store requirements:
//   bool visit(uint32_t id, const float *q, float *dist, element_info *info)
//       distance from q to element id; false when id is not a graph element (free, slab, out of range)
//   bool visit_bounded(uint32_t id, const float *q, float bound, float *dist, element_info *info)
//       the same, but may stop early once the distance certainly exceeds bound: then info->exact
//       is false and *dist is a lower bound greater than bound
//   int neighbors(uint32_t id, int level, uint32_t *out)   the edges a search follows: the level's list and,
//       at level 0, the next element of its duplicate ring (so `out` holds m0 + 1 ids); returns the count
//   void prefetch(uint32_t id)                             a hint that id will be visited soon
// ---------------------------------------------------------------------------------------------

// Greedy descent from (ep, ep_dist) through levels top..(bottom+1). Returns the closest element found.
template <class Store>
found greedy_descent(Store &s, const float *q, found ep, int top, int bottom, std::vector<std::uint32_t> &scratch) {
    element_info info;
    for (int level = top; level > bottom; level--) {
        bool changed = true;
        while (changed) {
            changed = false;
            int n = s.neighbors(ep.id, level, scratch.data());
            for (int i = 0; i < n; i++) {
                float d;
                if (!s.visit_bounded(scratch[i], q, ep.dist, &d, &info) || !info.exact)
                    continue;
                if (d < ep.dist) {
                    ep.dist = d;
                    ep.id = scratch[i];
                    std::memcpy(ep.tid, info.tid, 6);
                    changed = true;
                }
            }
        }
    }
    return ep;
}

// A resumable best-first search of one level. run(ef) returns the ef closest live elements not
// returned before; calling run() again continues the same search past them (iterative scans).
// Deleted elements are traversed but never returned.
template <class Store>
class layer_search {
public:
    layer_search(Store &s, const float *q, int level, visited_set &visited, std::size_t m0)
        : s_(s), q_(q), level_(level), visited_(visited), scratch_(m0 + 1) {}

    void add_entry(const found &e, std::uint8_t state) {
        if (!visited_.mark(e.id))
            return;
        candidates_.push(e);
        if (state == state_live)
            spare_.push_back(e);
    }

    // Appends to out, ascending by distance, the next batch of up to ef live elements.
    void run(std::size_t ef, std::vector<found> &out) {
        // Room for a typical search up front: growing these vectors one doubling at a time was
        // ~4% of a query's instructions. (A search visits ~10 * ef elements; most are rejected.)
        std::priority_queue<found, std::vector<found>, by_dist_desc> results{by_dist_desc(), reserved(ef + 1)};
        // Elements found in earlier rounds but not returned compete again first.
        std::vector<found> earlier;
        earlier.swap(spare_);
        reserve_more(spare_, 8 * ef);
        element_info info;
        for (found f : earlier) {
            if (!f.exact) {
                // Passed over with a lower bound only: measure it fully now.
                if (!s_.visit(f.id, q_, &f.dist, &info))
                    continue;
                f.exact = 1;
            }
            push_bounded(results, f, ef);
        }
        // Elements passed over earlier because they were beyond the bound are candidates again.
        for (const found &f : deferred_)
            candidates_.push(f);
        deferred_.clear();
        reserve_more(deferred_, 8 * ef);

        while (!candidates_.empty()) {
            found c = candidates_.top();
            if (results.size() >= ef && c.dist > results.top().dist)
                break;
            candidates_.pop();
            int n = s_.neighbors(c.id, level_, scratch_.data());
            // Keep the unvisited neighbors, then measure them in order while the memory of the
            // ones four places ahead is being fetched (hnswlib does this one ahead).
            const int fresh = visited_.mark_all(scratch_.data(), n);
            constexpr int ahead = 4;
            for (int i = 0; i < fresh && i < ahead; i++)
                s_.prefetch(scratch_[i]);
            for (int i = 0; i < fresh; i++) {
                std::uint32_t id = scratch_[i];
                if (i + ahead < fresh)
                    s_.prefetch(scratch_[i + ahead]);
                float d;
                float bound = results.size() < ef ? std::numeric_limits<float>::infinity() : results.top().dist;
                if (!s_.visit_bounded(id, q_, bound, &d, &info))
                    continue;
                found f{d, id, {}, static_cast<std::uint8_t>(info.exact)};
                std::memcpy(f.tid, info.tid, 6);
                if (info.exact && (results.size() < ef || d < results.top().dist)) {
                    candidates_.push(f);
                    if (info.state == state_live)
                        push_bounded(results, f, ef);
                } else {
                    deferred_.push_back(f);
                    if (info.state == state_live)
                        spare_.push_back(f);
                }
            }
        }
        std::size_t first = out.size();
        while (!results.empty()) {
            out.push_back(results.top());
            results.pop();
        }
        std::reverse(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
    }

    bool exhausted() const { return candidates_.empty() && deferred_.empty() && spare_.empty(); }
    std::size_t visited_count() const { return visited_.count(); }

private:
    static std::vector<found> reserved(std::size_t n) {
        std::vector<found> v;
        v.reserve(n);
        return v;
    }
    static void reserve_more(std::vector<found> &v, std::size_t n) { v.reserve(v.size() + n); }

    void push_bounded(std::priority_queue<found, std::vector<found>, by_dist_desc> &results, const found &f,
                      std::size_t ef) {
        results.push(f);
        if (results.size() > ef) {
            spare_.push_back(results.top());
            results.pop();
        }
    }

    Store &s_;
    const float *q_;
    int level_;
    visited_set &visited_;
    std::vector<std::uint32_t> scratch_;
    std::priority_queue<found, std::vector<found>, by_dist_asc> candidates_{by_dist_asc(), reserved(128)};
    std::vector<found> deferred_;  // traversable, beyond the bound when seen
    std::vector<found> spare_;     // live, found but not returned yet
};

// ---------------------------------------------------------------------------------------------
// Neighbor selection (the HNSW paper's heuristic, as in hnswlib): walk candidates from nearest to
// farthest and keep one unless it is closer to an already kept neighbor than to the base element.
// dist_between(i, j) is the distance between candidates i and j (indices into `sorted`).
// ---------------------------------------------------------------------------------------------
template <class DistBetween>
void select_neighbors(const std::vector<found> &sorted, std::size_t max_count, DistBetween &&dist_between,
                      std::vector<std::size_t> &kept) {
    kept.clear();
    for (std::size_t i = 0; i < sorted.size() && kept.size() < max_count; i++) {
        bool good = true;
        for (std::size_t k : kept) {
            if (dist_between(i, k) < sorted[i].dist) {
                good = false;
                break;
            }
        }
        if (good)
            kept.push_back(i);
    }
}

// ---------------------------------------------------------------------------------------------
// Insertion. Write-side store requirements, in addition to the read side:
//   float distance(const float *a, const float *b)             the index metric
//   uint8_t read_vector(uint32_t id, float *out)               state of id (free when unusable)
//   struct allocation { uint32_t id; uint32_t slab_id; uint32_t slab_index; uint32_t ep; int ep_level;
//                       bool published; }
//   allocation allocate(const new_element &e)                  reserves an id (and upper lists);
//       when the graph is empty, publishes e as the entry point itself and sets published
//   void write_upper_lists(const allocation &, int level, const std::vector<std::vector<uint32_t>> &lists)
//   bool publish(const allocation &, const new_element &e, const std::vector<uint32_t> &list0,
//                const backlink *first)   writes e's record (live) and, in the same atomic step, the
//                first back-link; false (nothing written) when the back-link's list changed meanwhile
//   bool replace_list(const backlink &)   compare-and-swap of one neighbor list; false if it changed
//   int read_list(uint32_t id, int level, uint32_t *out)  the level's list only (capacity m0)
//   bool publish_duplicate(const allocation &, const new_element &e, const std::vector<uint32_t> &list0,
//                          uint32_t twin)   writes e's record and splices it into the ring of twin, a live
//       element with the identical vector, in one atomic step; false (nothing written) if twin is not live
//   void raise_entry_point(uint32_t id, int level)
//   bool entry_point(uint32_t *id, int *level)             false when the graph is empty
// ---------------------------------------------------------------------------------------------
struct new_element {
    const float *vector;
    std::uint8_t tid[6];
    int level;
};

struct backlink {
    std::uint32_t owner;
    int level;
    std::vector<std::uint32_t> expected;
    std::vector<std::uint32_t> replacement;
};

template <class Store>
class inserter {
public:
    inserter(Store &s, const record_layout &layout, int ef_construction, visited_set &visited)
        : s_(s), layout_(layout), ef_construction_(ef_construction), visited_(visited), scratch_(layout.m0 + 1),
          vec_a_(layout.dims), vec_b_(layout.dims) {}

    void insert(const new_element &e) {
        auto alloc = s_.allocate(e);
        if (alloc.published)
            return;

        element_info info;
        found ep{0, alloc.ep, {}};
        if (!s_.visit(alloc.ep, e.vector, &ep.dist, &info)) {
            // The entry point is unusable (should not happen): publish unlinked, become entry point.
            std::vector<std::vector<std::uint32_t>> none(static_cast<std::size_t>(e.level));
            if (e.level > 0)
                s_.write_upper_lists(alloc, e.level, none);
            s_.publish(alloc, e, {}, nullptr);
            s_.raise_entry_point(alloc.id, e.level);
            return;
        }

        int top = alloc.ep_level;
        if (top > e.level)
            ep = greedy_descent(s_, e.vector, ep, top, e.level, scratch_);

        // Neighbors for each level from min(level, top) down to 0.
        std::vector<std::vector<std::uint32_t>> lists(static_cast<std::size_t>(e.level) + 1);
        std::vector<found> candidates;
        std::vector<std::size_t> kept;
        for (int level = std::min(e.level, top); level >= 0; level--) {
            visited_.reset(0);
            layer_search<Store> search(s_, e.vector, level, visited_, layout_.m0);
            search.add_entry(ep, state_live);
            candidates.clear();
            search.run(static_cast<std::size_t>(ef_construction_), candidates);
            if (candidates.empty())
                continue;
            ep = candidates.front();
            select_from(candidates, layout_.m, kept);
            for (std::size_t k : kept)
                lists[static_cast<std::size_t>(level)].push_back(candidates[k].id);
        }

        if (e.level > 0) {
            std::vector<std::vector<std::uint32_t>> upper(lists.begin() + 1, lists.end());
            s_.write_upper_lists(alloc, e.level, upper);
        }

        // An exact copy of a live element joins that element's ring of duplicates: HNSW's heuristic
        // keeps only one of many identical vectors in a list, so back-links would not keep every
        // copy reachable, while the ring does (searches follow it like a neighbor).
        std::uint32_t twin = find_twin(candidates, e.vector);
        if (twin != invalid_id && s_.publish_duplicate(alloc, e, lists[0], twin))
            return;

        // Publish the element together with the back-link from its nearest level-0 neighbor, so
        // the element is reachable from the moment it exists (also after a crash).
        const std::vector<std::uint32_t> &list0 = lists[0];
        bool published = false;
        std::size_t first_linked = 0;
        for (std::size_t i = 0; i < list0.size() && !published; i++) {
            for (int attempt = 0; attempt < 3 && !published; attempt++) {
                backlink bl;
                if (!plan_backlink(list0[i], 0, alloc.id, e.vector, bl))
                    break;
                published = s_.publish(alloc, e, list0, &bl);
                first_linked = i;
            }
        }
        // No neighbor's heuristic kept the element: force it into the nearest one's list.
        for (int attempt = 0; attempt < 3 && !published && !list0.empty(); attempt++) {
            backlink bl;
            if (!plan_backlink(list0[0], 0, alloc.id, e.vector, bl, true))
                break;
            published = s_.publish(alloc, e, list0, &bl);
            first_linked = 0;
        }
        if (!published) {
            s_.publish(alloc, e, list0, nullptr);
            first_linked = list0.size();
        }

        for (int level = 0; level <= e.level; level++) {
            const auto &list = lists[static_cast<std::size_t>(level)];
            for (std::size_t i = 0; i < list.size(); i++) {
                if (level == 0 && i == first_linked)
                    continue;
                for (int attempt = 0; attempt < 3; attempt++) {
                    backlink bl;
                    if (!plan_backlink(list[i], level, alloc.id, e.vector, bl))
                        break;
                    if (s_.replace_list(bl))
                        break;
                }
            }
        }

        if (e.level > top)
            s_.raise_entry_point(alloc.id, e.level);
    }

    // The new list of `owner` at `level` once `added` (with vector added_vec) joins it.
    // False when there is nothing to do (already present, or owner unusable).
    // With `force`, `added` goes in even when the heuristic would leave it out (in place of the
    // farthest neighbor when the list is full): a link that must exist for reachability.
    bool plan_backlink(std::uint32_t owner, int level, std::uint32_t added, const float *added_vec, backlink &bl,
                       bool force = false) {
        bl.owner = owner;
        bl.level = level;
        int n = s_.read_list(owner, level, scratch_.data());
        bl.expected.assign(scratch_.begin(), scratch_.begin() + n);
        for (std::uint32_t id : bl.expected)
            if (id == added)
                return false;
        std::size_t cap = level == 0 ? layout_.m0 : layout_.m;
        if (bl.expected.size() < cap) {
            bl.replacement = bl.expected;
            bl.replacement.push_back(added);
            return true;
        }
        // Full: choose among the current neighbors and the new element with the heuristic.
        std::uint8_t st = s_.read_vector(owner, vec_a_.data());
        if (st != state_live && st != state_deleted)
            return false;
        std::vector<found> cand;
        cand.reserve(bl.expected.size() + 1);
        cand_vectors_.resize((bl.expected.size() + 1) * layout_.dims);
        std::size_t k = 0;
        for (std::uint32_t id : bl.expected) {
            float *dst = cand_vectors_.data() + k * layout_.dims;
            std::uint8_t cst = s_.read_vector(id, dst);
            if (cst != state_live && cst != state_deleted)
                continue;  // dropped: it no longer exists
            cand.push_back(found{s_.distance(vec_a_.data(), dst), id, {}});
            k++;
        }
        std::memcpy(cand_vectors_.data() + k * layout_.dims, added_vec, layout_.dims * sizeof(float));
        cand.push_back(found{s_.distance(vec_a_.data(), added_vec), added, {}});
        k++;
        // Sort candidates with their vectors by distance.
        std::vector<std::size_t> order(k);
        for (std::size_t i = 0; i < k; i++)
            order[i] = i;
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return cand[a].dist < cand[b].dist; });
        std::vector<found> sorted(k);
        for (std::size_t i = 0; i < k; i++)
            sorted[i] = cand[order[i]];
        std::vector<std::size_t> kept;
        select_neighbors(sorted, cap,
                         [&](std::size_t i, std::size_t j) {
                             return s_.distance(cand_vectors_.data() + order[i] * layout_.dims,
                                                cand_vectors_.data() + order[j] * layout_.dims);
                         },
                         kept);
        bl.replacement.clear();
        bool has_added = false;
        for (std::size_t i : kept) {
            bl.replacement.push_back(sorted[i].id);
            has_added |= sorted[i].id == added;
        }
        if (force && !has_added) {
            if (bl.replacement.size() < cap)
                bl.replacement.push_back(added);
            else
                bl.replacement.back() = added;
        }
        return bl.replacement != bl.expected;
    }

    // Links u (a live element with vector v) from its nearest element reachable from the entry
    // point, forcing the link in. VACUUM uses it for elements its repairs left unreachable.
    bool attach(std::uint32_t u, const float *v) {
        std::uint32_t ep_id;
        int ep_level;
        if (!s_.entry_point(&ep_id, &ep_level))
            return false;
        element_info info;
        found ep{0, ep_id, {}};
        if (!s_.visit(ep_id, v, &ep.dist, &info))
            return false;
        ep = greedy_descent(s_, v, ep, ep_level, 0, scratch_);
        visited_.reset(0);
        layer_search<Store> search(s_, v, 0, visited_, layout_.m0);
        search.add_entry(ep, state_live);
        std::vector<found> nearest;
        search.run(static_cast<std::size_t>(ef_construction_), nearest);
        for (const found &f : nearest) {
            if (f.id == u)
                continue;
            for (int attempt = 0; attempt < 3; attempt++) {
                backlink bl;
                if (!plan_backlink(f.id, 0, u, v, bl, true))
                    return true;  // already linked
                if (s_.replace_list(bl))
                    return true;
            }
        }
        return false;
    }

private:
    // A live element among the nearest level-0 results whose vector equals v bit for bit.
    std::uint32_t find_twin(const std::vector<found> &nearest, const float *v) {
        std::size_t checked = 0;
        for (const found &f : nearest) {
            if (checked++ == 8)
                break;
            // Identical vectors are at L2 distance 0; for inner product the copy need not be first.
            if (f.dist != 0.0f && f.dist > nearest.front().dist)
                continue;
            if (s_.read_vector(f.id, vec_b_.data()) == state_live &&
                std::memcmp(vec_b_.data(), v, layout_.dims * sizeof(float)) == 0)
                return f.id;
        }
        return invalid_id;
    }

    // Heuristic selection among search results (ascending), loading candidate vectors lazily.
    void select_from(const std::vector<found> &sorted, std::size_t max_count, std::vector<std::size_t> &kept) {
        cand_vectors_.resize(sorted.size() * layout_.dims);
        loaded_.assign(sorted.size(), 0);
        auto vec = [&](std::size_t i) -> const float * {
            float *p = cand_vectors_.data() + i * layout_.dims;
            if (!loaded_[i]) {
                s_.read_vector(sorted[i].id, p);
                loaded_[i] = 1;
            }
            return p;
        };
        select_neighbors(sorted, max_count, [&](std::size_t i, std::size_t j) { return s_.distance(vec(i), vec(j)); },
                         kept);
    }

    Store &s_;
    const record_layout &layout_;
    int ef_construction_;
    visited_set &visited_;
    std::vector<std::uint32_t> scratch_;
    std::vector<float> vec_a_, vec_b_;
    std::vector<float> cand_vectors_;
    std::vector<std::uint8_t> loaded_;
};

}  // namespace meridian::hnsw
