// The element stream on PostgreSQL pages: the store the HNSW core (src/core/hnsw_graph.hpp)
// reads and writes. Reads share-lock the one or two pages of a record; every write is one
// Generic WAL record over at most four pages, with pages always locked in ascending order.
#pragma once

#include "core/distance.hpp"
#include "core/hnsw_graph.hpp"
#include "core/hnsw_record.hpp"
#include "hnsw/hnsw.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "storage/buf_internals.h"
}

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace meridian::hnsw {

// Pins and share-locks the pages covering stream bytes [pos, pos + len) (len <= page payload).
// An optimistic read instead reads the pages in place, without pin or lock, when the buffers
// they were last seen in still hold them (else it pins and locks as usual): the bytes may then
// be torn by a concurrent write or belong to a page that replaced it meanwhile, so callers use
// them only as search hints, bounds-check everything derived from them, and confirm under a
// lock whatever they return (see page_store::set_optimistic).
class stream_read {
public:
    stream_read(Relation index, std::uint64_t pos, std::uint32_t len, bool optimistic = false);
    ~stream_read();
    stream_read(const stream_read &) = delete;
    stream_read &operator=(const stream_read &) = delete;

    int pieces() const { return n_; }
    const char *piece(int i) const { return ptr_[i]; }
    std::uint32_t piece_len(int i) const { return len_[i]; }
    // Copies bytes [off, off + n) of the range.
    void copy(std::uint32_t off, std::uint32_t n, void *dst) const;

private:
    Buffer buf_[2];
    const char *ptr_[2];
    std::uint32_t len_[2];
    int n_ = 0;
    bool in_place_ = false;  // an optimistic read: nothing pinned or locked
};

// One Generic WAL record: collect the stream ranges (and the meta page) to change, then begin(),
// read and write through the page images, and commit() (or let the destructor abort).
class stream_write {
public:
    explicit stream_write(Relation index) : index_(index) {}
    ~stream_write();
    stream_write(const stream_write &) = delete;
    stream_write &operator=(const stream_write &) = delete;

    void add_meta();
    void add_range(std::uint64_t pos, std::uint32_t len);
    void add_new_block(Buffer buf);  // a just-extended, exclusively locked page: logged as a full image
    void begin();
    meta_page *meta();
    void read(std::uint64_t pos, std::uint32_t n, void *dst) const;
    void write(std::uint64_t pos, std::uint32_t n, const void *src);
    void commit();

private:
    char *locate(std::uint64_t pos, std::uint32_t *avail) const;
    void add_block(BlockNumber b);
    void register_page(int i);

    Relation index_;
    BlockNumber blocks_[MAX_GENERIC_XLOG_PAGES];
    Buffer bufs_[MAX_GENERIC_XLOG_PAGES];
    Page pages_[MAX_GENERIC_XLOG_PAGES];
    bool fresh_[MAX_GENERIC_XLOG_PAGES];
    int n_ = 0;
    bool locked_ = false;
    GenericXLogState *state_ = nullptr;
};

// Reads the meta page under a share lock.
meta_page read_meta_header(Relation index);

class page_store {
public:
    struct allocation {
        std::uint32_t id;
        std::uint32_t slab_id;
        std::uint32_t slab_index;
        std::uint32_t ep;
        int ep_level;
        bool published;
    };

    page_store(Relation index, const index_shape &shape);

    // Optimistic mode (index scans only): visit/visit_bounded and neighbors (every level) read
    // records without pin or lock, so their distances, states, heap TIDs and edges are hints
    // that a concurrent write or buffer replacement can, in a rare race, make wrong. The caller
    // must confirm with visit_confirmed() every element it acts on beyond steering the search.
    // Everything else (read_list, read_vector, locate_list, all writes) always locks.
    void set_optimistic(bool on) { optimistic_ = on; }
    // visit() under pin and share lock, whatever the mode: the authoritative state, TID and distance.
    bool visit_confirmed(std::uint32_t id, const float *q, float *dist, element_info *info);

    // read side. visit_bounded, neighbors (level 0) and prefetch are the inner loop of every
    // search: their optimistic common case (record in place in remembered, still valid buffers)
    // is inline below; everything else goes through the locked reads of page_store.cpp.
    bool visit(std::uint32_t id, const float *q, float *dist, element_info *info) {
        return visit_bounded(id, q, std::numeric_limits<float>::infinity(), dist, info);
    }
    inline bool visit_bounded(std::uint32_t id, const float *q, float bound, float *dist, element_info *info);
    inline int neighbors(std::uint32_t id, int level, std::uint32_t *out);
    inline void prefetch(std::uint32_t id) const;
    int read_list(std::uint32_t id, int level, std::uint32_t *out);
    std::uint8_t read_vector(std::uint32_t id, float *out);
    float distance(const float *a, const float *b) const;
    float distance_split(const float *q, const char *p1, std::uint32_t n1, const char *p2, std::uint32_t n2) const;

    // write side
    allocation allocate(const new_element &e);
    void write_upper_lists(const allocation &a, int level, const std::vector<std::vector<std::uint32_t>> &lists);
    bool publish(const allocation &a, const new_element &e, const std::vector<std::uint32_t> &list0,
                 const backlink *first);
    bool publish_duplicate(const allocation &a, const new_element &e, const std::vector<std::uint32_t> &list0,
                           std::uint32_t twin);
    bool replace_list(const backlink &bl);
    // Compare-and-swap of an element's next-duplicate pointer (VACUUM's ring repair).
    bool replace_next_dup(std::uint32_t id, std::uint32_t expected, std::uint32_t replacement);
    void raise_entry_point(std::uint32_t id, int level);
    bool entry_point(std::uint32_t *id, int *level);

    // helpers shared with vacuum and check
    bool valid_id(std::uint32_t id);
    struct list_location {
        std::uint64_t pos;
        list_format format;
    };
    bool locate_list(std::uint32_t id, int level, list_location *loc);
    const record_layout &layout() const { return layout_; }
    Relation relation() const { return index_; }

private:
    // The pieces of the read path that take locks, or handle rare layouts (page_store.cpp).
    bool visit_read(std::uint32_t id, const float *q, float *dist, element_info *info);
    int neighbors_read(std::uint32_t id, int level, std::uint32_t *out, bool optimistic);
    int upper_list_hint(std::uint32_t id, int level, std::uint32_t *out);
    // For an optimistic read: the content area of block b in place, if the buffer it was last seen
    // in still holds it (descriptor tag and BM_VALID, read without the header lock); else null.
    inline const char *resident_page(BlockNumber b) const;
    // Where record `id` (plus `delta` bytes) lies in the element stream.
    struct place {
        BlockNumber block;
        std::uint32_t offset;
    };
    place place_of(std::uint32_t id, std::uint32_t delta = 0) const {
        const std::uint64_t pos = static_cast<std::uint64_t>(id) * record_size_ + delta;
        const std::uint64_t page = pos / stream_page_payload;
        return {first_stream_block + static_cast<BlockNumber>(page),
                static_cast<std::uint32_t>(pos - page * stream_page_payload)};
    }

    std::uint32_t allocate_slot(stream_write &w, meta_page *meta);
    void ensure_pages(std::uint64_t end_pos, stream_write &w);
    void write_list(stream_write &w, const list_location &loc, const std::vector<std::uint32_t> &ids);
    bool list_equals(const stream_write &w, const list_location &loc, const std::vector<std::uint32_t> &ids) const;

    Relation index_;
    // Copies, not references into rd_amcache: a relcache flush between two calls of a scan frees
    // that (and the next call rebuilds it).
    const index_shape shape_;
    const record_layout layout_;
    std::uint32_t id_limit_;  // ids below this are known to be allocated
    std::uint32_t visits_ = 0;
    bool optimistic_ = false;
    // Hot-path constants, derived once.
    std::uint32_t record_size_;
    std::uint32_t vector_offset_;
    std::uint32_t dims_;
    std::uint32_t m0_;
    distance::kernel_fn kernel_;  // l2_squared, or inner_product (negated: sign_ = -1)
    float sign_;
    std::uint64_t tag_rel_[2];    // the first 16 bytes of this index's main-fork buffer tags
};

// ---------------------------------------------------------------------------------------------
// Inline read path

inline const char *page_store::resident_page(BlockNumber b) const {
    const auto *cache = static_cast<const index_cache *>(index_->rd_amcache);
    if (cache == nullptr || b >= cache->recent_size)
        return nullptr;
    const Buffer hint = cache->recent[b];
    if (hint <= 0)  // InvalidBuffer, or a local buffer (temporary index): the locked read
        return nullptr;
    const BufferDesc *desc = GetBufferDescriptor(hint - 1);
    std::uint64_t t[2];
    std::memcpy(t, &desc->tag, sizeof t);
    if (((t[0] ^ tag_rel_[0]) | (t[1] ^ tag_rel_[1]) | (desc->tag.blockNum ^ b)) != 0 ||
        (pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&desc->state)) & BM_VALID) == 0)
        return nullptr;
    return BufferBlocks + static_cast<std::size_t>(hint - 1) * BLCKSZ + page_content_offset;
}

inline bool page_store::visit_bounded(std::uint32_t id, const float *q, float, float *dist, element_info *info) {
    // Always the whole distance, in one kernel call per piece, although the search allows a
    // lower bound past `bound`: on Fashion-MNIST (ef 40) 69% of visits could stop early, but
    // only after 4.8 of their 7 chunks of 128 dimensions on average, so the per-chunk calls and
    // horizontal sums cost more than the memory they saved (9% more instructions per query).
    if (optimistic_ && id < id_limit_) {
        const place at = place_of(id);
        const std::uint32_t room = static_cast<std::uint32_t>(stream_page_payload) - at.offset;
        const char *page;
        // State and heap TID on the first page (all but ~0.1% of records).
        if (room >= record_layout::off_tid + 6 && (page = resident_page(at.block)) != nullptr) {
            if ((++visits_ & 255u) == 0)
                pg::check_for_interrupts();
            const char *rec = page + at.offset;
            // Read once into locals: the bytes may change under us.
            const std::uint8_t state = static_cast<std::uint8_t>(rec[record_layout::off_state]);
            if (state != state_live && state != state_deleted)
                return false;
            info->state = state;
            std::memcpy(info->tid, rec + record_layout::off_tid, 6);
            info->exact = true;
            const float *v = reinterpret_cast<const float *>(rec + vector_offset_);
            float d;
            if (room >= record_size_) {
                d = kernel_(q, v, dims_);
            } else {
                // The record continues at the start of the next block, checked like the first.
                const char *next = resident_page(at.block + 1);
                if (next == nullptr)
                    return visit_read(id, q, dist, info);
                if (room > vector_offset_) {
                    const std::uint32_t n1 = (room - vector_offset_) / 4;
                    d = kernel_(q, v, n1) + kernel_(q + n1, reinterpret_cast<const float *>(next), dims_ - n1);
                } else {
                    d = kernel_(q, reinterpret_cast<const float *>(next + (vector_offset_ - room)), dims_);
                }
            }
            *dist = sign_ * d;
            // Torn bytes can form a NaN, which would upset the search's ordering: such a hint is dropped.
            return !std::isnan(d);
        }
    }
    return visit_read(id, q, dist, info);
}

inline int page_store::neighbors(std::uint32_t id, int level, std::uint32_t *out) {
    // The next-duplicate pointer sits just before the level-0 list: one read for both.
    // Optimistically read edges are only followed: every id is checked when visited.
    constexpr std::uint32_t ring_bytes = record_layout::off_count0 - record_layout::off_next_dup;
    if (level == 0 && optimistic_ && id < id_limit_) {
        const place at = place_of(id, record_layout::off_next_dup);
        const char *page;
        if (at.offset + ring_bytes + 2 + 4 * m0_ <= stream_page_payload && (page = resident_page(at.block)) != nullptr) {
            const char *p = page + at.offset;
            std::uint32_t next_dup;
            std::uint16_t count;
            std::memcpy(&next_dup, p, 4);
            std::memcpy(&count, p + ring_bytes, 2);
            const std::uint32_t n = count < m0_ ? count : m0_;
            // Bytes of a page that replaced ours in the buffer could hold any ids, and the
            // visited set grows to the largest id it is given: beyond the high-water mark (read
            // again), the list is read under lock instead.
            const char *ids = p + ring_bytes + 2;
            std::uint32_t top = 0;
            for (std::uint32_t i = 0; i < n; i++) {
                std::uint32_t e;
                std::memcpy(&e, ids + 4 * i, 4);
                out[i] = e;
                top = e > top ? e : top;
            }
            std::uint32_t k = n;
            if (next_dup != invalid_id && next_dup != id) {
                out[k++] = next_dup;
                top = next_dup > top ? next_dup : top;
            }
            if (top < id_limit_ || valid_id(top))
                return static_cast<int>(k);
            return neighbors_read(id, level, out, false);
        }
    }
    return neighbors_read(id, level, out, optimistic_);
}

// One cache line prefetched. An asm statement rather than __builtin_prefetch: GCC takes a function
// whose only effects are __builtin_prefetch calls for one without side effects and drops the calls
// to it (it dropped every call of the inline prefetch below).
inline void prefetch_line(const void *p) {
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char *>(p)));
#else
    __builtin_prefetch(p);
#endif
}

inline void page_store::prefetch(std::uint32_t id) const {
    // A hint only: the buffer may hold another page by now, which costs nothing but the fetches.
    if (id >= id_limit_)
        return;
    const auto *cache = static_cast<const index_cache *>(index_->rd_amcache);
    const place at = place_of(id);
    if (cache == nullptr || at.block >= cache->recent_size)
        return;
    const Buffer hint = cache->recent[at.block];
    if (hint <= 0)
        return;
    // The descriptor (checked, or pinned, first) and the record's first line (state and heap
    // TID, read first). The vector's lines are left to the hardware prefetcher, which follows the
    // kernel's sequential reads: prefetching them too (two more lines) made queries ~4% slower.
    prefetch_line(GetBufferDescriptor(hint - 1));
    const char *p = BufferBlocks + static_cast<std::size_t>(hint - 1) * BLCKSZ + page_content_offset + at.offset;
    prefetch_line(p);
    // A record that continues on the next block: that block's descriptor (checked too) and first
    // line, where the hardware prefetcher's stream does not follow.
    if (at.offset + record_size_ > stream_page_payload && at.block + 1 < cache->recent_size) {
        const Buffer next = cache->recent[at.block + 1];
        if (next > 0) {
            prefetch_line(GetBufferDescriptor(next - 1));
            prefetch_line(BufferBlocks + static_cast<std::size_t>(next - 1) * BLCKSZ + page_content_offset);
        }
    }
}

}  // namespace meridian::hnsw
