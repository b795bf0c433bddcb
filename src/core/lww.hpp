// Last-writer-wins between row versions (docs/apply.md). Pure C++, no PostgreSQL headers.
//
// A row version is (commit timestamp, region) of the transaction that wrote it. An incoming change
// wins against a stored version iff the stored version comes from the same region (that region's
// stream arrives in its commit order) or (t_in, r_in) > (t_stored, r_stored): timestamps first,
// then region names compared byte for byte. A stored version whose commit timestamp is unknown
// (frozen or truncated commit timestamp data) is older than everything.
#pragma once

#include <cstdint>
#include <string_view>

namespace meridian::lww {

struct version {
    bool known = false;         // false: commit timestamp unknown, the oldest possible version
    std::int64_t time = 0;      // TimestampTz: microseconds since 2000-01-01 UTC
    std::string_view region;    // the region that wrote it
};

// Total order of known versions: time, then region bytewise; unknown versions first.
// Returns <0, 0, >0.
int compare(const version &a, const version &b) noexcept;

// Does a change with version `incoming` replace what `stored` wrote?
bool incoming_wins(const version &stored, const version &incoming) noexcept;

// The region a replication origin name stands for: "meridian_<region>" -> "<region>"; any other
// name (or none) -> empty, meaning "not from a Meridian peer".
std::string_view region_of_origin(std::string_view origin_name) noexcept;

inline constexpr std::string_view origin_prefix = "meridian_";

}  // namespace meridian::lww
