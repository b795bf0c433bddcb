// Clock offset bounds for staleness watermarks (src/core/clock_bound).
#include "core/clock_bound.hpp"

#include <gtest/gtest.h>

using meridian::clockbound::offset_bound;

TEST(ClockBound, NoSampleNoBound) {
    offset_bound b;
    EXPECT_FALSE(b.upper(1000).has_value());
    EXPECT_FALSE(b.to_local_lower(5000, 1000).has_value());
}

TEST(ClockBound, OneSampleBoundsTheOffsetFromAbove) {
    // The peer's clock is 30 ms ahead; the question took 20 ms to arrive.
    offset_bound b(0.0);
    const std::int64_t sent = 1'000'000, offset = 30'000, delay = 20'000;
    b.add_sample(sent, sent + delay + offset);
    ASSERT_TRUE(b.upper(sent).has_value());
    EXPECT_GE(*b.upper(sent), offset);
    EXPECT_EQ(*b.upper(sent), offset + delay);
    // A heartbeat the peer stamped at its time T happened locally at T - offset, never before the bound.
    const std::int64_t peer_time = 2'000'000;
    EXPECT_LE(*b.to_local_lower(peer_time, sent), peer_time - offset);
}

TEST(ClockBound, TightestSampleWinsAndDriftWidensOldOnes) {
    offset_bound b(100.0);  // 100 ppm
    b.add_sample(0, 50'000);          // bound 50 ms
    b.add_sample(1'000'000, 1'010'000);  // bound 10 ms
    b.add_sample(2'000'000, 2'040'000);  // bound 40 ms
    // At 3 s: 50 ms + 300 us, 10 ms + 200 us, 40 ms + 100 us.
    EXPECT_EQ(*b.upper(3'000'000), 10'200);
}

TEST(ClockBound, BoundHoldsUnderDriftWithinTheAllowance) {
    // True offset starts at 5 ms and grows 50 ppm; samples every second with a 3 ms one-way delay;
    // allowance 100 ppm: at every moment the bound is at or above the true offset.
    offset_bound b(100.0, 5'000'000);
    auto true_offset = [](std::int64_t local) { return 5'000 + local / 20'000; };  // 50 ppm
    for (std::int64_t t = 0; t <= 20'000'000; t += 1'000'000) {
        std::int64_t arrive = t + 3'000;
        b.add_sample(t, arrive + true_offset(arrive));
        for (std::int64_t now = t; now < t + 1'000'000; now += 100'000)
            EXPECT_GE(*b.upper(now), true_offset(now)) << "at " << now;
    }
}

TEST(ClockBound, WindowDropsOldSamples) {
    offset_bound b(0.0, 1'000'000);
    b.add_sample(0, 1'000);                // tight, but will age out
    b.add_sample(2'000'000, 2'050'000);
    EXPECT_EQ(b.samples(), 1u);
    EXPECT_EQ(*b.upper(2'000'000), 50'000);
}
