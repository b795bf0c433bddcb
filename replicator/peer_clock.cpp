#include "peer_clock.hpp"

#include "core/walstream.hpp"
#include "log.hpp"
#include "pq.hpp"

#include <poll.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace meridian::replicator {

namespace {

using steady = std::chrono::steady_clock;

// The peer's clock as TimestampTz microseconds, read when the question is executed there, and
// which regions the peer hears ("name=true" when unavailable there, comma-separated).
constexpr const char *clock_query =
    "SELECT ((extract(epoch FROM clock_timestamp()) - 946684800) * 1000000)::bigint, "
    "coalesce((SELECT string_agg(region || '=' || unavailable::text, ',') FROM meridian.peer_freshness()), '')";

}  // namespace

peer_clock::peer_clock(std::string peer, std::string conninfo, std::string local_region, status_board &board,
                       const std::atomic<bool> &shutdown, std::chrono::milliseconds interval)
    : peer_(std::move(peer)), conninfo_(std::move(conninfo)), local_region_(std::move(local_region)), board_(board),
      shutdown_(shutdown), interval_(interval) {
    thread_ = std::thread([this] { run(); });
}

peer_clock::~peer_clock() {
    stop_ = true;
    if (thread_.joinable())
        thread_.join();
}

void peer_clock::run() {
    std::string last_failure;
    auto next = steady::now();
    connection conn;
    while (!stopping()) {
        if (steady::now() < next) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
        }
        next = steady::now() + interval_;
        try {
            if (!conn.is_open())
                conn = connection::open(conninfo_, {{"application_name", "meridian-replicator clock " + local_region_},
                                                    {"connect_timeout", "5"}});
            // Asynchronous, so a link that holds packets cannot stall the thread past the interval.
            std::int64_t sent = walstream::now_timestamptz();
            if (!PQsendQuery(conn.get(), clock_query))
                throw pq_error("could not ask for the clock: " + conn.error_message());
            auto deadline = steady::now() + std::max(interval_ * 2, std::chrono::milliseconds(2000));
            while (PQisBusy(conn.get())) {
                if (stopping())
                    return;
                if (steady::now() >= deadline)
                    throw pq_error("no answer to the clock question in time");
                pollfd p{PQsocket(conn.get()), POLLIN, 0};
                int rc = poll(&p, 1, 50);
                if (rc < 0 && errno != EINTR)
                    throw pq_error(std::string("poll failed: ") + std::strerror(errno));
                if (rc > 0 && PQconsumeInput(conn.get()) != 1)
                    throw pq_error("lost the connection: " + conn.error_message());
            }
            result r(PQgetResult(conn.get()));
            while (result extra{PQgetResult(conn.get())}) {
            }
            if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1)
                throw pq_error(std::string("the clock question failed: ") + (r ? PQresultErrorMessage(r.get()) : ""));
            board_.add_clock_sample(peer_, sent, std::stoll(PQgetvalue(r.get(), 0, 0)));
            status_board::peer_view view;
            view.fetched = steady::now();
            std::string list = PQgetvalue(r.get(), 0, 1);
            for (std::size_t start = 0; start < list.size();) {
                std::size_t end = list.find(',', start);
                if (end == std::string::npos)
                    end = list.size();
                std::string item = list.substr(start, end - start);
                std::size_t eq = item.rfind('=');
                if (eq != std::string::npos)
                    view.unavailable[item.substr(0, eq)] = item.substr(eq + 1) == "true";
                start = end + 1;
            }
            board_.set_view(peer_, std::move(view));
            if (!last_failure.empty()) {
                log_line("clock of region " + peer_ + " readable again");
                last_failure.clear();
                board_.note_reachable_again(peer_);
            }
        } catch (const std::exception &e) {
            conn.close();
            std::string why = describe(e);
            if (why != last_failure)
                log_line("cannot read the clock of region " + peer_ + ": " + why);
            last_failure = why;
        }
    }
}

}  // namespace meridian::replicator
