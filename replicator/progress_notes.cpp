#include "progress_notes.hpp"

#include "core/walstream.hpp"
#include "log.hpp"

namespace meridian::replicator {

namespace {
constexpr const char *note_statement = "note_peer_progress";
}

progress_notes::progress_notes(const std::string &local_conninfo, std::string peer) : peer_(std::move(peer)) {
    session_ = connection::open(local_conninfo, {{"application_name", "meridian-replicator progress " + peer_}});
    // Prepared once: a note is sent for every heartbeat applied (every 10 ms per peer).
    session_.prepare(note_statement, "SELECT meridian.note_peer_progress($1, $2::pg_catalog.pg_lsn, "
                                     "timestamptz '2000-01-01 00:00:00+00' + $3::bigint * interval '1 microsecond')");
    if (PQsetnonblocking(session_.get(), 1) != 0)
        throw pq_error("could not make the progress session non-blocking: " + session_.error_message());
}

void progress_notes::note(std::uint64_t lsn, std::optional<std::int64_t> watermark) {
    if (unsupported_)
        return;
    take_answer();
    if (in_flight_) {
        pending_ = pending_note{lsn, watermark};
        return;
    }
    send(lsn, watermark);
}

void progress_notes::send(std::uint64_t lsn, std::optional<std::int64_t> watermark) {
    std::string lsn_text = walstream::lsn_to_string(lsn);
    std::string wm = watermark ? std::to_string(*watermark) : std::string();
    const char *values[3] = {peer_.c_str(), lsn_text.c_str(), watermark ? wm.c_str() : nullptr};
    if (PQsendQueryPrepared(session_.get(), note_statement, 3, values, nullptr, nullptr, 0) != 1 ||
        PQflush(session_.get()) < 0)
        throw pq_error("could not note the progress of " + peer_ + ": " + session_.error_message());
    in_flight_ = true;
}

void progress_notes::take_answer() {
    if (!in_flight_)
        return;
    if (PQconsumeInput(session_.get()) != 1)
        throw pq_error("lost the progress session: " + session_.error_message());
    // A query whose output is not all flushed yet (non-blocking) is sent on by PQflush.
    if (PQflush(session_.get()) < 0)
        throw pq_error("lost the progress session: " + session_.error_message());
    while (!PQisBusy(session_.get())) {
        result r(PQgetResult(session_.get()));
        if (!r) {  // the end of the answer
            in_flight_ = false;
            if (pending_ && !unsupported_) {
                pending_note p = *pending_;
                pending_.reset();
                send(p.lsn, p.watermark);
            }
            return;
        }
        if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
            throw pq_error("meridian.note_peer_progress failed: " + std::string(PQresultErrorMessage(r.get())),
                           PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : "");
        if (!unsupported_ && std::string(PQgetvalue(r.get(), 0, 0)) != "t") {
            unsupported_ = true;
            pending_.reset();
            log_line("meridian is not in shared_preload_libraries here: bounded and strong reads cannot see region " +
                     peer_ + "'s progress");
        }
    }
}

int progress_notes::socket_awaiting_answer() const { return in_flight_ ? PQsocket(session_.get()) : -1; }

}  // namespace meridian::replicator
