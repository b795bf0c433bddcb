#include "peer_stream.hpp"

#include "core/error.hpp"
#include "core/protocol.hpp"
#include "core/walstream.hpp"
#include "log.hpp"
#include "pq.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace meridian::replicator {

namespace {

using clock = std::chrono::steady_clock;

std::int64_t now_timestamptz() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count() -
           walstream::postgres_epoch_offset_us;
}

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

void peer_stream::sleep_interruptibly(std::chrono::milliseconds d) const {
    auto until = clock::now() + d;
    while (!stopping() && clock::now() < until)
        std::this_thread::sleep_for(std::min<clock::duration>(std::chrono::milliseconds(50), until - clock::now()));
}

void peer_stream::run() {
    std::chrono::milliseconds backoff(500);
    while (!stopping()) {
        progressed_ = false;
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
        sleep_interruptibly(backoff);
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
    auto last_received = clock::now();
    auto send_status = [&](bool reply_requested) {
        auto msg = walstream::status_update(flushed, flushed, flushed, now_timestamptz(), reply_requested);
        if (PQputCopyData(repl.get(), reinterpret_cast<const char *>(msg.data()), static_cast<int>(msg.size())) != 1 ||
            PQflush(repl.get()) < 0)
            throw pq_error("could not send a status update to " + peer_.name + ": " + repl.error_message());
        last_status = clock::now();
    };

    // Group flush: applied transactions commit without waiting for their WAL flush; their end
    // LSNs (and the positions of heartbeats and keepalives received after them) wait in
    // `confirmable` until meridian.flush_wal() has made every commit of the apply session durable.
    // The flush is done as soon as no further message is buffered on the stream, so a lone
    // transaction is confirmed at once, and at least every max_unflushed transactions or
    // max_unflushed_time under a continuous stream.
    constexpr int max_unflushed = 64;
    constexpr auto max_unflushed_time = std::chrono::milliseconds(20);
    std::uint64_t confirmable = flushed;
    int unflushed = 0;  // transactions applied since the last flush
    auto first_unflushed = clock::time_point{};
    auto flush = [&] {
        result r = apply.exec("SELECT meridian.flush_wal()");
        unflushed = 0;
        flushed = std::max(flushed, confirmable);
        send_status(false);  // promptly: a synchronous (quorum) commit at the peer waits for it
    };
    // A position before which everything received is applied: confirmed at once when nothing
    // applied is waiting for a flush, else with the next flush.
    auto reached = [&](std::uint64_t lsn) {
        confirmable = std::max(confirmable, lsn);
        if (unflushed == 0)
            flushed = std::max(flushed, confirmable);
    };

    const std::string apply_sql = "SELECT meridian.apply_transaction($1)";
    while (!stopping()) {
        char *buf = nullptr;
        int n = PQgetCopyData(repl.get(), &buf, 1);
        if (n == 0 && unflushed > 0) {
            // Nothing buffered: read what has arrived meanwhile; flush when that is nothing too.
            if (PQconsumeInput(repl.get()) != 1)
                throw pq_error("lost the stream from " + peer_.name + ": " + repl.error_message());
            n = PQgetCopyData(repl.get(), &buf, 1);
            if (n == 0) {
                flush();
                continue;
            }
        }
        if (n > 0) {
            std::unique_ptr<char, decltype(&PQfreemem)> owned(buf, &PQfreemem);
            if (unflushed > 0 && (unflushed >= max_unflushed || clock::now() - first_unflushed >= max_unflushed_time))
                flush();
            last_received = clock::now();
            auto m = walstream::parse_server_message(reinterpret_cast<const std::uint8_t *>(buf), n);
            if (m.type == walstream::server_message::kind::keepalive) {
                // Everything received so far is applied, so the walsender's position is confirmed too.
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
                if (t->end_lsn <= applied)
                    continue;  // resent after a restart: applied already
                apply.exec_binary_param(apply_sql, m.payload, static_cast<int>(m.payload_size));
                applied = t->end_lsn;
                confirmable = std::max(confirmable, applied);
                if (unflushed++ == 0)
                    first_unflushed = clock::now();
                board_.update(peer_.name, [&](peer_state &s) {
                    s.applied_lsn = applied;
                    s.transactions++;
                });
            } else {
                auto &h = std::get<protocol::heartbeat>(msg);
                if (h.region != peer_.name)
                    throw meridian::error("08P01", "heartbeat from region \"" + h.region + "\" on the stream of region \"" +
                                                       peer_.name + "\"");
                progressed_ = true;
                // Every transaction committed before the heartbeat came before it and is applied.
                reached(h.wal_lsn);
                board_.update(peer_.name, [&](peer_state &s) { s.last_heartbeat = h.time; });
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

        // Nothing buffered: status update if due (asking for a reply proves the link is alive), then wait.
        auto now = clock::now();
        if (now - last_status >= settings_.status_interval)
            send_status(true);
        if (now - last_received >= settings_.receive_timeout)
            throw pq_error("nothing received from " + peer_.name + " for " +
                           std::to_string(settings_.receive_timeout.count()) + " ms");
        pollfd p{PQsocket(repl.get()), POLLIN, 0};
        int rc = poll(&p, 1, 100);
        if (rc < 0 && errno != EINTR)
            throw pq_error(std::string("poll failed: ") + std::strerror(errno));
        if (rc > 0 && PQconsumeInput(repl.get()) != 1)
            throw pq_error("lost the stream from " + peer_.name + ": " + repl.error_message());
    }
    PQputCopyEnd(repl.get(), nullptr);
    PQflush(repl.get());
}

}  // namespace meridian::replicator
