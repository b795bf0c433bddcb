// Last-writer-wins ordering of row versions (src/core/lww).
#include "core/lww.hpp"

#include <gtest/gtest.h>

using meridian::lww::compare;
using meridian::lww::incoming_wins;
using meridian::lww::region_of_origin;
using meridian::lww::version;

TEST(Lww, LaterTimestampWins) {
    version stored{true, 100, "us-east"};
    EXPECT_TRUE(incoming_wins(stored, {true, 101, "ap-south"}));
    EXPECT_FALSE(incoming_wins(stored, {true, 99, "zz"}));
}

TEST(Lww, EqualTimestampsBreakTiesByRegionBytewise) {
    version stored{true, 100, "eu-west"};
    EXPECT_TRUE(incoming_wins(stored, {true, 100, "us-east"}));
    EXPECT_FALSE(incoming_wins(stored, {true, 100, "ap-south"}));
    // Bytewise: a byte >= 0x80 sorts after ASCII (unsigned comparison).
    EXPECT_GT(compare({true, 1, "\xc3\xa9"}, {true, 1, "z"}), 0);
    EXPECT_LT(compare({true, 1, "eu"}, {true, 1, "eu-west"}), 0);
}

TEST(Lww, SameRegionAlwaysWins) {
    // The same region's stream is in its commit order: an older clock reading still replaces.
    version stored{true, 500, "us-east"};
    EXPECT_TRUE(incoming_wins(stored, {true, 400, "us-east"}));
    EXPECT_TRUE(incoming_wins(stored, {true, 500, "us-east"}));
}

TEST(Lww, UnknownIsOldest) {
    version unknown{};
    EXPECT_TRUE(incoming_wins(unknown, {true, -1000000, "a"}));
    EXPECT_LT(compare(unknown, {true, INT64_MIN, ""}), 0);
    EXPECT_EQ(compare(unknown, unknown), 0);
}

TEST(Lww, IdenticalVersionDoesNotWinAcrossRegions) {
    // Equal (time, region) means the same region: the same-region rule applies.
    EXPECT_TRUE(incoming_wins({true, 7, "x"}, {true, 7, "x"}));
    EXPECT_EQ(compare({true, 7, "x"}, {true, 7, "x"}), 0);
}

TEST(Lww, OrderIsAntisymmetric) {
    version a{true, 10, "eu-west"}, b{true, 10, "us-east"};
    EXPECT_TRUE(incoming_wins(a, b));
    EXPECT_FALSE(incoming_wins(b, a));
}

TEST(Lww, RegionOfOrigin) {
    EXPECT_EQ(region_of_origin("meridian_us-east"), "us-east");
    EXPECT_EQ(region_of_origin("meridian_"), "");
    EXPECT_EQ(region_of_origin("pg_16384"), "");
    EXPECT_EQ(region_of_origin(""), "");
}
