// Byte layout of HNSW element records in the index's element stream (docs/architecture.md).
// Pure arithmetic: the PostgreSQL side maps stream bytes to pages.
//
// Element record (record_size bytes, a multiple of 4):
//   [0]      state (element_state)          [1]      level
//   [2..8)   heap TID (6 bytes, opaque here)
//   [8..12)  slab id holding the upper-level lists   [12..14) first list index in that slab
//   [14..18) next duplicate: the elements holding identical vectors form a ring (invalid_id: none)
//   [18..20) level-0 neighbor count
//   [20..20+4*m0)  level-0 neighbor ids (uint32)
//   then dims float32: the vector (unit length for cosine)
// Slab record: [0] state = slab, [1..4) unused, then lists_per_slab upper lists of
//   (uint32 count, m uint32 ids); an element of level L uses L consecutive lists for levels 1..L.
#pragma once

#include <cstdint>

namespace meridian::hnsw {

enum element_state : std::uint8_t {
    state_free = 0,     // unused slot (never written, or freed by VACUUM)
    state_live = 1,     // a graph element whose heap row may be visible
    state_deleted = 2,  // heap row is dead; still traversed until VACUUM unlinks and frees it
    state_slab = 3,     // holds upper-level neighbor lists
};

constexpr std::uint32_t invalid_id = 0xFFFFFFFFu;
constexpr int max_level_cap = 16;

struct record_layout {
    std::uint32_t dims = 0;
    std::uint32_t m = 0;             // max neighbors per upper level
    std::uint32_t m0 = 0;            // max neighbors at level 0 (2m)
    std::uint32_t record_size = 0;   // bytes per record
    std::uint32_t list0_offset = 0;  // offset of the level-0 count (uint16) followed by ids
    std::uint32_t vector_offset = 0;
    std::uint32_t upper_list_size = 0;  // 4 + 4m
    std::uint32_t lists_per_slab = 0;
    int max_level = 0;               // levels are capped so an element's lists fit one slab

    static constexpr std::uint32_t off_state = 0;
    static constexpr std::uint32_t off_level = 1;
    static constexpr std::uint32_t off_tid = 2;
    static constexpr std::uint32_t off_slab_id = 8;
    static constexpr std::uint32_t off_slab_index = 12;
    static constexpr std::uint32_t off_next_dup = 14;
    static constexpr std::uint32_t off_count0 = 18;
    static constexpr std::uint32_t off_ids0 = 20;
    static constexpr std::uint32_t slab_lists_offset = 4;

    static record_layout make(std::uint32_t dims, std::uint32_t m) {
        record_layout l;
        l.dims = dims;
        l.m = m;
        l.m0 = 2 * m;
        l.list0_offset = off_count0;
        l.vector_offset = off_ids0 + 4 * l.m0;
        l.record_size = l.vector_offset + 4 * dims;
        l.upper_list_size = 4 + 4 * m;
        l.lists_per_slab = (l.record_size - slab_lists_offset) / l.upper_list_size;
        int cap = static_cast<int>(l.lists_per_slab);
        l.max_level = cap < max_level_cap ? cap : max_level_cap;
        return l;
    }

    // Bytes of the level-0 list region (count + ids), starting at list0_offset.
    std::uint32_t list0_bytes() const { return 2 + 4 * m0; }
    // Offset, inside slab record `slab`, of upper list `index`.
    std::uint32_t slab_list_offset(std::uint32_t index) const { return slab_lists_offset + index * upper_list_size; }
    // Byte position of a record in the element stream.
    std::uint64_t record_position(std::uint32_t id) const { return static_cast<std::uint64_t>(id) * record_size; }
};

}  // namespace meridian::hnsw
