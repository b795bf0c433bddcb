#include "peer_stream.hpp"

#include "core/error.hpp"
#include "core/protocol.hpp"
#include "core/walstream.hpp"
#include "log.hpp"
#include "pq.hpp"
#include "side_session.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <memory>

namespace meridian::replicator {

namespace {

using clock = std::chrono::steady_clock;

// The replication connection: the peer's conninfo, as a logical walsender, with our region as
// application_name (the peer's synchronous_standby_names names us by it), and timeouts so that a
// peer that vanishes without closing the socket is noticed, unless the DBA's conninfo says otherwise.
connection open_replication_connection(const std::string &conninfo, const std::string &local_region) {
    std::vector<std::pair<std::string, std::string>> o = {{"replication", "database"},
                                                          {"application_name", local_region}};
    PQconninfoOption *opts = PQconninfoParse(conninfo.c_str(), nullptr);
    auto has = [&](const char *k) {
        for (PQconninfoOption *p = opts; p && p->keyword; p++)
            if (std::string(p->keyword) == k && p->val && *p->val)
                return true;
        return false;
    };
    for (auto [k, v] : {std::pair<const char *, const char *>{"connect_timeout", "10"},
                        {"keepalives_idle", "10"}, {"keepalives_interval", "2"}, {"keepalives_count", "3"}})
        if (!has(k))
            o.emplace_back(k, v);
    if (opts)
        PQconninfoFree(opts);
    return connection::open(conninfo, o);
}

}  // namespace

peer_stream::peer_stream(stream_settings settings, peer_region peer, status_board &board,
                         const std::atomic<bool> &shutdown)
    : settings_(std::move(settings)), peer_(std::move(peer)), board_(board), shutdown_(shutdown) {
    thread_ = std::thread([this] { run(); });
}

peer_stream::~peer_stream() {
    stop_ = true;
    if (thread_.joinable())
        thread_.join();
}

void peer_stream::sleep_until_retry(std::chrono::milliseconds d, std::uint64_t reachable) const {
    auto until = clock::now() + d;
    while (!stopping() && clock::now() < until && board_.times_reachable_again(peer_.name) == reachable)
        std::this_thread::sleep_for(std::min<clock::duration>(std::chrono::milliseconds(50), until - clock::now()));
}

void peer_stream::run() {
    std::chrono::milliseconds backoff(500);
    while (!stopping()) {
        progressed_ = false;
        const std::uint64_t reachable = board_.times_reachable_again(peer_.name);
        std::string why;
        try {
            session();
        } catch (const std::exception &e) {
            why = describe(e);
        }
        board_.update(peer_.name, [&](peer_state &s) {
            s.connected = false;
            if (!why.empty())
                s.last_error = why;
        });
        if (stopping())
            break;
        if (progressed_)
            backoff = std::chrono::milliseconds(500);
        log_line("stream from " + peer_.name + " stopped: " + why + "; retrying in " +
                 std::to_string(backoff.count()) + " ms");
        sleep_until_retry(backoff, reachable);
        backoff = std::min(backoff * 2, settings_.max_backoff);
    }
    board_.update(peer_.name, [](peer_state &s) { s.connected = false; });
}

void peer_stream::session() {
    if (!peer_.key)
        throw meridian::error(sqlstate::object_not_in_prerequisite_state,
                              "region \"" + peer_.name + "\" has no public key registered",
                              "Its changes cannot be verified, so none are applied.");
    const std::string origin = walstream::origin_name(peer_.name);
    const std::string slot = walstream::slot_name(settings_.local_region);

    // The local session that applies this peer's transactions and owns its replication origin.
    connection apply = connection::open(settings_.local_conninfo,
                                        {{"application_name", "meridian-replicator apply " + peer_.name}});
    // Commits do not wait for their WAL flush: meridian.flush_wal() makes a group of them durable
    // at once before their positions are confirmed to the peer (group flush).
    apply.exec("SET synchronous_commit = off", PGRES_COMMAND_OK);
    apply.exec("SET session_replication_role = replica", PGRES_COMMAND_OK);
    apply.exec_params("SELECT pg_catalog.pg_replication_origin_create($1) WHERE NOT EXISTS "
                      "(SELECT FROM pg_catalog.pg_replication_origin WHERE roname = $1)",
                      {origin.c_str()});
    apply.exec_params("SELECT pg_catalog.pg_replication_origin_session_setup($1)", {origin.c_str()});
    result progress = apply.exec("SELECT pg_catalog.pg_replication_origin_session_progress(false)");
    std::uint64_t applied = is_null(progress, 0, 0) ? 0 : walstream::lsn_from_string(value(progress, 0, 0));

    connection repl = open_replication_connection(peer_.conninfo, settings_.local_region);
    try {
        repl.exec("CREATE_REPLICATION_SLOT " + repl.quote_ident(slot) + " LOGICAL meridian NOEXPORT_SNAPSHOT");
        log_line("created replication slot \"" + slot + "\" in region " + peer_.name);
    } catch (const pq_error &e) {
        if (e.sqlstate() != "42710")  // duplicate_object: the slot is there from before
            throw;
    }
    repl.exec("START_REPLICATION SLOT " + repl.quote_ident(slot) + " LOGICAL " + walstream::lsn_to_string(applied) +
                  " (\"proto_version\" '1')",
              PGRES_COPY_BOTH);
    log_line("streaming from " + peer_.name + " (slot \"" + slot + "\") from " + walstream::lsn_to_string(applied));
    board_.update(peer_.name, [&](peer_state &s) {
        s.connected = true;
        s.last_error.clear();
        if (applied > s.applied_lsn)
            s.applied_lsn = applied;
    });

    std::uint64_t flushed = applied;  // durable here: safe to confirm to the peer
    auto last_status = clock::time_point{};

    // Consistency (docs/consistency.md). Once a heartbeat of the peer is applied here (every
    // transaction queued before it has committed), the local server learns how far the peer is
    // applied and, on the local clock, up to when (meridian.note_peer_progress, shared memory):
    // bounded and strong reads wait on it. On the side session (its own connection, answers taken
    // later), so neither the apply pipeline nor the stream waits for it.
    side_session side(settings_.local_conninfo, peer_.name);
    struct heartbeat_seen {
        std::uint64_t after;  // applied once `applied` reaches this (the last transaction queued before it)
        std::uint64_t lsn;
        std::int64_t peer_time;
    };
    std::deque<heartbeat_seen> heartbeats;
    auto note_heartbeats = [&](std::uint64_t applied_now) {
        std::optional<heartbeat_seen> last;  // only the latest applied one matters
        while (!heartbeats.empty() && heartbeats.front().after <= applied_now) {
            last = heartbeats.front();
            heartbeats.pop_front();
        }
        if (last)
            side.note(last->lsn, board_.peer_time_to_local(peer_.name, last->peer_time, walstream::now_timestamptz()));
    };
    // Replies keep the peer's view of this stream fresh: its quorum admission counts a peer live
    // only if it acknowledged within meridian.heartbeat_timeout (default 1 s).
    constexpr auto ack_interval = std::chrono::milliseconds(100);
    auto last_received = clock::now();
    auto send_status = [&](bool reply_requested) {
        auto msg = walstream::status_update(flushed, flushed, flushed, walstream::now_timestamptz(), reply_requested);
        if (PQputCopyData(repl.get(), reinterpret_cast<const char *>(msg.data()), static_cast<int>(msg.size())) != 1 ||
            PQflush(repl.get()) < 0)
            throw pq_error("could not send a status update to " + peer_.name + ": " + repl.error_message());
        last_status = clock::now();
    };

    // The apply session runs in libpq pipeline mode: while the local server applies one
    // transaction, the next ones are read, verified and queued behind it (at most
    // max_in_flight), so the applying backend does not wait for the replicator. Each call is its
    // own transaction (a Sync after each), in stream order. A call names the origin progress it
    // expects (the end LSN of the call before it), so when one fails, the server refuses every
    // call queued after it instead of applying it past the gap.
    //
    // Group flush: transactions commit without waiting for their WAL flush (synchronous_commit =
    // off). A meridian.flush_wal() call queued behind them makes every earlier commit of the
    // session durable; only when it returns are their end LSNs (and the positions of heartbeats and
    // keepalives received after them) confirmed to the peer. A flush is queued as soon as nothing
    // more is buffered on the stream (a lone transaction is confirmed at once), one at a time, and
    // at the latest after max_unflushed transactions.
    //
    // A front call that waits (a row lock; see side_session.hpp) holds back the flush queued
    // behind it: after stalled_after, the transactions applied before it are made durable and
    // confirmed through a flush on the side session.
    constexpr int max_in_flight = 4;
    constexpr int max_unflushed = 16;
    constexpr auto stalled_after = std::chrono::milliseconds(20);
    auto front_since = clock::now();  // when the call at the front of the pipeline got there
    struct call {
        bool is_flush;
        std::uint64_t lsn;  // apply: the transaction's end LSN; flush: the position it confirms
        bool result_seen;
    };
    std::deque<call> in_flight;
    int applies_in_flight = 0, flushes_in_flight = 0;
    int unflushed = 0;                 // applies queued since the last flush was queued
    std::uint64_t confirmable = flushed;  // everything before it was queued or skipped
    std::uint64_t flush_queued = flushed; // what the last queued flush confirms
    std::uint64_t sent_progress = applied; // the end LSN of the last apply queued

    // Prepared once (before pipeline mode): each call is then bound and executed, not parsed
    // and planned again (it is on the path of every quorum commit's confirmation).
    apply.prepare("meridian_apply", "SELECT meridian.apply_transaction($1, $2::pg_catalog.pg_lsn)");
    apply.prepare("meridian_flush", "SELECT meridian.flush_wal()");
    if (PQenterPipelineMode(apply.get()) != 1)
        throw pq_error("could not enter pipeline mode: " + apply.error_message());
    auto queued = [&](call c) {
        if (PQpipelineSync(apply.get()) != 1)
            throw pq_error("could not send to the local server: " + apply.error_message());
        if (in_flight.empty())
            front_since = clock::now();
        in_flight.push_back(c);
    };
    auto queue_apply = [&](const std::uint8_t *payload, int size, std::uint64_t end_lsn) {
        std::string expected = walstream::lsn_to_string(sent_progress);
        const char *values[2] = {reinterpret_cast<const char *>(payload), expected.c_str()};
        int lengths[2] = {size, 0};
        int formats[2] = {1, 0};
        if (PQsendQueryPrepared(apply.get(), "meridian_apply", 2, values, lengths, formats, 0) != 1)
            throw pq_error("could not send to the local server: " + apply.error_message());
        queued({false, end_lsn, false});
        sent_progress = end_lsn;
        confirmable = std::max(confirmable, end_lsn);
        applies_in_flight++;
        unflushed++;
    };
    auto queue_flush = [&] {
        if (PQsendQueryPrepared(apply.get(), "meridian_flush", 0, nullptr, nullptr, nullptr, 0) != 1)
            throw pq_error("could not send to the local server: " + apply.error_message());
        queued({true, confirmable, false});
        flush_queued = confirmable;
        flushes_in_flight++;
        unflushed = 0;
    };
    // A position before which everything received has been queued: confirmed at once when nothing
    // queued is waiting to be durable, else by the next flush.
    auto reached = [&](std::uint64_t lsn) {
        confirmable = std::max(confirmable, lsn);
        if (in_flight.empty() && unflushed == 0) {
            flushed = std::max(flushed, confirmable);
            flush_queued = confirmable;  // nothing to flush for it
        }
    };
    // Takes every result the local server has sent, without blocking.
    auto take_results = [&] {
        if (in_flight.empty())
            return;
        if (PQconsumeInput(apply.get()) != 1)
            throw pq_error("lost the local session: " + apply.error_message());
        while (!in_flight.empty() && !PQisBusy(apply.get())) {
            result r(PQgetResult(apply.get()));
            if (!r)
                continue;  // the end of one call's results
            call &c = in_flight.front();
            ExecStatusType st = PQresultStatus(r.get());
            if (st == PGRES_TUPLES_OK && !c.result_seen) {
                c.result_seen = true;
            } else if (st == PGRES_PIPELINE_SYNC && c.result_seen) {
                if (c.is_flush) {
                    flushes_in_flight--;
                    flushed = std::max(flushed, c.lsn);
                    send_status(false);  // promptly: a synchronous (quorum) commit at the peer waits for it
                } else {
                    applies_in_flight--;
                    applied = c.lsn;
                    note_heartbeats(applied);
                    board_.update(peer_.name, [&](peer_state &s) {
                        s.applied_lsn = applied;
                        s.transactions++;
                    });
                }
                in_flight.pop_front();
                front_since = clock::now();
            } else {
                const char *state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
                std::string why = PQresultErrorMessage(r.get());
                while (!why.empty() && (why.back() == '\n' || why.back() == ' '))
                    why.pop_back();
                if (why.empty())
                    why = std::string("unexpected result status ") + PQresStatus(st);
                throw pq_error(why, state ? state : "");
            }
        }
    };

    // When the front call is an apply and transactions applied before it are not confirmed yet (no
    // flush can be ahead of an apply at the front): how long until they are flushed on the side
    // session instead; nothing when no such flush is due.
    auto stalled_flush_in = [&]() -> std::optional<clock::duration> {
        if (in_flight.empty() || in_flight.front().is_flush || applied <= flushed || side.flush_pending())
            return std::nullopt;
        return front_since + stalled_after - clock::now();
    };

    while (!stopping()) {
        take_results();
        side.take_answer();
        if (auto through = side.take_flushed(); through && *through > flushed) {
            flushed = *through;
            send_status(false);  // promptly, as after the pipeline's own flush
        }
        if (auto in = stalled_flush_in(); in && *in <= clock::duration::zero())
            side.flush(applied);
        char *buf = nullptr;
        int n = 0;
        if (applies_in_flight < max_in_flight) {
            n = PQgetCopyData(repl.get(), &buf, 1);
            if (n == 0) {
                if (PQconsumeInput(repl.get()) != 1)
                    throw pq_error("lost the stream from " + peer_.name + ": " + repl.error_message());
                n = PQgetCopyData(repl.get(), &buf, 1);
            }
        }
        if (n > 0) {
            std::unique_ptr<char, decltype(&PQfreemem)> owned(buf, &PQfreemem);
            last_received = clock::now();
            auto m = walstream::parse_server_message(reinterpret_cast<const std::uint8_t *>(buf), n);
            if (m.type == walstream::server_message::kind::keepalive) {
                // Everything received before it is queued, so the walsender's position is confirmed
                // with it.
                reached(m.wal_end);
                if (m.reply_requested)
                    send_status(false);
                continue;
            }
            protocol::byte_view frame(m.payload, m.payload_size);
            protocol::verify(frame, *peer_.key);  // nothing of the message is used before this
            // A transaction is decoded in full once, by meridian.apply_transaction; here only its
            // fixed fields are read. A heartbeat is small: decode it all.
            protocol::message msg = protocol::read_header(frame).kind == protocol::kind::transaction
                                        ? protocol::message(protocol::peek_transaction(frame))
                                        : protocol::decode(frame);
            if (auto *t = std::get_if<protocol::transaction>(&msg)) {
                if (t->region != peer_.name)
                    throw meridian::error("08P01", "message from region \"" + t->region + "\" on the stream of region \"" +
                                                       peer_.name + "\"");
                progressed_ = true;
                if (t->end_lsn <= sent_progress)
                    continue;  // resent after a restart: applied already
                if (unflushed >= max_unflushed)
                    queue_flush();
                queue_apply(m.payload, static_cast<int>(m.payload_size), t->end_lsn);
            } else {
                auto &h = std::get<protocol::heartbeat>(msg);
                if (h.region != peer_.name)
                    throw meridian::error("08P01", "heartbeat from region \"" + h.region + "\" on the stream of region \"" +
                                                       peer_.name + "\"");
                progressed_ = true;
                // Every transaction committed before the heartbeat came before it and is queued.
                reached(h.wal_lsn);
                board_.update(peer_.name, [&](peer_state &s) { s.last_heartbeat = h.time; });
                // Of heartbeats behind the same transaction only the latest matters: the queue stays
                // as short as the pipeline while an apply waits, however many heartbeats arrive.
                if (!heartbeats.empty() && heartbeats.back().after == sent_progress)
                    heartbeats.back() = {sent_progress, h.wal_lsn, h.time};
                else
                    heartbeats.push_back({sent_progress, h.wal_lsn, h.time});
                note_heartbeats(applied);
                if (clock::now() - last_status >= ack_interval)
                    send_status(false);
            }
            continue;
        }
        if (n == -1) {
            result r(PQgetResult(repl.get()));
            std::string why = r ? PQresultErrorMessage(r.get()) : "";
            while (!why.empty() && why.back() == '\n')
                why.pop_back();
            throw pq_error("the peer ended the stream" + (why.empty() ? std::string() : ": " + why));
        }
        if (n == -2)
            throw pq_error("lost the stream from " + peer_.name + ": " + repl.error_message());

        // Nothing buffered: make what is queued durable, one flush at a time. (A full pipeline means
        // more is coming; max_unflushed bounds the wait then.)
        bool window_full = applies_in_flight >= max_in_flight;
        if (!window_full && flushes_in_flight == 0 && confirmable > flush_queued)
            queue_flush();

        // Status update if due (asking for a reply proves the link is alive), then wait.
        auto now = clock::now();
        if (now - last_status >= settings_.status_interval)
            send_status(true);
        if (!window_full && now - last_received >= settings_.receive_timeout)
            throw pq_error("nothing received from " + peer_.name + " for " +
                           std::to_string(settings_.receive_timeout.count()) + " ms");
        int side_socket = side.socket_awaiting_answer();
        pollfd p[3] = {{PQsocket(repl.get()), short(window_full ? 0 : POLLIN), 0},
                       {PQsocket(apply.get()), short(in_flight.empty() ? 0 : POLLIN), 0},
                       {side_socket, short(side_socket < 0 ? 0 : POLLIN), 0}};
        int timeout_ms = 100;  // wake for a stalled flush when it is due
        if (auto in = stalled_flush_in())
            timeout_ms = static_cast<int>(
                std::clamp<std::int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(*in).count() + 1, 0, 100));
        int rc = poll(p, 3, timeout_ms);
        if (rc < 0 && errno != EINTR)
            throw pq_error(std::string("poll failed: ") + std::strerror(errno));
    }
    PQputCopyEnd(repl.get(), nullptr);
    PQflush(repl.get());
}

}  // namespace meridian::replicator
