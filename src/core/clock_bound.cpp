#include "core/clock_bound.hpp"

#include <algorithm>
#include <cmath>

namespace meridian::clockbound {

void offset_bound::add_sample(std::int64_t sent_local_us, std::int64_t peer_clock_us) {
    samples_.push_back({sent_local_us, peer_clock_us - sent_local_us});
    while (samples_.size() > 1 && samples_.back().sent - samples_.front().sent > window_us_)
        samples_.pop_front();
}

std::optional<std::int64_t> offset_bound::upper(std::int64_t now_us) const {
    std::optional<std::int64_t> best;
    for (const sample &s : samples_) {
        std::int64_t age = std::max<std::int64_t>(0, now_us - s.sent);
        // Rounded up: the bound must not shrink through rounding.
        auto drift = static_cast<std::int64_t>(std::ceil(static_cast<double>(age) * drift_ppm_ / 1e6));
        std::int64_t bound = s.offset_hi + drift;
        if (!best || bound < *best)
            best = bound;
    }
    return best;
}

std::optional<std::int64_t> offset_bound::to_local_lower(std::int64_t peer_time_us, std::int64_t now_us) const {
    auto hi = upper(now_us);
    if (!hi)
        return std::nullopt;
    return peer_time_us - *hi;
}

}  // namespace meridian::clockbound
