#include "core/hnsw_record.hpp"

#include <cstring>

namespace meridian::hnsw {

void encode_element(const record_layout &l, const element_header &h, const std::uint32_t *list0,
                    std::uint32_t count0, const float *vector, char *out) {
    std::memset(out, 0, l.record_size);
    out[record_layout::off_state] = static_cast<char>(h.state);
    out[record_layout::off_level] = static_cast<char>(h.level);
    std::memcpy(out + record_layout::off_tid, h.tid, 6);
    std::memcpy(out + record_layout::off_slab_id, &h.slab_id, 4);
    std::memcpy(out + record_layout::off_slab_index, &h.slab_index, 2);
    std::memcpy(out + record_layout::off_next_dup, &h.next_dup, 4);
    encode_list(list_format::level0(l), list0, count0, out + l.list0_offset);
    std::memcpy(out + l.vector_offset, vector, static_cast<std::size_t>(l.dims) * sizeof(float));
}

element_header decode_header(const char *bytes) {
    element_header h;
    h.state = static_cast<std::uint8_t>(bytes[record_layout::off_state]);
    h.level = static_cast<std::uint8_t>(bytes[record_layout::off_level]);
    std::memcpy(h.tid, bytes + record_layout::off_tid, 6);
    std::memcpy(&h.slab_id, bytes + record_layout::off_slab_id, 4);
    std::memcpy(&h.slab_index, bytes + record_layout::off_slab_index, 2);
    std::memcpy(&h.next_dup, bytes + record_layout::off_next_dup, 4);
    return h;
}

void encode_empty_slab(const record_layout &l, char *out) {
    std::memset(out, 0, l.record_size);
    out[record_layout::off_state] = static_cast<char>(state_slab);
}

void encode_list(const list_format &fmt, const std::uint32_t *ids, std::uint32_t count, char *out) {
    std::memset(out, 0, fmt.bytes);
    if (count > fmt.capacity)
        count = fmt.capacity;
    std::uint32_t header = fmt.wide_count ? 4 : 2;
    if (fmt.wide_count) {
        std::memcpy(out, &count, 4);
    } else {
        std::uint16_t c = static_cast<std::uint16_t>(count);
        std::memcpy(out, &c, 2);
    }
    if (count > 0)
        std::memcpy(out + header, ids, count * sizeof(std::uint32_t));
}

std::uint32_t decode_list(const list_format &fmt, const char *in, std::uint32_t *out) {
    std::uint32_t count;
    std::uint32_t header;
    if (fmt.wide_count) {
        std::memcpy(&count, in, 4);
        header = 4;
    } else {
        std::uint16_t c;
        std::memcpy(&c, in, 2);
        count = c;
        header = 2;
    }
    if (count > fmt.capacity)
        count = fmt.capacity;
    if (count > 0)
        std::memcpy(out, in + header, count * sizeof(std::uint32_t));
    return count;
}

}  // namespace meridian::hnsw
