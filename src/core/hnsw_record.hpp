// Encoding and decoding of HNSW element records, neighbor lists and stream positions
// (layout in hnsw_layout.hpp). Pure C++: the page store and the build writer both use it.
#pragma once

#include "core/hnsw_layout.hpp"

#include <cstdint>

namespace meridian::hnsw {

struct element_header {
    std::uint8_t state = state_free;
    std::uint8_t level = 0;
    std::uint8_t tid[6] = {};
    std::uint32_t slab_id = invalid_id;   // upper-level lists (levels 1..level)
    std::uint16_t slab_index = 0;
    std::uint32_t next_dup = invalid_id;  // ring of elements with identical vectors
};

// A whole element record: header, level-0 list (count0 ids, clamped to m0) and vector.
void encode_element(const record_layout &l, const element_header &h, const std::uint32_t *list0,
                    std::uint32_t count0, const float *vector, char *out);
// The header from the first record_layout::off_count0 bytes of a record.
constexpr std::uint32_t header_bytes = record_layout::off_count0;
element_header decode_header(const char *bytes);
// A slab record with every list empty.
void encode_empty_slab(const record_layout &l, char *out);

// A neighbor list as stored: a count (uint16 at level 0, uint32 in slabs) then `capacity` ids.
struct list_format {
    std::uint32_t bytes;
    std::uint32_t capacity;
    bool wide_count;
    static list_format level0(const record_layout &l) { return {l.list0_bytes(), l.m0, false}; }
    static list_format upper(const record_layout &l) { return {l.upper_list_size, l.m, true}; }
};
// Writes fmt.bytes bytes; ids beyond the capacity are dropped, unused entries are zero.
void encode_list(const list_format &fmt, const std::uint32_t *ids, std::uint32_t count, char *out);
// Returns the count (clamped to the capacity) and copies the ids.
std::uint32_t decode_list(const list_format &fmt, const char *in, std::uint32_t *out);

// Where a byte of the element stream lives: stream page `page` (block first_stream_block + page),
// at `offset` in its content area of `payload` bytes.
struct stream_location {
    std::uint64_t page;
    std::uint32_t offset;
};
inline stream_location locate(std::uint64_t pos, std::uint32_t payload) {
    return {pos / payload, static_cast<std::uint32_t>(pos % payload)};
}
// Bytes of [pos, pos + len) that lie in the first page (the rest, if any, starts the next page).
inline std::uint32_t first_piece(std::uint64_t pos, std::uint32_t len, std::uint32_t payload) {
    std::uint32_t room = payload - static_cast<std::uint32_t>(pos % payload);
    return len < room ? len : room;
}

}  // namespace meridian::hnsw
