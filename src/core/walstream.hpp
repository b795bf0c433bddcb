// The streaming-replication sub-protocol messages meridian-replicator exchanges with a peer's
// walsender inside CopyBoth (PostgreSQL docs, "Streaming Replication Protocol"): XLogData ('w')
// and primary keepalive ('k') from the server, standby status update ('r') from us. All integers
// are big-endian here. Also LSN text form ("16/B374D848") and slot names. Pure C++.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meridian::walstream {

// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 00:00:00 UTC).
inline constexpr std::int64_t postgres_epoch_offset_us = 946684800LL * 1000000LL;

// The system clock now, as a PostgreSQL TimestampTz (microseconds since 2000-01-01 UTC).
std::int64_t now_timestamptz();

// One message from the server in CopyBoth mode.
struct server_message {
    enum class kind { xlog_data, keepalive } type;
    std::uint64_t wal_start = 0;  // 'w': dataStart
    std::uint64_t wal_end = 0;    // 'w' and 'k': the server's WAL end (for 'k': what it has sent up to)
    std::int64_t send_time = 0;   // server clock, TimestampTz
    bool reply_requested = false; // 'k' only
    const std::uint8_t *payload = nullptr;  // 'w' only: the plugin's bytes (one Meridian message)
    std::size_t payload_size = 0;
};

// Parses one CopyData payload; throws meridian::error (08P01) on anything malformed or unknown.
server_message parse_server_message(const std::uint8_t *data, std::size_t size);

// The 34-byte standby status update.
std::vector<std::uint8_t> status_update(std::uint64_t write, std::uint64_t flush, std::uint64_t apply,
                                        std::int64_t now, bool reply_requested);

// "X/Y" (hex halves, as pg_lsn prints) and back; parse throws meridian::error (22P02).
std::string lsn_to_string(std::uint64_t lsn);
std::uint64_t lsn_from_string(std::string_view text);

// The peer-side slot a region streams from: the region's name with '-' as '_' (slot names allow
// only [a-z0-9_]; region names are [a-z0-9][a-z0-9_-]{0,62}).
std::string slot_name(std::string_view region);
// The local replication origin that records a peer's progress.
std::string origin_name(std::string_view region);

}  // namespace meridian::walstream
