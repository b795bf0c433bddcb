// Bounds on the clock offset between this region and a peer, for bounded-staleness watermarks
// (docs/consistency.md, "Staleness"). A peer's heartbeat carries the peer's clock; a watermark
// must be on the local clock and never later than the true moment, so that clock skew can only
// make staleness over-reported. A sample is a question sent at local time `sent` and answered
// with the peer's clock `peer` read after the question arrived: peer - offset >= sent, so
// offset <= peer - sent. Between samples the offset may drift by at most `drift_ppm`.
// Pure C++ (no PostgreSQL): unit-tested in test/unit/test_clock_bound.cpp.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

namespace meridian::clockbound {

class offset_bound {
public:
    // Samples older than window_us are dropped; the bound grows by drift_ppm of the time since each sample.
    explicit offset_bound(double drift_ppm = 200.0, std::int64_t window_us = 10'000'000)
        : drift_ppm_(drift_ppm), window_us_(window_us) {}

    void add_sample(std::int64_t sent_local_us, std::int64_t peer_clock_us);

    // An upper bound of (peer clock - local clock) at local time now_us; none without a sample.
    std::optional<std::int64_t> upper(std::int64_t now_us) const;

    // The local time at or before which the peer's clock read peer_time_us; none without a sample.
    std::optional<std::int64_t> to_local_lower(std::int64_t peer_time_us, std::int64_t now_us) const;

    std::size_t samples() const { return samples_.size(); }

private:
    struct sample {
        std::int64_t sent;
        std::int64_t offset_hi;  // peer - sent
    };
    double drift_ppm_;
    std::int64_t window_us_;
    std::deque<sample> samples_;
};

}  // namespace meridian::clockbound
