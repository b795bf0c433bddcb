#include "core/walstream.hpp"

#include "core/error.hpp"

#include <chrono>
#include <cstdio>

namespace meridian::walstream {

std::int64_t now_timestamptz() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count() - postgres_epoch_offset_us;
}

namespace {

constexpr const char *protocol_violation = "08P01";

std::uint64_t get_u64(const std::uint8_t *p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

void put_u64(std::vector<std::uint8_t> &out, std::uint64_t v) {
    for (int i = 7; i >= 0; i--)
        out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

}  // namespace

server_message parse_server_message(const std::uint8_t *data, std::size_t size) {
    if (size == 0)
        throw error(protocol_violation, "empty CopyData message from the walsender");
    server_message m{};
    switch (data[0]) {
    case 'w':
        if (size < 25)
            throw error(protocol_violation, "truncated XLogData message from the walsender",
                        "It has " + std::to_string(size) + " bytes; the header alone is 25.");
        m.type = server_message::kind::xlog_data;
        m.wal_start = get_u64(data + 1);
        m.wal_end = get_u64(data + 9);
        m.send_time = static_cast<std::int64_t>(get_u64(data + 17));
        m.payload = data + 25;
        m.payload_size = size - 25;
        return m;
    case 'k':
        if (size != 18)
            throw error(protocol_violation, "malformed keepalive message from the walsender",
                        "It has " + std::to_string(size) + " bytes instead of 18.");
        m.type = server_message::kind::keepalive;
        m.wal_end = get_u64(data + 1);
        m.send_time = static_cast<std::int64_t>(get_u64(data + 9));
        m.reply_requested = data[17] != 0;
        return m;
    default: {
        char b[8];
        std::snprintf(b, sizeof b, "0x%02x", data[0]);
        throw error(protocol_violation, std::string("unexpected message type ") + b + " from the walsender");
    }
    }
}

std::vector<std::uint8_t> status_update(std::uint64_t write, std::uint64_t flush, std::uint64_t apply,
                                        std::int64_t now, bool reply_requested) {
    std::vector<std::uint8_t> out;
    out.reserve(34);
    out.push_back('r');
    put_u64(out, write);
    put_u64(out, flush);
    put_u64(out, apply);
    put_u64(out, static_cast<std::uint64_t>(now));
    out.push_back(reply_requested ? 1 : 0);
    return out;
}

std::string lsn_to_string(std::uint64_t lsn) {
    char b[32];
    std::snprintf(b, sizeof b, "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn));
    return b;
}

std::uint64_t lsn_from_string(std::string_view text) {
    auto bad = [&] { return error("22P02", "invalid LSN \"" + std::string(text) + "\""); };
    std::size_t slash = text.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size())
        throw bad();
    auto half = [&](std::string_view h) {
        if (h.size() > 8)
            throw bad();
        std::uint64_t v = 0;
        for (char c : h) {
            int d = (c >= '0' && c <= '9') ? c - '0'
                    : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                    : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                             : -1;
            if (d < 0)
                throw bad();
            v = (v << 4) | static_cast<std::uint64_t>(d);
        }
        return v;
    };
    return (half(text.substr(0, slash)) << 32) | half(text.substr(slash + 1));
}

std::string slot_name(std::string_view region) {
    std::string s(region);
    for (char &c : s)
        if (c == '-')
            c = '_';
    return s;
}

std::string origin_name(std::string_view region) { return "meridian_" + std::string(region); }

}  // namespace meridian::walstream
