// The small pure helpers of the protocol codec used by the SQL tools and the output plugin:
// type tag names and LSN text.
#include "core/protocol.hpp"

#include <gtest/gtest.h>

using namespace meridian::protocol;

TEST(ProtocolHelpers, TypeTagNamesRoundTrip) {
    for (unsigned i = 1; i <= max_type_tag; i++) {
        auto t = static_cast<type_tag>(i);
        std::string n = type_tag_name(t);
        ASSERT_FALSE(n.empty()) << i;
        ASSERT_EQ(n.find('.'), std::string::npos) << n;  // never mistaken for a qualified type name
        auto back = type_tag_from_name(n);
        ASSERT_TRUE(back.has_value()) << n;
        EXPECT_EQ(*back, t);
    }
    EXPECT_STREQ(type_tag_name(type_tag::named), "");
    EXPECT_STREQ(type_tag_name(type_tag::vector), "vector");
    EXPECT_STREQ(type_tag_name(type_tag::timestamptz), "timestamptz");
    EXPECT_STREQ(type_tag_name(static_cast<type_tag>(0x12)), "");
    EXPECT_FALSE(type_tag_from_name("").has_value());
    EXPECT_FALSE(type_tag_from_name("integer").has_value());
    EXPECT_FALSE(type_tag_from_name("pg_catalog.int4").has_value());
    EXPECT_FALSE(type_tag_from_name("VECTOR").has_value());
}

TEST(ProtocolHelpers, LsnText) {
    EXPECT_EQ(format_lsn(0x16B3748), "0/16B3748");
    EXPECT_EQ(format_lsn(0x1234567890ABCDEFull), "12345678/90ABCDEF");
    EXPECT_EQ(format_lsn(0), "0/0");
    EXPECT_EQ(parse_lsn("0/16B3748"), std::optional<std::uint64_t>(0x16B3748));
    EXPECT_EQ(parse_lsn("12345678/90abcdef"), std::optional<std::uint64_t>(0x1234567890ABCDEFull));
    EXPECT_EQ(parse_lsn("FFFFFFFF/FFFFFFFF"), std::optional<std::uint64_t>(~0ull));
    for (const char *bad : {"", "/", "0/", "/0", "0", "123456789/0", "0/123456789", "0/1g", " 0/1", "0/1 ", "0//1", "-1/0"})
        EXPECT_FALSE(parse_lsn(bad).has_value()) << bad;
    for (std::uint64_t v : {1ull, 0xFFFFFFFFull, 0x100000000ull, 0xDEADBEEF00000001ull})
        EXPECT_EQ(parse_lsn(format_lsn(v)), std::optional<std::uint64_t>(v));
}

TEST(ProtocolPeek, ReadsTheFixedFieldsOnly) {
    using namespace meridian::protocol;
    transaction t;
    t.region = "us-east";
    t.xid = 7;
    t.commit_lsn = 0x100;
    t.end_lsn = 0x180;
    t.commit_time = 42;
    row_change c;
    c.op = operation::remove;
    c.schema = "public";
    c.table = "items";
    c.key[0] = 1;
    t.changes.push_back(c);
    auto key = meridian::signing::secret_key::generate();
    auto bytes = encode(t, key);
    transaction p = peek_transaction(byte_view(bytes));
    EXPECT_EQ(p.region, "us-east");
    EXPECT_EQ(p.xid, 7u);
    EXPECT_EQ(p.commit_lsn, 0x100u);
    EXPECT_EQ(p.end_lsn, 0x180u);
    EXPECT_EQ(p.commit_time, 42);
    EXPECT_TRUE(p.changes.empty());
    bytes.resize(20);
    EXPECT_THROW(peek_transaction(byte_view(bytes)), protocol_error);
    heartbeat h{"us-east", 0x200, 5};
    auto hb = encode(h, key);
    EXPECT_THROW(peek_transaction(byte_view(hb)), protocol_error);
}
