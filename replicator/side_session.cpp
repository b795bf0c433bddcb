#include "side_session.hpp"

#include "core/walstream.hpp"
#include "log.hpp"

#include <algorithm>

namespace meridian::replicator {

namespace {
constexpr const char *note_statement = "note_peer_progress";
constexpr const char *flush_statement = "flush_wal";
}

side_session::side_session(const std::string &local_conninfo, std::string peer) : peer_(std::move(peer)) {
    session_ = connection::open(local_conninfo, {{"application_name", "meridian-replicator side " + peer_}});
    // Prepared once: a note is sent for every heartbeat applied (every 10 ms per peer).
    session_.prepare(note_statement, "SELECT meridian.note_peer_progress($1, $2::pg_catalog.pg_lsn, "
                                     "timestamptz '2000-01-01 00:00:00+00' + $3::bigint * interval '1 microsecond')");
    session_.prepare(flush_statement, "SELECT meridian.flush_wal()");
    if (PQsetnonblocking(session_.get(), 1) != 0)
        throw pq_error("could not make the side session non-blocking: " + session_.error_message());
}

void side_session::note(std::uint64_t lsn, std::optional<std::int64_t> watermark) {
    if (unsupported_)
        return;
    note_wanted_ = pending_note{lsn, watermark};
    take_answer();
    if (in_flight_ == call::none)
        send_next();
}

void side_session::flush(std::uint64_t through) {
    flush_wanted_through_ = std::max(flush_wanted_through_, through);
    flush_wanted_ = true;
    take_answer();
    if (in_flight_ == call::none)
        send_next();
}

std::optional<std::uint64_t> side_session::take_flushed() {
    std::optional<std::uint64_t> f = flushed_;
    flushed_.reset();
    return f;
}

// A flush first: a stalled pipeline's confirmations wait for it, a note only moves a watermark.
void side_session::send_next() {
    int ok;
    if (flush_wanted_) {
        ok = PQsendQueryPrepared(session_.get(), flush_statement, 0, nullptr, nullptr, nullptr, 0);
        flush_wanted_ = false;
        flush_sent_through_ = flush_wanted_through_;
        in_flight_ = call::flush;
    } else if (note_wanted_ && !unsupported_) {
        pending_note p = *note_wanted_;
        note_wanted_.reset();
        std::string lsn_text = walstream::lsn_to_string(p.lsn);
        std::string wm = p.watermark ? std::to_string(*p.watermark) : std::string();
        const char *values[3] = {peer_.c_str(), lsn_text.c_str(), p.watermark ? wm.c_str() : nullptr};
        ok = PQsendQueryPrepared(session_.get(), note_statement, 3, values, nullptr, nullptr, 0);
        in_flight_ = call::note;
    } else {
        return;
    }
    answered_ = false;
    if (ok != 1 || PQflush(session_.get()) < 0)
        throw pq_error("could not send to the side session of " + peer_ + ": " + session_.error_message());
}

void side_session::take_answer() {
    if (in_flight_ == call::none)
        return;
    if (PQconsumeInput(session_.get()) != 1)
        throw pq_error("lost the side session of " + peer_ + ": " + session_.error_message());
    // A query whose output is not all flushed yet (non-blocking) is sent on by PQflush.
    if (PQflush(session_.get()) < 0)
        throw pq_error("lost the side session of " + peer_ + ": " + session_.error_message());
    while (!PQisBusy(session_.get())) {
        result r(PQgetResult(session_.get()));
        if (!r) {  // the end of the answer
            if (!answered_)
                throw pq_error("the side session's call returned no row");
            if (in_flight_ == call::flush)
                flushed_ = std::max(flushed_.value_or(0), flush_sent_through_);
            in_flight_ = call::none;
            send_next();
            if (in_flight_ == call::none)
                return;
            continue;
        }
        const char *what = in_flight_ == call::flush ? "meridian.flush_wal()" : "meridian.note_peer_progress";
        if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
            const char *state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
            throw pq_error(std::string(what) + " failed: " + PQresultErrorMessage(r.get()), state ? state : "");
        }
        answered_ = true;
        if (in_flight_ == call::note && !unsupported_ && std::string(PQgetvalue(r.get(), 0, 0)) != "t") {
            unsupported_ = true;
            note_wanted_.reset();
            log_line("meridian is not in shared_preload_libraries here: bounded and strong reads cannot see region " +
                     peer_ + "'s progress");
        }
    }
}

int side_session::socket_awaiting_answer() const {
    return in_flight_ == call::none ? -1 : PQsocket(session_.get());
}

}  // namespace meridian::replicator
