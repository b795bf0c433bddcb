// How far a peer's stream is applied here, told to the local server (meridian.note_peer_progress,
// shared memory; bounded and strong reads wait on it) without making the stream wait: the note is
// sent on its own connection and its answer is taken later. At most one note is in flight; while
// it is, only the latest newer note is kept (a later note supersedes an earlier one).
#pragma once

#include "pq.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace meridian::replicator {

class progress_notes {
public:
    progress_notes(const std::string &local_conninfo, std::string peer);

    // Applied here through `lsn`; `watermark` (local TimestampTz) when the peer's clock is bounded.
    void note(std::uint64_t lsn, std::optional<std::int64_t> watermark);
    // Takes the answer of the note in flight if it is there, without blocking, then sends the one
    // kept meanwhile. Throws pq_error when the local session is lost or the call fails.
    void take_answer();
    // For the caller's poll(): the socket to wait on for an answer, or -1 when none is awaited.
    int socket_awaiting_answer() const;

private:
    void send(std::uint64_t lsn, std::optional<std::int64_t> watermark);

    std::string peer_;
    connection session_;
    bool in_flight_ = false;
    bool unsupported_ = false;  // meridian is not preloaded here: nothing to note
    struct pending_note {
        std::uint64_t lsn;
        std::optional<std::int64_t> watermark;
    };
    std::optional<pending_note> pending_;
};

}  // namespace meridian::replicator
