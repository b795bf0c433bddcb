// The replicator's main loop: reads the region catalog from the local database, runs one
// peer_stream per peer (restarting a stream when its peer's catalog row changes), writes this
// region's heartbeats (meridian.emit_heartbeat) at the heartbeat interval, publishes the streams'
// state to meridian.region_progress, purges old tombstones, keeps synchronous_standby_names set
// to the write quorum (docs/consistency.md), runs one peer_clock per peer, and stops cleanly on
// SIGTERM/SIGINT.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

namespace meridian::replicator {

struct supervisor_settings {
    std::string local_conninfo;
    std::chrono::milliseconds heartbeat_interval{10};  // bounded reads' watermarks move with them
    std::chrono::milliseconds catalog_interval{1000};
    std::chrono::milliseconds progress_interval{100};
    std::chrono::milliseconds purge_interval{60000};
};

// Runs until `shutdown` becomes true; returns the process exit status.
int run_supervisor(const supervisor_settings &settings, const std::atomic<bool> &shutdown);

}  // namespace meridian::replicator
