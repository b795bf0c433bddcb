// The replicator's side of the streaming replication sub-protocol (src/core/walstream).
#include "core/error.hpp"
#include "core/walstream.hpp"

#include <gtest/gtest.h>

using namespace meridian;
using namespace meridian::walstream;

TEST(WalStream, ParsesXLogDataAndKeepalive) {
    std::vector<std::uint8_t> w = {'w', 0, 0, 0, 1, 0, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 0, 0x20,
                                   0, 0, 0, 0, 0, 0, 0x01, 0x02, 0xAA, 0xBB};
    server_message m = parse_server_message(w.data(), w.size());
    EXPECT_EQ(m.type, server_message::kind::xlog_data);
    EXPECT_EQ(m.wal_start, 0x100000010ULL);
    EXPECT_EQ(m.wal_end, 0x100000020ULL);
    EXPECT_EQ(m.send_time, 0x0102);
    ASSERT_EQ(m.payload_size, 2u);
    EXPECT_EQ(m.payload[0], 0xAA);

    std::vector<std::uint8_t> k = {'k', 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 7, 1};
    m = parse_server_message(k.data(), k.size());
    EXPECT_EQ(m.type, server_message::kind::keepalive);
    EXPECT_EQ(m.wal_end, 0x1234u);
    EXPECT_EQ(m.send_time, 7);
    EXPECT_TRUE(m.reply_requested);
}

TEST(WalStream, RefusesMalformedMessages) {
    std::vector<std::uint8_t> shortw = {'w', 0, 0, 0};
    EXPECT_THROW(parse_server_message(shortw.data(), shortw.size()), meridian::error);
    std::vector<std::uint8_t> longk(19, 0);
    longk[0] = 'k';
    EXPECT_THROW(parse_server_message(longk.data(), longk.size()), meridian::error);
    std::vector<std::uint8_t> other = {'x', 1, 2};
    EXPECT_THROW(parse_server_message(other.data(), other.size()), meridian::error);
    EXPECT_THROW(parse_server_message(nullptr, 0), meridian::error);
}

TEST(WalStream, EncodesStatusUpdate) {
    auto r = status_update(0x1, 0x0000000200000003ULL, 0x4, -1, true);
    ASSERT_EQ(r.size(), 34u);
    EXPECT_EQ(r[0], 'r');
    EXPECT_EQ(r[8], 1);
    EXPECT_EQ(r[12], 2);
    EXPECT_EQ(r[16], 3);
    EXPECT_EQ(r[24], 4);
    for (int i = 25; i < 33; i++)
        EXPECT_EQ(r[i], 0xFF);
    EXPECT_EQ(r[33], 1);
}

TEST(WalStream, LsnTextRoundTrip) {
    EXPECT_EQ(lsn_to_string(0x16B374D848ULL), "16/B374D848");
    EXPECT_EQ(lsn_from_string("16/B374D848"), 0x16B374D848ULL);
    EXPECT_EQ(lsn_from_string("0/0"), 0u);
    EXPECT_EQ(lsn_from_string("ffffffff/FFFFFFFF"), ~0ULL);
    for (const char *bad : {"", "/", "1/", "/1", "1/2/3", "g/1", "123456789/1"})
        EXPECT_THROW(lsn_from_string(bad), meridian::error) << bad;
}

TEST(WalStream, SlotAndOriginNames) {
    EXPECT_EQ(slot_name("us-east"), "us_east");
    EXPECT_EQ(origin_name("us-east"), "meridian_us-east");
}
