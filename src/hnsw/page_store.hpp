// The element stream on PostgreSQL pages: the store the HNSW core (src/core/hnsw_graph.hpp)
// reads and writes. Reads share-lock the one or two pages of a record; every write is one
// Generic WAL record over at most four pages, with pages always locked in ascending order.
#pragma once

#include "core/hnsw_graph.hpp"
#include "core/hnsw_record.hpp"
#include "hnsw/hnsw.hpp"

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

    // Optimistic mode (index scans only): visit/visit_bounded and level-0 neighbors read records
    // without pin or lock (stream_read), so their distances, states, heap TIDs and edges are
    // hints that a concurrent write or buffer replacement can, in a rare race, make wrong. The
    // caller must confirm with visit_confirmed() every element it acts on beyond steering the
    // search. Everything else (upper-level lists, vectors, all writes) always locks.
    void set_optimistic(bool on) { optimistic_ = on; }
    // visit() under pin and share lock, whatever the mode: the authoritative state, TID and distance.
    bool visit_confirmed(std::uint32_t id, const float *q, float *dist, element_info *info);

    // read side
    bool visit(std::uint32_t id, const float *q, float *dist, element_info *info) {
        return visit_bounded(id, q, std::numeric_limits<float>::infinity(), dist, info);
    }
    bool visit_bounded(std::uint32_t id, const float *q, float bound, float *dist, element_info *info);
    int neighbors(std::uint32_t id, int level, std::uint32_t *out);
    void prefetch(std::uint32_t id) const;
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
    std::uint32_t allocate_slot(stream_write &w, meta_page *meta);
    void ensure_pages(std::uint64_t end_pos, stream_write &w);
    void write_list(stream_write &w, const list_location &loc, const std::vector<std::uint32_t> &ids);
    bool list_equals(const stream_write &w, const list_location &loc, const std::vector<std::uint32_t> &ids) const;

    Relation index_;
    const index_shape &shape_;
    const record_layout &layout_;
    std::uint32_t id_limit_;  // ids below this are known to be allocated
    std::uint32_t visits_ = 0;
    bool optimistic_ = false;
};

}  // namespace meridian::hnsw
