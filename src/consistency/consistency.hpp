// Consistency per query and per write (docs/consistency.md): quorum-write admission, bounded and
// strong reads. Internal interface between the files of src/consistency. Everything here is glue
// that runs in a backend's own thread; pure logic (LSN text) comes from src/core.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "replication/origin.h"
#include "storage/condition_variable.h"
}

namespace meridian::consistency {

// SQLSTATEs of class MR (implementation-defined; docs/consistency.md, "Errors").
inline constexpr int errcode_quorum_unavailable = MAKE_SQLSTATE('M', 'R', '0', '0', '1');
inline constexpr int errcode_staleness_exceeded = MAKE_SQLSTATE('M', 'R', '0', '0', '2');
inline constexpr int errcode_peer_unreachable = MAKE_SQLSTATE('M', 'R', '0', '0', '3');

// ---- GUCs (gucs.cpp)
enum read_level { read_eventual = 0, read_bounded = 1, read_strong = 2 };
extern int read_consistency;
extern int max_staleness_ms;
extern int consistency_timeout_ms;
extern int heartbeat_timeout_ms;
extern bool quorum_admission;
extern bool strong_read_quorum;

// ---- Shared state (shared_state.cpp): what meridian-replicator has told this server about each
// peer, in shared memory (needs shared_preload_libraries = 'meridian').
void request_shared_state();  // from _PG_init while preloading
bool shared_state_available();
struct peer_progress {
    XLogRecPtr applied_through = 0;   // every change of the peer before this WAL position is applied here
    TimestampTz watermark = 0;        // local clock: all of the peer's commits before it are applied (0: unknown)
    TimestampTz heartbeat_at = 0;     // local clock: when the last heartbeat of the peer was applied
    bool partitioned = false;         // the replicator judges it cut off from a write quorum of regions
    TimestampTz partitioned_noted = 0;
};
// A partition judgement counts only this long after it was noted (the replicator repeats it every 100 ms).
inline constexpr TimestampTz partition_note_validity = 1000 * 1000;
// No heartbeat of the peer applied here for meridian.heartbeat_timeout (region_status.unavailable).
inline bool unavailable(TimestampTz heartbeat_at, TimestampTz now) {
    return now - heartbeat_at > static_cast<TimestampTz>(heartbeat_timeout_ms) * 1000;
}
// The replicator's partition judgement, while it is fresh.
inline bool judged_cut_off(bool partitioned, TimestampTz noted, TimestampTz now) {
    return partitioned && now - noted <= partition_note_validity;
}
peer_progress progress_of(const char *region);
ConditionVariable *progress_changed();  // broadcast whenever any peer's progress moves; needs shared_state_available()

// ---- Catalog cache (catalog_cache.cpp): the region catalog as this backend sees it, reloaded after
// a relcache invalidation of meridian.regions / meridian.replicated_tables.
struct peer_entry {
    char name[NAMEDATALEN];
    char *conninfo;  // TopMemoryContext
};
struct catalog_view {
    bool installed = false;  // the extension exists in this database
    int write_quorum = 1;
    int npeers = 0;
    peer_entry *peers = nullptr;
    int nreplicated = 0;
    Oid *replicated = nullptr;  // sorted
};
const catalog_view &current_catalog();  // loads with SPI if stale: call inside a transaction
bool is_replicated(const catalog_view &c, Oid relid);

// ---- Strong reads (peer_positions.cpp): the peers' current WAL positions, asked over libpq.
// Every peer is asked; the call returns once `needed` of them answered (all of them, or a read
// quorum). targets[i], for c.peers[i], is the position this region must have applied from that
// peer: the peer's own position if it answered, and at least what any answering peer has applied
// from it. Raises MR003 naming a peer that did not answer when fewer than `needed` did by deadline.
void fetch_peer_positions(const catalog_view &c, TimestampTz deadline, int needed, XLogRecPtr *targets);
// What this region has applied from a peer: the larger of the last applied heartbeat's position
// (shared memory) and the progress of the peer's replication origin (the last applied
// transaction); origin is peer_origin(region), looked up once by the caller.
RepOriginId peer_origin(const char *region);  // InvalidRepOriginId when none exists yet
XLogRecPtr applied_from(const char *region, RepOriginId origin);

// ---- Hooks
void install_read_hooks();    // reads.cpp: ExecutorStart
void install_quorum_hooks();  // quorum.cpp: transaction callback
void register_gucs();         // gucs.cpp

// True in meridian-replicator's apply sessions, which must never wait nor be refused.
bool in_apply_session();

}  // namespace meridian::consistency
