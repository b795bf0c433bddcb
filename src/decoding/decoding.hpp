// Shared names of src/decoding: the output plugin (plugin.cpp) and the SQL functions that feed
// it (functions.cpp). Format and behaviour: docs/protocol.md section 6.
#pragma once

namespace meridian::decoding {

// The prefix of the non-transactional logical message that becomes a heartbeat.
inline constexpr const char *heartbeat_prefix = "meridian.heartbeat";

}  // namespace meridian::decoding
