// The partition judgement of bounded reads (src/core/partition).
#include "core/partition.hpp"

#include <gtest/gtest.h>

using meridian::partition::judge;
using meridian::partition::view;

TEST(Partition, CutOffWhenNobodyElseHearsIt) {
    // Three regions, quorum 2: ap-south heard neither here nor by eu-west.
    auto j = judge(false, {view::does_not_hear}, 2);
    EXPECT_EQ(j.hearing, 1);
    EXPECT_TRUE(j.cut_off);
}

TEST(Partition, OneStreamStoppedIsNotAPartition) {
    // Not heard here, but eu-west still hears it: it can still gather a quorum.
    auto j = judge(false, {view::hears}, 2);
    EXPECT_EQ(j.hearing, 2);
    EXPECT_FALSE(j.cut_off);
}

TEST(Partition, DoubtCountsAsHearing) {
    // eu-west's word is unknown (unreachable from here, or too old): assume it hears the peer.
    EXPECT_FALSE(judge(false, {view::unknown}, 2).cut_off);
    // The minority's view of a majority peer: its other peer is unreachable, so unknown.
    EXPECT_FALSE(judge(false, {view::unknown}, 2).cut_off);
}

TEST(Partition, HeardHereCountsAsOneRegion) {
    // Three regions, quorum 2: this region hears it, so with itself it makes a quorum.
    EXPECT_FALSE(judge(true, {view::does_not_hear}, 2).cut_off);
    // Four regions, quorum 3: this region and the peer alone are not a quorum (bounded reads
    // still wait for it here, since it is not unavailable here).
    auto j = judge(true, {view::does_not_hear, view::does_not_hear}, 3);
    EXPECT_EQ(j.hearing, 2);
    EXPECT_TRUE(j.cut_off);
}

TEST(Partition, QuorumOfOneNeverCutsOff) {
    EXPECT_FALSE(judge(false, {view::does_not_hear, view::does_not_hear}, 1).cut_off);
}

TEST(Partition, FiveRegions) {
    // Quorum 3 of 5: heard by itself and one other (of the three others) is cut off; two others suffice.
    EXPECT_TRUE(judge(false, {view::hears, view::does_not_hear, view::does_not_hear}, 3).cut_off);
    EXPECT_FALSE(judge(false, {view::hears, view::hears, view::does_not_hear}, 3).cut_off);
}
