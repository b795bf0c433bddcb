// The side session of a peer's stream: calls to the local server that must not wait behind the
// apply pipeline, on a connection of their own, answered later so the stream never waits for
// them. One call is in flight at a time; the others wait their turn, the latest of each kind.
//
// - Progress notes: how far the stream is applied here (meridian.note_peer_progress, shared
//   memory; bounded and strong reads wait on it). A later note supersedes an earlier one.
// - Flushes for a stalled pipeline (meridian.flush_wal()). The pipeline's own flush runs only after
//   every call queued before it, so while one apply waits for a row lock the transactions applied
//   before it would stay unconfirmed to the peer as long. When that lock is held by a local commit
//   that waits for a quorum including the peer, and the peer's commit of an earlier transaction
//   waits for those confirmations, the regions deadlock (docs/consistency.md, "Waits that chain
//   across rows"). The pipeline keeps its own flush for everything else: queued right behind the
//   applies, it runs without a round trip through the replicator, on every quorum commit's path.
#pragma once

#include "pq.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace meridian::replicator {

class side_session {
public:
    side_session(const std::string &local_conninfo, std::string peer);

    // Applied here through `lsn`; `watermark` (local TimestampTz) when the peer's clock is bounded.
    void note(std::uint64_t lsn, std::optional<std::int64_t> watermark);
    // Makes every transaction committed here so far durable; `through` is the stream position
    // that confirms. A later request supersedes one not sent yet.
    void flush(std::uint64_t through);
    bool flush_pending() const { return flush_wanted_ || in_flight_ == call::flush; }
    // The position confirmed by a flush that has returned since the last call; nothing otherwise.
    std::optional<std::uint64_t> take_flushed();
    // Takes the answer of the call in flight if it is there, without blocking, then sends the next
    // one waiting. Throws pq_error when the local session is lost or a call fails.
    void take_answer();
    // For the caller's poll(): the socket to wait on for an answer, or -1 when none is awaited.
    int socket_awaiting_answer() const;

private:
    enum class call { none, note, flush };
    void send_next();

    std::string peer_;
    connection session_;
    call in_flight_ = call::none;
    bool answered_ = false;     // the call in flight returned its row
    bool unsupported_ = false;  // meridian is not preloaded here: nothing to note
    struct pending_note {
        std::uint64_t lsn;
        std::optional<std::int64_t> watermark;
    };
    std::optional<pending_note> note_wanted_;
    bool flush_wanted_ = false;
    std::uint64_t flush_wanted_through_ = 0;   // what the flush waiting its turn confirms
    std::uint64_t flush_sent_through_ = 0;     // what the flush in flight confirms
    std::optional<std::uint64_t> flushed_;     // returned, not taken yet
};

}  // namespace meridian::replicator
