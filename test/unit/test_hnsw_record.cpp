// Encoding of HNSW element records and neighbor lists, and records laid across page boundaries.
#include "core/hnsw_record.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

using namespace meridian::hnsw;

TEST(HnswRecord, ElementRoundTrip) {
    auto l = record_layout::make(5, 3);
    element_header h;
    h.state = state_live;
    h.level = 2;
    for (int i = 0; i < 6; i++)
        h.tid[i] = static_cast<std::uint8_t>(10 + i);
    h.slab_id = 77;
    h.slab_index = 4;
    h.next_dup = 12345;
    std::vector<std::uint32_t> list0 = {9, 8, 7, 6};
    std::vector<float> v = {1.5f, -2.0f, 0.0f, 3.25f, 1e-3f};
    std::vector<char> rec(l.record_size, 'x');
    encode_element(l, h, list0.data(), static_cast<std::uint32_t>(list0.size()), v.data(), rec.data());

    element_header d = decode_header(rec.data());
    EXPECT_EQ(d.state, state_live);
    EXPECT_EQ(d.level, 2);
    EXPECT_EQ(0, std::memcmp(d.tid, h.tid, 6));
    EXPECT_EQ(d.slab_id, 77u);
    EXPECT_EQ(d.slab_index, 4);
    EXPECT_EQ(d.next_dup, 12345u);
    std::uint32_t out[6] = {};
    ASSERT_EQ(decode_list(list_format::level0(l), rec.data() + l.list0_offset, out), 4u);
    EXPECT_EQ(std::vector<std::uint32_t>(out, out + 4), list0);
    EXPECT_EQ(0, std::memcmp(rec.data() + l.vector_offset, v.data(), v.size() * sizeof(float)));
    // Unused list entries are zero, so equal lists encode to equal bytes.
    EXPECT_EQ(out[4], 0u);
}

TEST(HnswRecord, ListsClampToCapacity) {
    auto l = record_layout::make(4, 2);
    std::vector<std::uint32_t> many(10);
    std::iota(many.begin(), many.end(), 100);
    for (auto fmt : {list_format::level0(l), list_format::upper(l)}) {
        std::vector<char> bytes(fmt.bytes);
        encode_list(fmt, many.data(), static_cast<std::uint32_t>(many.size()), bytes.data());
        std::vector<std::uint32_t> out(many.size());
        EXPECT_EQ(decode_list(fmt, bytes.data(), out.data()), fmt.capacity);
        EXPECT_EQ(out[0], 100u);
        EXPECT_EQ(out[fmt.capacity - 1], 100u + fmt.capacity - 1);
    }
    // A corrupt count larger than the capacity is clamped on decode.
    auto fmt = list_format::upper(l);
    std::vector<char> bytes(fmt.bytes, 0);
    std::uint32_t bogus = 1000;
    std::memcpy(bytes.data(), &bogus, 4);
    std::vector<std::uint32_t> out(fmt.capacity);
    EXPECT_EQ(decode_list(fmt, bytes.data(), out.data()), fmt.capacity);
}

TEST(HnswRecord, EmptySlab) {
    auto l = record_layout::make(8, 4);
    std::vector<char> rec(l.record_size, 'x');
    encode_empty_slab(l, rec.data());
    EXPECT_EQ(decode_header(rec.data()).state, state_slab);
    std::uint32_t out[4];
    for (std::uint32_t i = 0; i < l.lists_per_slab; i++)
        EXPECT_EQ(decode_list(list_format::upper(l), rec.data() + l.slab_list_offset(i), out), 0u);
}

TEST(HnswRecord, StreamAcrossPages) {
    // 784 dims with m = 16 is the benchmark's shape; 8160 is the payload of an 8 kB page.
    const std::uint32_t payload = 8160;
    auto l = record_layout::make(784, 16);
    const std::uint32_t n = 40;
    std::vector<std::vector<char>> pages((static_cast<std::uint64_t>(n) * l.record_size) / payload + 1,
                                         std::vector<char>(payload, 0));
    auto write = [&](std::uint64_t pos, const char *src, std::uint32_t len) {
        while (len > 0) {
            auto loc = locate(pos, payload);
            std::uint32_t k = first_piece(pos, len, payload);
            std::memcpy(pages[loc.page].data() + loc.offset, src, k);
            pos += k;
            src += k;
            len -= k;
        }
    };
    auto read = [&](std::uint64_t pos, char *dst, std::uint32_t len) {
        while (len > 0) {
            auto loc = locate(pos, payload);
            std::uint32_t k = first_piece(pos, len, payload);
            std::memcpy(dst, pages[loc.page].data() + loc.offset, k);
            pos += k;
            dst += k;
            len -= k;
        }
    };
    int straddling = 0;
    std::vector<char> rec(l.record_size), back(l.record_size);
    for (std::uint32_t id = 0; id < n; id++) {
        element_header h;
        h.state = state_live;
        h.level = static_cast<std::uint8_t>(id % 3);
        std::memcpy(h.tid, &id, 4);
        std::vector<std::uint32_t> list0 = {id + 1, id + 2};
        std::vector<float> v(784);
        for (std::uint32_t i = 0; i < 784; i++)
            v[i] = static_cast<float>(id * 1000 + i);
        encode_element(l, h, list0.data(), 2, v.data(), rec.data());
        write(l.record_position(id), rec.data(), l.record_size);
        straddling += first_piece(l.record_position(id), l.record_size, payload) < l.record_size;
    }
    EXPECT_GT(straddling, 10);  // about 40% of records cross a page boundary
    for (std::uint32_t id = 0; id < n; id++) {
        read(l.record_position(id), back.data(), l.record_size);
        element_header h = decode_header(back.data());
        std::uint32_t tid;
        std::memcpy(&tid, h.tid, 4);
        EXPECT_EQ(tid, id);
        float first, last;
        std::memcpy(&first, back.data() + l.vector_offset, 4);
        std::memcpy(&last, back.data() + l.vector_offset + 783 * 4, 4);
        EXPECT_EQ(first, static_cast<float>(id * 1000));
        EXPECT_EQ(last, static_cast<float>(id * 1000 + 783));
    }
    // Records are 4-byte aligned in the stream, so a split never cuts a float.
    EXPECT_EQ(l.record_size % 4, 0u);
    EXPECT_EQ(payload % 4, 0u);
}
