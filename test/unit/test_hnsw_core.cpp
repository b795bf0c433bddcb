// The HNSW core against an in-memory store: levels, layout, search recall and connectivity.
#include "core/distance.hpp"
#include "core/hnsw_graph.hpp"
#include "core/hnsw_layout.hpp"
#include "core/hnsw_level.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

using namespace meridian::hnsw;

namespace {

// Records in plain vectors, same semantics as the page store.
struct memory_store {
    record_layout layout;
    struct rec {
        std::uint8_t state = state_free;
        int level = 0;
        std::vector<std::vector<std::uint32_t>> lists;
        std::vector<float> v;
        std::uint8_t tid[6] = {};
        std::uint32_t next_dup = invalid_id;
    };
    std::vector<rec> recs;
    std::uint32_t ep = invalid_id;
    int ep_level = -1;

    struct allocation {
        std::uint32_t id, slab_id, slab_index, ep;
        int ep_level;
        bool published;
    };

    explicit memory_store(record_layout l) : layout(l) {}

    float distance(const float *a, const float *b) const { return meridian::distance::l2_squared(a, b, layout.dims); }
    bool visit(std::uint32_t id, const float *q, float *d, element_info *info) {
        if (id >= recs.size() || (recs[id].state != state_live && recs[id].state != state_deleted))
            return false;
        *d = distance(q, recs[id].v.data());
        info->exact = true;
        info->state = recs[id].state;
        std::memcpy(info->tid, recs[id].tid, 6);
        return true;
    }
    bool visit_bounded(std::uint32_t id, const float *q, float bound, float *d, element_info *info) {
        if (id >= recs.size() || (recs[id].state != state_live && recs[id].state != state_deleted))
            return false;
        bool exact;
        *d = l2_squared_bounded([](const float *a, const float *b, std::size_t n) {
            return meridian::distance::l2_squared(a, b, n);
        }, q, recs[id].v.data(), layout.dims, bound, &exact);
        info->exact = exact;
        info->state = recs[id].state;
        std::memcpy(info->tid, recs[id].tid, 6);
        return true;
    }
    int read_list(std::uint32_t id, int level, std::uint32_t *out) {
        if (id >= recs.size() || level > recs[id].level || recs[id].lists.empty())
            return 0;
        const auto &l = recs[id].lists[static_cast<std::size_t>(level)];
        std::copy(l.begin(), l.end(), out);
        return static_cast<int>(l.size());
    }
    int neighbors(std::uint32_t id, int level, std::uint32_t *out) {
        int n = read_list(id, level, out);
        if (level == 0 && id < recs.size() && recs[id].next_dup != invalid_id)
            out[n++] = recs[id].next_dup;
        return n;
    }
    bool publish_duplicate(const allocation &a, const new_element &e, const std::vector<std::uint32_t> &list0,
                           std::uint32_t twin) {
        if (recs[twin].state != state_live)
            return false;
        publish(a, e, list0, nullptr);
        std::uint32_t old = recs[twin].next_dup;
        recs[a.id].next_dup = old == invalid_id ? twin : old;
        recs[twin].next_dup = a.id;
        dup_publications++;
        return true;
    }
    int dup_publications = 0;
    void prefetch(std::uint32_t) const {}
    std::uint8_t read_vector(std::uint32_t id, float *out) {
        if (id >= recs.size())
            return state_free;
        if (!recs[id].v.empty())
            std::copy(recs[id].v.begin(), recs[id].v.end(), out);
        return recs[id].state;
    }
    allocation allocate(const new_element &e) {
        allocation a{static_cast<std::uint32_t>(recs.size()), 0, 0, ep, ep_level, false};
        recs.emplace_back();
        if (ep == invalid_id) {
            publish(a, e, {}, nullptr);
            ep = a.id;
            ep_level = e.level;
            a.published = true;
        }
        return a;
    }
    void write_upper_lists(const allocation &a, int level, const std::vector<std::vector<std::uint32_t>> &lists) {
        auto &r = recs[a.id];
        r.lists.resize(static_cast<std::size_t>(level) + 1);
        for (int l = 1; l <= level; l++)
            r.lists[static_cast<std::size_t>(l)] = lists[static_cast<std::size_t>(l - 1)];
    }
    bool publish(const allocation &a, const new_element &e, const std::vector<std::uint32_t> &list0,
                 const backlink *first) {
        if (first && !replace_list(*first))
            return false;
        auto &r = recs[a.id];
        r.state = state_live;
        r.level = e.level;
        r.lists.resize(static_cast<std::size_t>(e.level) + 1);
        r.lists[0] = list0;
        r.v.assign(e.vector, e.vector + layout.dims);
        std::memcpy(r.tid, e.tid, 6);
        return true;
    }
    bool replace_list(const backlink &bl) {
        auto &r = recs[bl.owner];
        if (r.lists.size() <= static_cast<std::size_t>(bl.level) || r.lists[static_cast<std::size_t>(bl.level)] != bl.expected)
            return false;
        r.lists[static_cast<std::size_t>(bl.level)] = bl.replacement;
        return true;
    }
    bool entry_point(std::uint32_t *id, int *level) const {
        *id = ep;
        *level = ep_level;
        return ep != invalid_id;
    }
    void raise_entry_point(std::uint32_t id, int level) {
        if (level > ep_level) {
            ep = id;
            ep_level = level;
        }
    }
};

std::vector<float> make_random_vectors(std::size_t n, std::size_t dims, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> d(n * dims);
    for (auto &x : d)
        x = u(gen);
    return d;
}

std::vector<std::uint32_t> search(memory_store &s, const float *q, std::size_t k, std::size_t ef) {
    visited_set visited;
    std::vector<std::uint32_t> scratch(s.layout.m0 + 1);
    element_info info;
    found ep{0, s.ep, {}};
    s.visit(s.ep, q, &ep.dist, &info);
    ep = greedy_descent(s, q, ep, s.ep_level, 0, scratch);
    visited.reset(s.recs.size());
    layer_search<memory_store> ls(s, q, 0, visited, s.layout.m0);
    ls.add_entry(ep, info.state);
    std::vector<found> out;
    ls.run(ef, out);
    std::vector<std::uint32_t> ids;
    for (std::size_t i = 0; i < out.size() && i < k; i++)
        ids.push_back(out[i].id);
    return ids;
}

}  // namespace

TEST(HnswLevel, DeterministicAndGeometric) {
    std::vector<float> v = {1.0f, 2.0f, 3.0f};
    int l1 = level_for_vector(v.data(), 3, 16, 16);
    int l2 = level_for_vector(v.data(), 3, 16, 16);
    EXPECT_EQ(l1, l2);
    std::vector<float> neg = {-0.0f, 2.0f, 3.0f}, pos = {0.0f, 2.0f, 3.0f};
    EXPECT_EQ(level_for_vector(neg.data(), 3, 16, 16), level_for_vector(pos.data(), 3, 16, 16));
    // Level distribution: P(level >= 1) = 1/m.
    std::map<int, int> hist;
    const int n = 200000;
    for (int i = 0; i < n; i++)
        hist[level_for_hash(std::uint64_t(i) * 0x9E3779B97F4A7C15ull, 16, 16)]++;
    double p1 = 1.0 - double(hist[0]) / n;
    EXPECT_NEAR(p1, 1.0 / 16, 0.005);
    EXPECT_EQ(level_for_hash(0, 16, 16), 0);               // u = 1 gives level 0
    EXPECT_EQ(level_for_hash(~0ull, 16, 3), 3);            // the cap holds
}

TEST(HnswLayout, RecordSizes) {
    auto l = record_layout::make(784, 16);
    EXPECT_EQ(l.m0, 32u);
    EXPECT_EQ(l.vector_offset, 20u + 128u);
    EXPECT_EQ(l.record_size, 20u + 128u + 3136u);
    EXPECT_EQ(l.record_size % 4, 0u);
    EXPECT_EQ(l.upper_list_size, 68u);
    EXPECT_EQ(l.lists_per_slab, (l.record_size - 4) / 68);
    EXPECT_EQ(l.max_level, 16);
    auto tiny = record_layout::make(1, 2);
    EXPECT_GE(tiny.max_level, 1);
    EXPECT_LE(tiny.slab_list_offset(static_cast<std::uint32_t>(tiny.max_level)), tiny.record_size);
}

TEST(HnswGraph, RecallAndConnectivity) {
    const std::size_t n = 3000, dims = 16, nq = 100;
    auto data = make_random_vectors(n, dims, 1);
    auto queries = make_random_vectors(nq, dims, 2);
    auto layout = record_layout::make(dims, 8);
    memory_store s(layout);
    visited_set visited;
    inserter<memory_store> ins(s, layout, 64, visited);
    for (std::size_t i = 0; i < n; i++) {
        new_element e{data.data() + i * dims, {}, level_for_vector(data.data() + i * dims, dims, 8, layout.max_level)};
        std::memcpy(e.tid, &i, 4);
        ins.insert(e);
    }
    // Every element reachable from the entry point over all levels.
    std::vector<char> seen(n, 0);
    std::vector<std::uint32_t> stack = {s.ep}, buf(layout.m0 + 1);
    seen[s.ep] = 1;
    while (!stack.empty()) {
        auto id = stack.back();
        stack.pop_back();
        for (int l = 0; l <= s.recs[id].level; l++) {
            int k = s.neighbors(id, l, buf.data());
            for (int i = 0; i < k; i++)
                if (!seen[buf[i]]) {
                    seen[buf[i]] = 1;
                    stack.push_back(buf[i]);
                }
        }
    }
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), static_cast<long>(n));
    // Recall@10 against brute force.
    double hits = 0;
    for (std::size_t qi = 0; qi < nq; qi++) {
        const float *q = queries.data() + qi * dims;
        std::vector<std::pair<float, std::uint32_t>> all;
        for (std::uint32_t i = 0; i < n; i++)
            all.emplace_back(meridian::distance::scalar::l2_squared(q, data.data() + i * dims, dims), i);
        std::partial_sort(all.begin(), all.begin() + 10, all.end());
        std::set<std::uint32_t> truth;
        for (int i = 0; i < 10; i++)
            truth.insert(all[static_cast<std::size_t>(i)].second);
        for (auto id : search(s, q, 10, 64))
            hits += truth.count(id);
    }
    EXPECT_GE(hits / (nq * 10), 0.95);
}

TEST(HnswGraph, IterativeSearchReturnsEveryLiveElementOnceInBatches) {
    const std::size_t n = 500, dims = 8;
    auto data = make_random_vectors(n, dims, 3);
    auto layout = record_layout::make(dims, 4);
    memory_store s(layout);
    visited_set visited;
    inserter<memory_store> ins(s, layout, 32, visited);
    for (std::size_t i = 0; i < n; i++)
        ins.insert(new_element{data.data() + i * dims, {}, level_for_vector(data.data() + i * dims, dims, 4, layout.max_level)});
    for (std::size_t i = 0; i < n; i += 3)
        s.recs[i].state = state_deleted;
    visited.reset(n);
    layer_search<memory_store> ls(s, data.data(), 0, visited, layout.m0);
    element_info info;
    found ep{0, s.ep, {}};
    s.visit(s.ep, data.data(), &ep.dist, &info);
    ls.add_entry(ep, info.state);
    std::vector<found> out;
    std::set<std::uint32_t> ids;
    while (!ls.exhausted()) {
        std::size_t before = out.size();
        ls.run(20, out);
        for (std::size_t i = before; i < out.size(); i++) {
            EXPECT_TRUE(ids.insert(out[i].id).second) << "returned twice";
            EXPECT_EQ(s.recs[out[i].id].state, state_live);
            if (i > before)
                EXPECT_LE(out[i - 1].dist, out[i].dist);
        }
    }
    std::size_t live = 0;
    for (auto &r : s.recs)
        live += r.state == state_live;
    EXPECT_EQ(ids.size(), live);
}

namespace {
// The same store, but measuring every distance fully: the reference for early abort.
struct exact_store : memory_store {
    using memory_store::memory_store;
    bool visit_bounded(std::uint32_t id, const float *q, float, float *d, element_info *info) {
        return visit(id, q, d, info);
    }
};
}  // namespace

TEST(HnswGraph, EarlyAbortGivesTheSameResults) {
    const std::size_t n = 1500, dims = 384, nq = 40;
    auto data = make_random_vectors(n, dims, 7);
    auto queries = make_random_vectors(nq, dims, 8);
    auto layout = record_layout::make(dims, 8);
    exact_store s(layout);
    visited_set visited;
    inserter<exact_store> ins(s, layout, 40, visited);
    for (std::size_t i = 0; i < n; i++)
        ins.insert(new_element{data.data() + i * dims, {}, level_for_vector(data.data() + i * dims, dims, 8, layout.max_level)});
    memory_store &bounded = s;  // same graph, bounded distances
    for (std::size_t qi = 0; qi < nq; qi++) {
        const float *q = queries.data() + qi * dims;
        auto run = [&](auto &store) {
            visited_set v;
            element_info info;
            found ep{0, store.ep, {}};
            store.visit(store.ep, q, &ep.dist, &info);
            std::vector<std::uint32_t> scratch(layout.m0 + 1);
            ep = greedy_descent(store, q, ep, store.ep_level, 0, scratch);
            v.reset(n);
            layer_search<std::remove_reference_t<decltype(store)>> ls(store, q, 0, v, layout.m0);
            ls.add_entry(ep, info.state);
            std::vector<found> out;
            ls.run(20, out);
            ls.run(20, out);  // the second round re-measures elements passed over with a bound
            std::vector<std::uint32_t> ids;
            for (auto &f : out) {
                EXPECT_TRUE(f.exact);
                ids.push_back(f.id);
            }
            return ids;
        };
        EXPECT_EQ(run(s), run(bounded)) << "query " << qi;
    }
}

TEST(HnswGraph, DuplicatesStayReachableThroughTheirRing) {
    const std::size_t dims = 4;
    auto layout = record_layout::make(dims, 2);  // tiny lists: the heuristic keeps one copy of many
    memory_store s(layout);
    visited_set visited;
    inserter<memory_store> ins(s, layout, 8, visited);
    auto others = make_random_vectors(50, dims, 9);
    std::vector<float> copy = {7, 7, 7, 7};
    std::size_t n = 0;
    for (std::size_t i = 0; i < 50; i++, n++)
        ins.insert(new_element{others.data() + i * dims, {}, level_for_vector(others.data() + i * dims, dims, 2, layout.max_level)});
    for (int i = 0; i < 100; i++, n++)
        ins.insert(new_element{copy.data(), {}, level_for_vector(copy.data(), dims, 2, layout.max_level)});
    EXPECT_EQ(s.dup_publications, 99);
    // Every element reachable from the entry point over all levels and rings.
    std::vector<char> seen(n, 0);
    std::vector<std::uint32_t> stack = {s.ep}, buf(layout.m0 + 1);
    seen[s.ep] = 1;
    std::size_t reached = 0;
    while (!stack.empty()) {
        auto id = stack.back();
        stack.pop_back();
        reached++;
        for (int l = 0; l <= s.recs[id].level; l++) {
            int k = s.neighbors(id, l, buf.data());
            for (int i = 0; i < k; i++)
                if (!seen[buf[i]]) {
                    seen[buf[i]] = 1;
                    stack.push_back(buf[i]);
                }
        }
    }
    EXPECT_EQ(reached, n);
    // A search for the copy returns all 100 copies first.
    auto ids = search(s, copy.data(), 100, 120);
    std::size_t copies = 0;
    for (auto id : ids)
        copies += id >= 50;
    EXPECT_EQ(copies, 100u);
}
