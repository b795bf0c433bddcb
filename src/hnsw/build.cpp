// CREATE INDEX: load the vectors, build the graph in memory with hnswlib on worker threads, write
// the pages in one pass. Past maintenance_work_mem the graph built so far is written and the
// remaining rows go through the ordinary on-disk insert (with a NOTICE).
#include "core/distance.hpp"
#include "core/hnsw_level.hpp"
#include "core/hnsw_record.hpp"
#include "hnsw/element_input.hpp"
#include "hnsw/hnsw.hpp"
#include "hnsw/page_store.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/tableam.h"
#include "access/xloginsert.h"
#include "commands/progress.h"
#include "pgstat.h"
#include "utils/backend_progress.h"
}

#include <hnswlib/hnswlib.h>
#include <xxhash.h>

#include <algorithm>

#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <thread>
#include <vector>

namespace meridian::hnsw {

namespace {

// hnswlib's view of our metric: the same kernels the index uses at query time.
class metric_space final : public hnswlib::SpaceInterface<float> {
public:
    metric_space(std::size_t dims, metric kind) : dims_(dims), kind_(kind) {}
    std::size_t get_data_size() override { return dims_ * sizeof(float); }
    hnswlib::DISTFUNC<float> get_dist_func() override { return kind_ == metric::l2 ? &l2 : &negative_ip; }
    void *get_dist_func_param() override { return &dims_; }

private:
    static float l2(const void *a, const void *b, const void *n) {
        return distance::l2_squared(static_cast<const float *>(a), static_cast<const float *>(b),
                                    *static_cast<const std::size_t *>(n));
    }
    static float negative_ip(const void *a, const void *b, const void *n) {
        return -distance::inner_product(static_cast<const float *>(a), static_cast<const float *>(b),
                                        *static_cast<const std::size_t *>(n));
    }
    std::size_t dims_;
    metric kind_;
};

// Worker threads that do pure computation; the destructor stops and joins them, so no thread
// outlives an exception raised on the backend thread.
class worker_group {
public:
    ~worker_group() { stop_and_join(); }
    template <typename F>
    void start(int count, F fn) {
        for (int i = 0; i < count; i++)
            threads_.emplace_back([this, fn] {
                try {
                    fn(stop_);
                } catch (...) {
                    std::lock_guard<std::mutex> g(error_lock_);
                    if (!error_)
                        error_ = std::current_exception();
                    stop_ = true;
                }
            });
    }
    void stop_and_join() {
        stop_ = true;
        for (auto &t : threads_)
            if (t.joinable())
                t.join();
        threads_.clear();
    }
    bool stopped() const { return stop_; }
    void join_and_rethrow() {
        for (auto &t : threads_)
            if (t.joinable())
                t.join();
        threads_.clear();
        if (error_)
            std::rethrow_exception(error_);
    }

private:
    std::vector<std::thread> threads_;
    std::atomic<bool> stop_{false};
    std::mutex error_lock_;
    std::exception_ptr error_;
};

struct build_state {
    Relation heap;
    Relation index;
    index_shape shape;
    std::size_t memory_limit;
    std::size_t bytes_per_element;
    std::vector<float> vectors;
    std::vector<ItemPointerData> tids;
    std::vector<std::uint8_t> levels;
    bool spilled = false;
    double heap_tuples = 0;
    double index_tuples = 0;
    MemoryContext tuple_context;
    std::unique_ptr<page_store> store;
    std::unique_ptr<visited_set> visited;
};

void report(int param, int64 value) { pgstat_progress_update_param(param, value); }

int thread_count() {
    if (build_threads > 0)
        return build_threads;
    unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n > 16 ? 16 : n);
}

// hnswlib's pruning can leave a few elements with no incoming link (more often with small m). Before
// the graph is written, every element that a search from the entry point cannot reach is linked
// from a reachable element: one of its own level-0 neighbors, appended when that list has room,
// otherwise in place of its last (farthest) entry, whose reachability the next round checks. An
// element none of whose neighbors is reachable (an island of unreached elements pointing at each
// other) is appended to the nearest reachable element whose list has room: appending cuts
// nothing, so the island is reached through it.
void repair_reachability(hnswlib::HierarchicalNSW<float> &g, const std::vector<std::uint32_t> &next_dup) {
    const std::size_t n = g.cur_element_count;
    const std::size_t cap0 = g.maxM0_;
    std::vector<char> seen(n);
    for (int round = 0; round < 4; round++) {
        std::fill(seen.begin(), seen.end(), 0);
        std::vector<std::uint32_t> stack{static_cast<std::uint32_t>(g.enterpoint_node_)};
        seen[g.enterpoint_node_] = 1;
        auto visit_from = [&](std::vector<std::uint32_t> &st) {
            while (!st.empty()) {
                std::uint32_t id = st.back();
                st.pop_back();
                auto push = [&](std::uint32_t x) {
                    if (x < n && !seen[x]) {
                        seen[x] = 1;
                        st.push_back(x);
                    }
                };
                for (int l = 0; l <= g.element_levels_[id]; l++) {
                    auto *ll = l == 0 ? g.get_linklist0(id) : g.get_linklist(id, l);
                    std::uint32_t c = g.getListCount(ll);
                    auto *ids = reinterpret_cast<std::uint32_t *>(ll + 1);
                    for (std::uint32_t k = 0; k < c; k++)
                        push(ids[k]);
                }
                if (next_dup[id] != invalid_id)
                    push(next_dup[id]);
            }
        };
        visit_from(stack);
        bool changed = false;
        for (std::uint32_t u = 0; u < n; u++) {
            if (seen[u])
                continue;
            auto *ll = g.get_linklist0(u);
            std::uint32_t c = g.getListCount(ll);
            auto *ids = reinterpret_cast<std::uint32_t *>(ll + 1);
            for (std::uint32_t k = 0; k < c; k++) {
                std::uint32_t r = ids[k];
                if (r >= n || !seen[r])
                    continue;
                auto *rl = g.get_linklist0(r);
                std::uint32_t rc = g.getListCount(rl);
                auto *rids = reinterpret_cast<std::uint32_t *>(rl + 1);
                if (rc < cap0) {
                    rids[rc] = u;
                    g.setListCount(rl, static_cast<unsigned short>(rc + 1));
                } else {
                    rids[rc - 1] = u;
                }
                seen[u] = 1;
                std::vector<std::uint32_t> more{u};
                visit_from(more);
                changed = true;
                break;
            }
            if (seen[u])
                continue;
            const void *x = g.getDataByInternalId(u);
            std::uint32_t best = invalid_id;
            float best_d = 0;
            for (std::uint32_t r = 0; r < n; r++) {
                if (!seen[r] || g.getListCount(g.get_linklist0(r)) >= cap0)
                    continue;
                float d = g.fstdistfunc_(x, g.getDataByInternalId(r), g.dist_func_param_);
                if (best == invalid_id || d < best_d) {
                    best = r;
                    best_d = d;
                }
            }
            if (best == invalid_id)
                continue;  // every reachable list is full: left to hnsw_check to report
            auto *bl = g.get_linklist0(best);
            std::uint32_t bc = g.getListCount(bl);
            reinterpret_cast<std::uint32_t *>(bl + 1)[bc] = u;
            g.setListCount(bl, static_cast<unsigned short>(bc + 1));
            seen[u] = 1;
            std::vector<std::uint32_t> more{u};
            visit_from(more);
            changed = true;
        }
        if (!changed)
            break;
    }
}

// Builds the hnswlib graph over the loaded vectors and writes every page of the index.
void build_and_write(build_state &st) {
    const record_layout &layout = st.shape.layout;
    const std::size_t n = st.tids.size();
    const std::size_t dims = layout.dims;

    std::vector<char> page(BLCKSZ);
    BlockNumber next_block = 0;
    auto write_page = [&](const char *image) {
        pg::call([&] {
            Buffer buf = ReadBufferExtended(st.index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, nullptr);
            LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
            if (BufferGetBlockNumber(buf) != next_block)
                elog(ERROR, "hnsw build: unexpected block %u, expected %u", BufferGetBlockNumber(buf), next_block);
            std::memcpy(BufferGetPage(buf), image, BLCKSZ);
            MarkBufferDirty(buf);
            UnlockReleaseBuffer(buf);
        });
        next_block++;
        if ((next_block & 63) == 0)
            report(PROGRESS_SCAN_BLOCKS_DONE, next_block);
    };

    // The meta page, completed below.
    init_meta_page(page.data(), st.shape);
    auto *meta = reinterpret_cast<meta_page *>(PageGetContents(page.data()));

    std::unique_ptr<metric_space> space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
    if (n > 0) {
        report(PROGRESS_CREATEIDX_SUBPHASE, phase_building);
        report(PROGRESS_CREATEIDX_TUPLES_TOTAL, static_cast<int64>(n));
        report(PROGRESS_CREATEIDX_TUPLES_DONE, 0);
        space = std::make_unique<metric_space>(dims, st.shape.kind);
        graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(space.get(), n, layout.m,
                                                                  static_cast<std::size_t>(st.shape.ef_construction));
        // Levels come from the vectors (level argument); level 0 must not be drawn at random.
        graph->mult_ = 0.0;

        std::atomic<std::size_t> next{0}, done{0};
        worker_group workers;
        workers.start(thread_count(), [&](std::atomic<bool> &stop) {
            for (;;) {
                if (stop)
                    return;
                std::size_t i = next.fetch_add(1);
                if (i >= n)
                    return;
                graph->addPoint(st.vectors.data() + i * dims, i, st.levels[i]);
                done.fetch_add(1);
            }
        });
        // The backend thread only reports progress and watches for cancellation.
        while (done.load() < n && !workers.stopped()) {
            pg_usleep(20000L);
            report(PROGRESS_CREATEIDX_TUPLES_DONE, static_cast<int64>(done.load()));
            if (QueryCancelPending || ProcDiePending) {
                workers.stop_and_join();
                pg::check_for_interrupts();
                throw meridian::error("57014", "canceling hnsw index build");
            }
        }
        workers.join_and_rethrow();
        report(PROGRESS_CREATEIDX_TUPLES_DONE, static_cast<int64>(n));
        std::vector<float>().swap(st.vectors);
    }

    report(PROGRESS_CREATEIDX_SUBPHASE, phase_writing);
    // Placeholder meta page now so that block 0 is the meta page; rewritten at the end.
    write_page(page.data());

    // Assign upper-level lists to slabs, which follow the n element records.
    std::vector<std::uint32_t> slab_of(n, invalid_id), slab_index_of(n, 0);
    std::uint32_t slab_count = 0, used = layout.lists_per_slab;
    for (std::size_t i = 0; i < n; i++) {
        std::uint32_t level = static_cast<std::uint32_t>(graph->element_levels_[i]);
        if (level == 0)
            continue;
        if (used + level > layout.lists_per_slab) {
            slab_count++;
            used = 0;
        }
        slab_of[i] = static_cast<std::uint32_t>(n) + slab_count - 1;
        slab_index_of[i] = used;
        used += level;
    }
    const std::size_t records = n + slab_count;
    report(PROGRESS_SCAN_BLOCKS_TOTAL,
           static_cast<int64>(1 + (records * layout.record_size + stream_page_payload - 1) / stream_page_payload));
    report(PROGRESS_SCAN_BLOCKS_DONE, next_block);

    // Rings of identical vectors (see publish_duplicate): group by hash, confirm byte equality.
    std::vector<std::uint32_t> next_dup(n, invalid_id);
    {
        std::vector<std::pair<std::uint64_t, std::uint32_t>> by_hash(n);
        for (std::size_t i = 0; i < n; i++)
            by_hash[i] = {XXH64(graph->getDataByInternalId(static_cast<hnswlib::tableint>(i)), dims * 4, 0),
                          static_cast<std::uint32_t>(i)};
        std::sort(by_hash.begin(), by_hash.end());
        for (std::size_t a = 0; a < n;) {
            std::size_t b = a + 1;
            while (b < n && by_hash[b].first == by_hash[a].first)
                b++;
            std::vector<std::uint32_t> ring;
            const char *first = graph->getDataByInternalId(by_hash[a].second);
            for (std::size_t k = a; k < b; k++)
                if (std::memcmp(graph->getDataByInternalId(by_hash[k].second), first, dims * 4) == 0)
                    ring.push_back(by_hash[k].second);
            if (ring.size() > 1)
                for (std::size_t k = 0; k < ring.size(); k++)
                    next_dup[ring[k]] = ring[(k + 1) % ring.size()];
            a = b;
        }
    }
    if (n > 0)
        repair_reachability(*graph, next_dup);

    // Stream the records into pages.
    std::vector<char> rec(layout.record_size);
    std::vector<char> stream_page(BLCKSZ);
    init_stream_page(stream_page.data());
    std::size_t fill = 0;
    auto emit = [&](const char *bytes, std::size_t len) {
        while (len > 0) {
            std::size_t k = std::min(len, stream_page_payload - fill);
            std::memcpy(PageGetContents(stream_page.data()) + fill, bytes, k);
            fill += k;
            bytes += k;
            len -= k;
            if (fill == stream_page_payload) {
                write_page(stream_page.data());
                init_stream_page(stream_page.data());
                fill = 0;
            }
        }
    };
    auto list_of = [&](std::size_t i, int level, std::uint32_t *count) -> const std::uint32_t * {
        auto *ll = level == 0 ? graph->get_linklist0(static_cast<hnswlib::tableint>(i))
                              : graph->get_linklist(static_cast<hnswlib::tableint>(i), level);
        *count = graph->getListCount(ll);
        return reinterpret_cast<const std::uint32_t *>(ll + 1);
    };
    for (std::size_t i = 0; i < n; i++) {
        std::size_t label = graph->getExternalLabel(static_cast<hnswlib::tableint>(i));
        element_header h;
        h.state = state_live;
        h.level = static_cast<std::uint8_t>(graph->element_levels_[i]);
        std::memcpy(h.tid, &st.tids[label], 6);
        h.slab_id = slab_of[i];
        h.slab_index = static_cast<std::uint16_t>(slab_index_of[i]);
        h.next_dup = next_dup[i];
        std::uint32_t count;
        const std::uint32_t *ids = list_of(i, 0, &count);
        encode_element(layout, h, ids, count,
                       reinterpret_cast<const float *>(graph->getDataByInternalId(static_cast<hnswlib::tableint>(i))),
                       rec.data());
        emit(rec.data(), rec.size());
        if ((i & 1023) == 0)
            pg::check_for_interrupts();
    }
    // Slab records: walk the elements again in the same order, packing their lists.
    std::size_t current_slab = invalid_id;
    for (std::size_t i = 0; i < n; i++) {
        int level = graph ? graph->element_levels_[i] : 0;
        if (level == 0)
            continue;
        if (slab_of[i] != current_slab) {
            if (current_slab != invalid_id)
                emit(rec.data(), rec.size());
            encode_empty_slab(layout, rec.data());
            current_slab = slab_of[i];
        }
        for (int l = 1; l <= level; l++) {
            std::uint32_t count;
            const std::uint32_t *ids = list_of(i, l, &count);
            encode_list(list_format::upper(layout), ids, count,
                        rec.data() + layout.slab_list_offset(slab_index_of[i] + static_cast<std::uint32_t>(l) - 1));
        }
    }
    if (current_slab != invalid_id)
        emit(rec.data(), rec.size());
    if (fill > 0)
        write_page(stream_page.data());

    meta->high_water = static_cast<std::uint32_t>(records);
    if (n > 0) {
        meta->entry_point = graph->enterpoint_node_;
        meta->entry_level = graph->maxlevel_;
        if (slab_count > 0) {
            meta->slab_id = static_cast<std::uint32_t>(n) + slab_count - 1;
            meta->slab_used = used;
        }
    }
    pg::call([&] {
        Buffer buf = ReadBufferExtended(st.index, MAIN_FORKNUM, meta_block, RBM_NORMAL, nullptr);
        LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
        std::memcpy(BufferGetPage(buf), page.data(), BLCKSZ);
        MarkBufferDirty(buf);
        UnlockReleaseBuffer(buf);
        if (RelationNeedsWAL(st.index))
            log_newpage_range(st.index, MAIN_FORKNUM, 0, RelationGetNumberOfBlocks(st.index), true);
    });
    std::vector<ItemPointerData>().swap(st.tids);
    std::vector<std::uint8_t>().swap(st.levels);
}

void insert_on_disk(build_state &st, const float *v, ItemPointer tid, int level) {
    if (!st.store) {
        st.store = std::make_unique<page_store>(st.index, shape_of(st.index));
        st.visited = std::make_unique<visited_set>();
    }
    new_element e{v, {}, level};
    std::memcpy(e.tid, tid, 6);
    inserter<page_store> ins(*st.store, st.shape.layout, st.shape.ef_construction, *st.visited);
    ins.insert(e);
}

void on_heap_tuple(Relation, ItemPointer tid, Datum *values, bool *isnull, bool, void *state_ptr) {
    auto &st = *static_cast<build_state *>(state_ptr);
    st.heap_tuples++;
    if (isnull[0])
        return;
    MemoryContext old = MemoryContextSwitchTo(st.tuple_context);
    pg::guarded([&] {
        element_input in(values[0], st.shape);
        if (!in.indexable())
            return;
        const float *v = in.data();
        int level = level_for_vector(v, st.shape.layout.dims, static_cast<int>(st.shape.layout.m), st.shape.layout.max_level);
        if (!st.spilled) {
            if ((st.tids.size() + 1) * st.bytes_per_element > st.memory_limit && !st.tids.empty()) {
                pg::call([&] {
                    ereport(NOTICE,
                            (errmsg("hnsw graph no longer fits into maintenance_work_mem after %zu tuples",
                                    st.tids.size()),
                             errdetail("Building will take significantly more time."),
                             errhint("Increase maintenance_work_mem to speed up builds.")));
                });
                build_and_write(st);
                st.spilled = true;
                report(PROGRESS_CREATEIDX_SUBPHASE, phase_inserting);
            } else {
                st.vectors.insert(st.vectors.end(), v, v + st.shape.layout.dims);
                st.tids.push_back(*tid);
                st.levels.push_back(static_cast<std::uint8_t>(level));
            }
        }
        if (st.spilled)
            insert_on_disk(st, v, tid, level);
        st.index_tuples++;
        if ((static_cast<std::int64_t>(st.index_tuples) & 255) == 0)
            report(PROGRESS_CREATEIDX_TUPLES_DONE, static_cast<int64>(st.index_tuples));
    });
    MemoryContextSwitchTo(old);
    MemoryContextReset(st.tuple_context);
}

}  // namespace

index_shape shape_for_new_index(Relation index);

IndexBuildResult *build(Relation heap, Relation index, IndexInfo *info) {
    if (RelationGetNumberOfBlocks(index) != 0)
        throw meridian::error(sqlstate::internal_error, "index \"" + std::string(RelationGetRelationName(index)) +
                                                            "\" already contains data");
    build_state st;
    st.heap = heap;
    st.index = index;
    st.shape = shape_for_new_index(index);
    const record_layout &l = st.shape.layout;
    st.memory_limit = static_cast<std::size_t>(maintenance_work_mem) * 1024;
    // Loaded vector + hnswlib's element (links, vector, label) + its locks and label map.
    st.bytes_per_element = 2 * l.dims * 4 + 4 + l.m0 * 4 + 8 + 120 + l.upper_list_size / (l.m - 1 > 0 ? l.m - 1 : 1);
    double estimate = heap->rd_rel->reltuples > 0 ? heap->rd_rel->reltuples : 0;
    std::size_t fit = st.memory_limit / st.bytes_per_element;
    std::size_t reserve = static_cast<std::size_t>(estimate) < fit ? static_cast<std::size_t>(estimate) : fit;
    st.vectors.reserve(reserve * l.dims);
    st.tids.reserve(reserve);
    st.levels.reserve(reserve);
    st.tuple_context = pg::call([] {
        return AllocSetContextCreate(CurrentMemoryContext, "hnsw build tuple", ALLOCSET_DEFAULT_SIZES);
    });

    report(PROGRESS_CREATEIDX_SUBPHASE, phase_loading);
    if (estimate > 0)
        report(PROGRESS_CREATEIDX_TUPLES_TOTAL, static_cast<int64>(estimate));
    pg::call([&] {
        table_index_build_scan(heap, index, info, true, true, on_heap_tuple, &st, nullptr);
    });
    if (!st.spilled)
        build_and_write(st);

    auto *result = static_cast<IndexBuildResult *>(pg::call([] { return palloc0(sizeof(IndexBuildResult)); }));
    result->heap_tuples = st.heap_tuples;
    result->index_tuples = st.index_tuples;
    pg::call([&] { MemoryContextDelete(st.tuple_context); });
    return result;
}

void build_empty(Relation index) {
    index_shape shape = shape_for_new_index(index);
    pg::call([&] {
        Buffer buf = ReadBufferExtended(index, INIT_FORKNUM, P_NEW, RBM_NORMAL, nullptr);
        LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
        GenericXLogState *state = GenericXLogStart(index);
        Page page = GenericXLogRegisterBuffer(state, buf, GENERIC_XLOG_FULL_IMAGE);
        init_meta_page(page, shape);
        GenericXLogFinish(state);
        UnlockReleaseBuffer(buf);
    });
}

}  // namespace meridian::hnsw
