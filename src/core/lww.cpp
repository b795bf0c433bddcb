#include "core/lww.hpp"

namespace meridian::lww {

int compare(const version &a, const version &b) noexcept {
    if (!a.known || !b.known)
        return int(a.known) - int(b.known);
    if (a.time != b.time)
        return a.time < b.time ? -1 : 1;
    // std::string_view::compare uses char_traits<char>::compare, which compares as unsigned char.
    int c = a.region.compare(b.region);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

bool incoming_wins(const version &stored, const version &incoming) noexcept {
    if (stored.known && stored.region == incoming.region)
        return true;
    return compare(incoming, stored) > 0;
}

std::string_view region_of_origin(std::string_view origin_name) noexcept {
    if (origin_name.size() <= origin_prefix.size() || origin_name.substr(0, origin_prefix.size()) != origin_prefix)
        return {};
    return origin_name.substr(origin_prefix.size());
}

}  // namespace meridian::lww
