#include "hnsw/page_store.hpp"

#include "core/distance.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "storage/buf_internals.h"
#include "storage/lmgr.h"
}

#include <algorithm>
#include <cmath>
#include <cstring>

namespace meridian::hnsw {

namespace {

constexpr std::uint64_t payload = stream_page_payload;

inline BlockNumber block_of(std::uint64_t pos) {
    return first_stream_block + static_cast<BlockNumber>(locate(pos, payload).page);
}
inline std::uint32_t offset_in_page(std::uint64_t pos) { return locate(pos, payload).offset; }

Buffer read_buffer_uncached(Relation index, BlockNumber b) {
    return pg::call([&] { return ReadBufferExtended(index, MAIN_FORKNUM, b, RBM_NORMAL, nullptr); });
}

// Pins block b, trying first the buffer it was last seen in (no buffer mapping lookup).
Buffer read_buffer(Relation index, BlockNumber b) {
    if (index->rd_amcache == nullptr)
        return read_buffer_uncached(index, b);
    index_cache &cache = *static_cast<index_cache *>(index->rd_amcache);
    if (b < cache.recent_size) {
        Buffer hint = cache.recent[b];
        if (hint != InvalidBuffer &&
            pg::call([&] { return ReadRecentBuffer(index->rd_node, MAIN_FORKNUM, b, hint); }))
            return hint;
    } else {
        BlockNumber size = std::max<BlockNumber>(b + 1, cache.recent_size * 2);
        size = std::max<BlockNumber>(size, 1024);
        cache.recent = static_cast<Buffer *>(pg::call([&] {
            return cache.recent == nullptr
                       ? MemoryContextAllocZero(index->rd_indexcxt, size * sizeof(Buffer))
                       : repalloc(cache.recent, size * sizeof(Buffer));
        }));
        std::fill(cache.recent + cache.recent_size, cache.recent + size, InvalidBuffer);
        cache.recent_size = size;
    }
    Buffer buf = read_buffer_uncached(index, b);
    cache.recent[b] = buf;
    return buf;
}

// For an optimistic read: the buffer block b was last seen in, if its descriptor still names
// block b of this index's main fork and holds valid contents. Read without the header spinlock,
// so a descriptor being retagged may be misjudged: the caller treats what it reads as a hint.
Buffer resident_buffer(Relation index, BlockNumber b) {
    if (index->rd_amcache == nullptr)
        return InvalidBuffer;
    const index_cache &cache = *static_cast<const index_cache *>(index->rd_amcache);
    if (b >= cache.recent_size)
        return InvalidBuffer;
    Buffer hint = cache.recent[b];
    if (hint == InvalidBuffer || BufferIsLocal(hint))
        return InvalidBuffer;
    BufferDesc *desc = GetBufferDescriptor(hint - 1);
    if (desc->tag.blockNum != b || desc->tag.forkNum != MAIN_FORKNUM || !RelFileNodeEquals(desc->tag.rnode, index->rd_node) ||
        (pg_atomic_read_u32(&desc->state) & BM_VALID) == 0)
        return InvalidBuffer;
    return hint;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// stream_read

stream_read::stream_read(Relation index, std::uint64_t pos, std::uint32_t len, bool optimistic) {
    BlockNumber b = block_of(pos);
    std::uint32_t off = offset_in_page(pos);
    std::uint32_t first = first_piece(pos, len, static_cast<std::uint32_t>(payload));
    if (optimistic) {
        // Buffer pool memory is always mapped: reading a block in place is memory-safe even when
        // the buffer is being replaced or written; only the bytes may be wrong.
        Buffer b0 = resident_buffer(index, b);
        Buffer b1 = b0 == InvalidBuffer || first == len ? b0 : resident_buffer(index, b + 1);
        if (b0 != InvalidBuffer && b1 != InvalidBuffer) {
            in_place_ = true;
            n_ = 1;
            ptr_[0] = PageGetContents(BufferGetPage(b0)) + off;
            len_[0] = first;
            if (first < len) {
                n_ = 2;
                ptr_[1] = PageGetContents(BufferGetPage(b1));
                len_[1] = len - first;
            }
            return;
        }
    }
    buf_[0] = read_buffer(index, b);
    LockBuffer(buf_[0], BUFFER_LOCK_SHARE);
    n_ = 1;
    ptr_[0] = PageGetContents(BufferGetPage(buf_[0])) + off;
    len_[0] = first;
    if (first < len) {
        try {
            buf_[1] = read_buffer(index, b + 1);
        } catch (...) {
            UnlockReleaseBuffer(buf_[0]);
            throw;
        }
        LockBuffer(buf_[1], BUFFER_LOCK_SHARE);
        n_ = 2;
        ptr_[1] = PageGetContents(BufferGetPage(buf_[1]));
        len_[1] = len - first;
    }
}

stream_read::~stream_read() {
    if (in_place_)
        return;
    for (int i = 0; i < n_; i++)
        UnlockReleaseBuffer(buf_[i]);
}

void stream_read::copy(std::uint32_t off, std::uint32_t n, void *dst) const {
    char *out = static_cast<char *>(dst);
    if (off < len_[0]) {
        std::uint32_t k = std::min(n, len_[0] - off);
        std::memcpy(out, ptr_[0] + off, k);
        out += k;
        n -= k;
        off = len_[0];
    }
    if (n > 0)
        std::memcpy(out, ptr_[1] + (off - len_[0]), n);
}

// ---------------------------------------------------------------------------------------------
// stream_write

stream_write::~stream_write() {
    if (state_ != nullptr)
        GenericXLogAbort(state_);
    if (locked_)
        for (int i = 0; i < n_; i++)
            UnlockReleaseBuffer(bufs_[i]);
}

void stream_write::add_block(BlockNumber b) {
    for (int i = 0; i < n_; i++)
        if (blocks_[i] == b)
            return;
    if (n_ == MAX_GENERIC_XLOG_PAGES)
        throw meridian::error(sqlstate::internal_error, "hnsw: too many pages in one WAL record");
    if (locked_) {
        // Late additions keep the ascending lock order: only pages above every locked one
        // (pages we just added to the relation are invisible to others and do not count).
        for (int i = 0; i < n_; i++)
            if (!fresh_[i] && blocks_[i] > b)
                throw meridian::error(sqlstate::internal_error, "hnsw: page lock order violated");
        Buffer buf = read_buffer(index_, b);
        LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
        blocks_[n_] = b;
        bufs_[n_] = buf;
        fresh_[n_] = false;
        register_page(n_);
        n_++;
        return;
    }
    blocks_[n_] = b;
    fresh_[n_] = false;
    n_++;
}

void stream_write::add_meta() { add_block(meta_block); }

void stream_write::add_range(std::uint64_t pos, std::uint32_t len) {
    add_block(block_of(pos));
    if (len > 0)
        add_block(block_of(pos + len - 1));
}

void stream_write::add_new_block(Buffer buf) {
    // Called after begin(): the page was just added to the relation and is locked by us.
    if (n_ == MAX_GENERIC_XLOG_PAGES)
        throw meridian::error(sqlstate::internal_error, "hnsw: too many pages in one WAL record");
    blocks_[n_] = BufferGetBlockNumber(buf);
    bufs_[n_] = buf;
    fresh_[n_] = true;
    pages_[n_] = GenericXLogRegisterBuffer(state_, buf, GENERIC_XLOG_FULL_IMAGE);
    init_stream_page(pages_[n_]);
    n_++;
}

void stream_write::begin() {
    std::sort(blocks_, blocks_ + n_);
    int locked = 0;
    try {
        for (; locked < n_; locked++) {
            bufs_[locked] = read_buffer(index_, blocks_[locked]);
            LockBuffer(bufs_[locked], BUFFER_LOCK_EXCLUSIVE);
        }
    } catch (...) {
        for (int i = 0; i < locked; i++)
            UnlockReleaseBuffer(bufs_[i]);
        throw;
    }
    locked_ = true;
    state_ = GenericXLogStart(index_);
    for (int i = 0; i < n_; i++)
        register_page(i);
}

void stream_write::register_page(int i) {
    // A page still all zeros was added to the relation by an extension whose WAL record a crash
    // cut off (the relation keeps its length): initialise it now, logged as a full image.
    bool is_new = PageIsNew(BufferGetPage(bufs_[i])) && blocks_[i] != meta_block;
    pages_[i] = GenericXLogRegisterBuffer(state_, bufs_[i], is_new ? GENERIC_XLOG_FULL_IMAGE : 0);
    if (is_new)
        init_stream_page(pages_[i]);
}

meta_page *stream_write::meta() {
    for (int i = 0; i < n_; i++)
        if (blocks_[i] == meta_block)
            return reinterpret_cast<meta_page *>(PageGetContents(pages_[i]));
    throw meridian::error(sqlstate::internal_error, "hnsw: meta page not registered");
}

char *stream_write::locate(std::uint64_t pos, std::uint32_t *avail) const {
    BlockNumber b = block_of(pos);
    for (int i = 0; i < n_; i++)
        if (blocks_[i] == b) {
            *avail = static_cast<std::uint32_t>(payload - offset_in_page(pos));
            return PageGetContents(pages_[i]) + offset_in_page(pos);
        }
    throw meridian::error(sqlstate::internal_error, "hnsw: page not registered for write");
}

void stream_write::read(std::uint64_t pos, std::uint32_t n, void *dst) const {
    char *out = static_cast<char *>(dst);
    while (n > 0) {
        std::uint32_t avail;
        const char *p = locate(pos, &avail);
        std::uint32_t k = std::min(n, avail);
        std::memcpy(out, p, k);
        out += k;
        pos += k;
        n -= k;
    }
}

void stream_write::write(std::uint64_t pos, std::uint32_t n, const void *src) {
    const char *in = static_cast<const char *>(src);
    while (n > 0) {
        std::uint32_t avail;
        char *p = locate(pos, &avail);
        std::uint32_t k = std::min(n, avail);
        std::memcpy(p, in, k);
        in += k;
        pos += k;
        n -= k;
    }
}

void stream_write::commit() {
    GenericXLogFinish(state_);
    state_ = nullptr;
    for (int i = 0; i < n_; i++)
        UnlockReleaseBuffer(bufs_[i]);
    locked_ = false;
}

meta_page read_meta_header(Relation index) {
    Buffer buf = read_buffer(index, meta_block);
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    meta_page m;
    std::memcpy(&m, PageGetContents(BufferGetPage(buf)), sizeof(meta_page));
    UnlockReleaseBuffer(buf);
    if (m.magic != page_magic)
        throw meridian::error(sqlstate::index_corrupted, "hnsw index \"" + std::string(RelationGetRelationName(index)) +
                                                             "\" has an invalid meta page");
    return m;
}

// ---------------------------------------------------------------------------------------------
// page_store

namespace {

element_header live_header(const page_store::allocation &a, const new_element &e) {
    element_header h;
    h.state = state_live;
    h.level = static_cast<std::uint8_t>(e.level);
    std::memcpy(h.tid, e.tid, 6);
    h.slab_id = a.slab_id;
    h.slab_index = static_cast<std::uint16_t>(a.slab_index);
    return h;
}

}  // namespace

page_store::page_store(Relation index, const index_shape &shape)
    : index_(index), shape_(shape), layout_(shape.layout), id_limit_(0), record_size_(shape.layout.record_size),
      vector_offset_(shape.layout.vector_offset), dims_(shape.layout.dims), m0_(shape.layout.m0),
      kernel_(shape.kind == metric::l2 ? distance::active.l2_squared : distance::active.inner_product),
      sign_(shape.kind == metric::l2 ? 1.0f : -1.0f) {
    BufferTag tag;
    std::memset(&tag, 0, sizeof tag);
    tag.rnode = index->rd_node;
    tag.forkNum = MAIN_FORKNUM;
    static_assert(sizeof tag >= sizeof tag_rel_, "buffer tag layout");
    std::memcpy(tag_rel_, &tag, sizeof tag_rel_);
}

bool page_store::valid_id(std::uint32_t id) {
    if (id < id_limit_)
        return true;
    if (id == invalid_id)
        return false;
    id_limit_ = read_meta_header(index_).high_water;
    return id < id_limit_;
}

float page_store::distance(const float *a, const float *b) const {
    if (shape_.kind == metric::l2)
        return distance::l2_squared(a, b, layout_.dims);
    return -distance::inner_product(a, b, layout_.dims);
}

float page_store::distance_split(const float *q, const char *p1, std::uint32_t n1, const char *p2,
                                 std::uint32_t n2) const {
    const float *a = reinterpret_cast<const float *>(p1);
    const float *b = reinterpret_cast<const float *>(p2);
    if (shape_.kind == metric::l2)
        return distance::l2_squared(q, a, n1) + distance::l2_squared(q + n1, b, n2);
    return -(distance::inner_product(q, a, n1) + distance::inner_product(q + n1, b, n2));
}

// The read path's general case: a locked read (or an optimistic one whose record header
// straddles two pages, or whose buffers were not remembered).
bool page_store::visit_read(std::uint32_t id, const float *q, float *dist, element_info *info) {
    if (!valid_id(id))
        return false;
    if ((++visits_ & 255u) == 0)
        pg::check_for_interrupts();
    stream_read r(index_, layout_.record_position(id), layout_.record_size, optimistic_);
    // Copied once into locals: an optimistic read's bytes may change under us.
    std::uint8_t state = static_cast<std::uint8_t>(r.piece(0)[0]);
    if (state != state_live && state != state_deleted)
        return false;
    info->state = state;
    r.copy(record_layout::off_tid, 6, info->tid);
    // The vector, in one or two pieces (a record may straddle a page boundary).
    const std::uint32_t voff = layout_.vector_offset;
    const float *p1;
    std::uint32_t n1;
    const float *p2 = nullptr;
    if (r.pieces() == 1) {
        p1 = reinterpret_cast<const float *>(r.piece(0) + voff);
        n1 = layout_.dims;
    } else if (r.piece_len(0) <= voff) {
        p1 = reinterpret_cast<const float *>(r.piece(1) + (voff - r.piece_len(0)));
        n1 = layout_.dims;
    } else {
        p1 = reinterpret_cast<const float *>(r.piece(0) + voff);
        n1 = (r.piece_len(0) - voff) / 4;
        p2 = reinterpret_cast<const float *>(r.piece(1));
    }
    const std::uint32_t n2 = layout_.dims - n1;
    info->exact = true;
    *dist = n2 == 0 ? distance(q, p1)
                    : distance_split(q, reinterpret_cast<const char *>(p1), n1, reinterpret_cast<const char *>(p2), n2);
    // Torn bytes of an optimistic read can form a NaN, which would upset the search's ordering:
    // such a hint is dropped.
    return !(optimistic_ && std::isnan(*dist));
}

bool page_store::visit_confirmed(std::uint32_t id, const float *q, float *dist, element_info *info) {
    const bool was = optimistic_;
    optimistic_ = false;
    try {
        bool ok = visit(id, q, dist, info);
        optimistic_ = was;
        return ok;
    } catch (...) {
        optimistic_ = was;
        throw;
    }
}

bool page_store::locate_list(std::uint32_t id, int level, list_location *loc) {
    if (!valid_id(id))
        return false;
    std::uint64_t pos = layout_.record_position(id);
    if (level == 0) {
        loc->pos = pos + layout_.list0_offset;
        loc->format = list_format::level0(layout_);
        return true;
    }
    char bytes[record_layout::off_count0];
    {
        stream_read r(index_, pos, sizeof bytes);
        r.copy(0, sizeof bytes, bytes);
    }
    element_header h = decode_header(bytes);
    if ((h.state != state_live && h.state != state_deleted) || h.level < level || !valid_id(h.slab_id))
        return false;
    loc->pos = layout_.record_position(h.slab_id) + layout_.slab_list_offset(h.slab_index + static_cast<std::uint32_t>(level) - 1);
    loc->format = list_format::upper(layout_);
    return true;
}

int page_store::neighbors_read(std::uint32_t id, int level, std::uint32_t *out, bool optimistic) {
    if (level > 0)
        return optimistic ? upper_list_hint(id, level, out) : read_list(id, level, out);
    if (!valid_id(id))
        return 0;
    // The next-duplicate pointer sits just before the level-0 list: one read for both.
    constexpr std::uint32_t ring_bytes = record_layout::off_count0 - record_layout::off_next_dup;
    const list_format fmt = list_format::level0(layout_);
    char bytes[ring_bytes + 2 + 4 * 2 * max_m];
    {
        // Optimistically read edges are only followed: every id is checked (valid_id) when visited.
        stream_read r(index_, layout_.record_position(id) + record_layout::off_next_dup, ring_bytes + fmt.bytes,
                      optimistic);
        r.copy(0, ring_bytes + fmt.bytes, bytes);
    }
    std::uint32_t n = decode_list(fmt, bytes + ring_bytes, out);
    std::uint32_t next_dup;
    std::memcpy(&next_dup, bytes, 4);
    if (next_dup != invalid_id && next_dup != id)
        out[n++] = next_dup;
    if (optimistic) {
        // As in the inline path: ids beyond the high-water mark mean the bytes were not ours.
        std::uint32_t top = 0;
        for (std::uint32_t i = 0; i < n; i++)
            top = std::max(top, out[i]);
        if (top >= id_limit_ && !valid_id(top))
            return neighbors_read(id, level, out, false);
    }
    return static_cast<int>(n);
}

// An upper-level list read like the level-0 edges in optimistic mode: the element's header and
// then its slab's list, both in place when their buffers are still valid. A torn header could
// name any slab and list: the slab id is checked against the high-water mark and the list index
// against the slab's capacity, so the read stays inside the stream; the count is clamped and
// every id is checked again when visited.
int page_store::upper_list_hint(std::uint32_t id, int level, std::uint32_t *out) {
    if (!valid_id(id))
        return 0;
    char bytes[record_layout::off_count0];
    {
        stream_read r(index_, layout_.record_position(id), sizeof bytes, true);
        r.copy(0, sizeof bytes, bytes);
    }
    const element_header h = decode_header(bytes);
    const std::uint32_t index = h.slab_index + static_cast<std::uint32_t>(level) - 1;
    if ((h.state != state_live && h.state != state_deleted) || h.level < level || index >= layout_.lists_per_slab ||
        !valid_id(h.slab_id))
        return 0;
    const list_format fmt = list_format::upper(layout_);
    char list[4 + 4 * max_m];
    {
        stream_read r(index_, layout_.record_position(h.slab_id) + layout_.slab_list_offset(index), fmt.bytes, true);
        r.copy(0, fmt.bytes, list);
    }
    return static_cast<int>(decode_list(fmt, list, out));
}

int page_store::read_list(std::uint32_t id, int level, std::uint32_t *out) {
    list_location loc;
    if (!locate_list(id, level, &loc))
        return 0;
    char bytes[4 + 4 * 2 * max_m];
    {
        stream_read r(index_, loc.pos, loc.format.bytes);
        r.copy(0, loc.format.bytes, bytes);
    }
    return static_cast<int>(decode_list(loc.format, bytes, out));
}

std::uint8_t page_store::read_vector(std::uint32_t id, float *out) {
    if (!valid_id(id))
        return state_free;
    stream_read r(index_, layout_.record_position(id), layout_.record_size);
    std::uint8_t state = static_cast<std::uint8_t>(r.piece(0)[0]);
    if (state == state_live || state == state_deleted)
        r.copy(layout_.vector_offset, layout_.dims * 4, out);
    return state;
}

void page_store::ensure_pages(std::uint64_t end_pos, stream_write &w) {
    BlockNumber needed = block_of(end_pos - 1) + 1;
    index_cache &cache = cache_of(index_);
    if (needed <= cache.known_blocks)
        return;
    BlockNumber have = pg::call([&] { return RelationGetNumberOfBlocks(index_); });
    while (have < needed) {
        Buffer buf = pg::call([&] {
            LockRelationForExtension(index_, ExclusiveLock);
            Buffer b = ReadBufferExtended(index_, MAIN_FORKNUM, P_NEW, RBM_NORMAL, nullptr);
            LockBuffer(b, BUFFER_LOCK_EXCLUSIVE);
            UnlockRelationForExtension(index_, ExclusiveLock);
            return b;
        });
        try {
            w.add_new_block(buf);
        } catch (...) {
            UnlockReleaseBuffer(buf);
            throw;
        }
        have = BufferGetBlockNumber(buf) + 1;
    }
    cache.known_blocks = have;
}

std::uint32_t page_store::allocate_slot(stream_write &w, meta_page *meta) {
    std::uint32_t id = invalid_id;
    if (meta->free_head != invalid_id) {
        // Pop the free chain (the meta page, locked by us, comes first in block order).
        std::uint32_t head = meta->free_head;
        char bytes[free_chain_offset + 4];
        if (head < meta->high_water) {
            stream_read r(index_, layout_.record_position(head), sizeof bytes);
            r.copy(0, sizeof bytes, bytes);
        } else {
            bytes[0] = static_cast<char>(state_live);  // not a valid chain entry
        }
        if (static_cast<std::uint8_t>(bytes[0]) == state_free) {
            std::uint32_t next;
            std::memcpy(&next, bytes + free_chain_offset, 4);
            meta->free_head = next;
            meta->free_count = meta->free_count > 0 ? meta->free_count - 1 : 0;
            id = head;
        } else {
            // A chain that does not lead to a free slot is dropped rather than followed.
            meta->free_head = invalid_id;
            meta->free_count = 0;
        }
    }
    if (id == invalid_id) {
        if (meta->high_water >= invalid_id - 1)
            throw meridian::error(sqlstate::program_limit_exceeded, "hnsw index has too many elements");
        id = meta->high_water++;
        ensure_pages(layout_.record_position(id) + layout_.record_size, w);
    }
    w.add_range(layout_.record_position(id), layout_.record_size);
    if (id >= id_limit_)
        id_limit_ = meta->high_water;
    return id;
}

page_store::allocation page_store::allocate(const new_element &e) {
    allocation a{invalid_id, invalid_id, 0, invalid_id, -1, false};
    if (e.level > 0) {
        stream_write w(index_);
        w.add_meta();
        w.begin();
        meta_page *meta = w.meta();
        std::uint32_t need = static_cast<std::uint32_t>(e.level);
        if (meta->slab_id != invalid_id && meta->slab_used + need <= layout_.lists_per_slab) {
            a.slab_id = meta->slab_id;
            a.slab_index = meta->slab_used;
            meta->slab_used += need;
        } else {
            std::uint32_t sid = allocate_slot(w, meta);
            std::vector<char> slab(layout_.record_size);
            encode_empty_slab(layout_, slab.data());
            w.write(layout_.record_position(sid), layout_.record_size, slab.data());
            meta->slab_id = sid;
            meta->slab_used = need;
            a.slab_id = sid;
            a.slab_index = 0;
        }
        w.commit();
    }

    stream_write w(index_);
    w.add_meta();
    w.begin();
    meta_page *meta = w.meta();
    a.id = allocate_slot(w, meta);
    a.ep = meta->entry_point;
    a.ep_level = meta->entry_level;
    if (a.ep == invalid_id) {
        // Empty graph: the element and the entry point that names it appear in one WAL record.
        std::vector<char> rec(layout_.record_size);
        encode_element(layout_, live_header(a, e), nullptr, 0, e.vector, rec.data());
        w.write(layout_.record_position(a.id), layout_.record_size, rec.data());
        meta->entry_point = a.id;
        meta->entry_level = e.level;
        a.published = true;
    }
    w.commit();
    return a;
}

void page_store::write_list(stream_write &w, const list_location &loc, const std::vector<std::uint32_t> &ids) {
    char bytes[4 + 4 * 2 * max_m];
    encode_list(loc.format, ids.data(), static_cast<std::uint32_t>(ids.size()), bytes);
    w.write(loc.pos, loc.format.bytes, bytes);
}

bool page_store::list_equals(const stream_write &w, const list_location &loc,
                             const std::vector<std::uint32_t> &ids) const {
    char bytes[4 + 4 * 2 * max_m];
    std::uint32_t current[2 * max_m];
    w.read(loc.pos, loc.format.bytes, bytes);
    std::uint32_t n = decode_list(loc.format, bytes, current);
    return n == ids.size() && std::equal(ids.begin(), ids.end(), current);
}

void page_store::write_upper_lists(const allocation &a, int level,
                                   const std::vector<std::vector<std::uint32_t>> &lists) {
    if (level <= 0)
        return;
    std::uint64_t pos = layout_.record_position(a.slab_id) + layout_.slab_list_offset(a.slab_index);
    std::uint32_t len = layout_.upper_list_size * static_cast<std::uint32_t>(level);
    stream_write w(index_);
    w.add_range(pos, len);
    w.begin();
    for (int l = 1; l <= level; l++) {
        list_location loc{pos + layout_.upper_list_size * static_cast<std::uint32_t>(l - 1), list_format::upper(layout_)};
        static const std::vector<std::uint32_t> empty;
        write_list(w, loc, static_cast<std::size_t>(l - 1) < lists.size() ? lists[static_cast<std::size_t>(l - 1)] : empty);
    }
    w.commit();
}

bool page_store::publish(const allocation &a, const new_element &e, const std::vector<std::uint32_t> &list0,
                         const backlink *first) {
    list_location loc{};
    if (first && !locate_list(first->owner, first->level, &loc))
        return false;
    std::uint64_t pos = layout_.record_position(a.id);
    stream_write w(index_);
    w.add_range(pos, layout_.record_size);
    if (first)
        w.add_range(loc.pos, loc.format.bytes);
    w.begin();
    if (first) {
        if (!list_equals(w, loc, first->expected))
            return false;
        write_list(w, loc, first->replacement);
    }
    std::vector<char> rec(layout_.record_size);
    encode_element(layout_, live_header(a, e), list0.data(), static_cast<std::uint32_t>(list0.size()), e.vector,
                   rec.data());
    w.write(pos, layout_.record_size, rec.data());
    w.commit();
    return true;
}

bool page_store::publish_duplicate(const allocation &a, const new_element &e, const std::vector<std::uint32_t> &list0,
                                   std::uint32_t twin) {
    if (!valid_id(twin))
        return false;
    std::uint64_t pos = layout_.record_position(a.id);
    std::uint64_t twin_pos = layout_.record_position(twin);
    stream_write w(index_);
    w.add_range(pos, layout_.record_size);
    w.add_range(twin_pos, header_bytes);
    w.begin();
    char bytes[header_bytes];
    w.read(twin_pos, header_bytes, bytes);
    element_header t = decode_header(bytes);
    if (t.state != state_live)
        return false;
    // Splice the new element into the ring right after its twin.
    element_header h = live_header(a, e);
    h.next_dup = t.next_dup == invalid_id ? twin : t.next_dup;
    std::vector<char> rec(layout_.record_size);
    encode_element(layout_, h, list0.data(), static_cast<std::uint32_t>(list0.size()), e.vector, rec.data());
    w.write(pos, layout_.record_size, rec.data());
    w.write(twin_pos + record_layout::off_next_dup, 4, &a.id);
    w.commit();
    return true;
}

bool page_store::replace_next_dup(std::uint32_t id, std::uint32_t expected, std::uint32_t replacement) {
    std::uint64_t at = layout_.record_position(id) + record_layout::off_next_dup;
    stream_write w(index_);
    w.add_range(at, 4);
    w.begin();
    std::uint32_t current;
    w.read(at, 4, &current);
    if (current != expected)
        return false;
    w.write(at, 4, &replacement);
    w.commit();
    return true;
}

bool page_store::replace_list(const backlink &bl) {
    list_location loc;
    if (!locate_list(bl.owner, bl.level, &loc))
        return false;
    stream_write w(index_);
    w.add_range(loc.pos, loc.format.bytes);
    w.begin();
    if (!list_equals(w, loc, bl.expected))
        return false;
    write_list(w, loc, bl.replacement);
    w.commit();
    return true;
}

bool page_store::entry_point(std::uint32_t *id, int *level) {
    meta_page m = read_meta_header(index_);
    *id = m.entry_point;
    *level = m.entry_level;
    return m.entry_point != invalid_id;
}

void page_store::raise_entry_point(std::uint32_t id, int level) {
    stream_write w(index_);
    w.add_meta();
    w.begin();
    meta_page *meta = w.meta();
    if (meta->entry_point == invalid_id || level > meta->entry_level) {
        meta->entry_point = id;
        meta->entry_level = level;
        w.commit();
    }
}

}  // namespace meridian::hnsw
