#include "supervisor.hpp"

#include "catalog.hpp"
#include "core/error.hpp"
#include "core/partition.hpp"
#include "core/walstream.hpp"
#include "log.hpp"
#include "peer_clock.hpp"
#include "peer_stream.hpp"
#include "pq.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <thread>
#include <vector>

namespace meridian::replicator {

namespace {

using clock = std::chrono::steady_clock;

class supervisor {
public:
    supervisor(const supervisor_settings &s, const std::atomic<bool> &shutdown) : settings_(s), shutdown_(shutdown) {}

    int run() {
        auto backoff = std::chrono::milliseconds(500);
        while (!shutdown_) {
            try {
                connect();
                backoff = std::chrono::milliseconds(500);
                loop();
            } catch (const std::exception &e) {
                if (shutdown_)
                    break;
                log_line("local database: " + describe(e) + "; retrying in " + std::to_string(backoff.count()) + " ms");
                local_.close();
                sleep(backoff);
                backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
            }
        }
        log_line("shutting down");
        streams_.clear();  // stops and joins every stream
        clocks_.clear();
        try {
            if (!local_.is_open())
                connect();
            publish_progress(true);
        } catch (const std::exception &e) {
            log_line("could not record the streams as disconnected: " + describe(e));
        }
        log_line("stopped");
        return 0;
    }

private:
    void sleep(std::chrono::milliseconds d) {
        auto until = clock::now() + d;
        while (!shutdown_ && clock::now() < until)
            std::this_thread::sleep_for(std::min<clock::duration>(std::chrono::milliseconds(50), until - clock::now()));
    }

    void connect() {
        local_ = connection::open(settings_.local_conninfo, {{"application_name", "meridian-replicator"}});
        // Progress rows are advisory and rewritten constantly: no need to wait for a flush.
        local_.exec("SET synchronous_commit = off", PGRES_COMMAND_OK);
        local_.prepare("meridian_heartbeat", "SELECT meridian.emit_heartbeat()");  // 100 times a second
    }

    void loop() {
        auto next_catalog = clock::time_point{}, next_heartbeat = clock::time_point{};
        auto next_progress = clock::time_point{}, next_purge = clock::now() + std::chrono::seconds(5);
        while (!shutdown_) {
            auto now = clock::now();
            if (now >= next_catalog) {
                refresh_catalog();
                next_catalog = now + settings_.catalog_interval;
            }
            if (now >= next_heartbeat) {
                local_.exec_prepared("meridian_heartbeat");
                next_heartbeat = std::max(next_heartbeat + settings_.heartbeat_interval, now);
            }
            if (now >= next_progress) {
                publish_progress(false);
                judge_partitions();
                next_progress = now + settings_.progress_interval;
            }
            if (now >= next_purge) {
                purge_tombstones();
                next_purge = now + settings_.purge_interval;
            }
            auto wake = std::min({next_catalog, next_heartbeat, next_progress, next_purge});
            auto d = wake - clock::now();
            if (d > clock::duration::zero())
                std::this_thread::sleep_for(std::min<clock::duration>(d, std::chrono::milliseconds(50)));
        }
    }

    void refresh_catalog() {
        region_catalog c = load_catalog(local_);
        if (c.local != local_region_) {
            if (!local_region_.empty())
                log_line("the local region changed from " + local_region_ + " to " + c.local + ": restarting every stream");
            streams_.clear();
            clocks_.clear();
            local_region_ = c.local;
            set_log_region(c.local);
            log_line("local region " + c.local + ", " + std::to_string(c.peers.size()) + " peer(s)");
        }
        // Stop the streams of dropped or changed peers, start the missing ones.
        for (auto it = streams_.begin(); it != streams_.end();) {
            auto p = std::find_if(c.peers.begin(), c.peers.end(), [&](const peer_region &r) { return r.name == it->first; });
            if (p == c.peers.end() || !(*p == it->second->peer())) {
                std::string name = it->first;
                log_line("region " + name + (p == c.peers.end() ? " was dropped" : " changed") + ": stopping its stream");
                it = streams_.erase(it);  // joins the stream's thread
                clocks_.erase(name);
                partitioned_.erase(name);
                board_.forget(name);
                published_.erase(name);
            } else {
                ++it;
            }
        }
        for (const peer_region &p : c.peers) {
            if (streams_.count(p.name))
                continue;
            stream_settings s;
            s.local_conninfo = settings_.local_conninfo;
            s.local_region = c.local;
            clocks_.emplace(p.name, std::make_unique<peer_clock>(p.name, p.conninfo, c.local, board_, shutdown_));
            streams_.emplace(p.name, std::make_unique<peer_stream>(s, p, board_, shutdown_));
        }
        keep_synchronous_standby_names(c);
    }

    // Quorum writes (docs/consistency.md): synchronous_standby_names = 'ANY w-1 ("peer", ...)', the
    // peers' replicators streaming with application_name = their region. ALTER SYSTEM cannot run
    // in a function, so the replicator, not meridian.set_write_quorum, applies it.
    void keep_synchronous_standby_names(const region_catalog &c) {
        result r = local_.exec("SELECT meridian.write_quorum(), current_setting('synchronous_standby_names')");
        int w = std::stoi(value(r, 0, 0));
        write_quorum_ = w;
        std::string current = value(r, 0, 1);
        std::string wanted;
        if (w > 1 && !c.peers.empty()) {
            wanted = "ANY " + std::to_string(std::min<std::size_t>(w - 1, c.peers.size())) + " (";
            for (std::size_t i = 0; i < c.peers.size(); i++)
                wanted += (i ? ", \"" : "\"") + c.peers[i].name + "\"";  // names: [a-z0-9_-] only
            wanted += ")";
        }
        if (wanted == current)
            return;
        local_.exec("ALTER SYSTEM SET synchronous_standby_names = '" + wanted + "'", PGRES_COMMAND_OK);
        local_.exec("SELECT pg_catalog.pg_reload_conf()");
        log_line("write quorum " + std::to_string(w) + ": synchronous_standby_names set to '" + wanted + "'");
    }

    // Bounded reads during a partition (docs/consistency.md): a peer heard by fewer than w
    // regions cannot acknowledge quorum writes, and bounded reads here need not wait for it while
    // it is unavailable (src/core/partition). This region's view comes from its shared memory,
    // the others' from what they said in the last second (peer_clock).
    void judge_partitions() {
        if (streams_.empty())
            return;
        std::map<std::string, bool> unavailable_here;
        result r = local_.exec("SELECT region, unavailable FROM meridian.peer_freshness()");
        for (int i = 0; i < PQntuples(r.get()); i++)
            unavailable_here[value(r, i, 0)] = std::string(value(r, i, 1)) == "t";
        auto views = board_.views();
        auto now = clock::now();
        std::string names = "{", flags = "{";
        for (const auto &[p, stream] : streams_) {
            auto here = unavailable_here.find(p);
            bool heard_here = here != unavailable_here.end() && !here->second;
            std::vector<partition::view> others;
            for (const auto &[q, other] : streams_) {
                if (q == p)
                    continue;
                auto v = views.find(q);
                partition::view said = partition::view::unknown;
                if (v != views.end() && now - v->second.fetched <= std::chrono::seconds(1)) {
                    auto u = v->second.unavailable.find(p);
                    if (u != v->second.unavailable.end())
                        said = u->second ? partition::view::does_not_hear : partition::view::hears;
                }
                others.push_back(said);
            }
            partition::judgement j = partition::judge(heard_here, others, write_quorum_);
            if (j.cut_off != partitioned_[p])
                log_line("region " + p + (j.cut_off ? " is cut off from a write quorum (heard by " + std::to_string(j.hearing) +
                                                          " of the " + std::to_string(write_quorum_) + " regions needed)"
                                                    : " is no longer cut off from a write quorum"));
            partitioned_[p] = j.cut_off;
            names += (names.size() > 1 ? ",\"" : "\"") + p + "\"";
            flags += std::string(flags.size() > 1 ? "," : "") + (j.cut_off ? "t" : "f");
        }
        names += "}";
        flags += "}";
        local_.exec_params("SELECT meridian.note_peer_partitioned(r, p) FROM unnest($1::text[], $2::boolean[]) AS t(r, p)",
                           {names.c_str(), flags.c_str()});
    }

    void publish_progress(bool all_disconnected) {
        for (auto &[name, s] : board_.snapshot()) {
            auto seen = published_.find(name);
            if (!all_disconnected && seen != published_.end() && seen->second == s.version)
                continue;
            std::string connected = (s.connected && !all_disconnected) ? "true" : "false";
            std::string lsn = s.applied_lsn ? walstream::lsn_to_string(s.applied_lsn) : "";
            std::string hb = s.last_heartbeat ? std::to_string(s.last_heartbeat) : "";
            try {
                local_.exec_params(
                    "INSERT INTO meridian.region_progress AS p (region, connected, applied_lsn, last_heartbeat, last_error) "
                    "SELECT $1, $2::boolean, $3::pg_lsn, "
                    "       timestamptz '2000-01-01 00:00:00+00' + $4::bigint * interval '1 microsecond', $5 "
                    "WHERE EXISTS (SELECT FROM meridian.regions r WHERE r.name = $1 AND NOT r.is_local) "
                    "ON CONFLICT (region) DO UPDATE SET connected = excluded.connected, "
                    "  applied_lsn = coalesce(excluded.applied_lsn, p.applied_lsn), "
                    "  last_heartbeat = coalesce(excluded.last_heartbeat, p.last_heartbeat), "
                    "  last_error = excluded.last_error",
                    {name.c_str(), connected.c_str(), lsn.empty() ? nullptr : lsn.c_str(), hb.empty() ? nullptr : hb.c_str(),
                     s.last_error.empty() ? nullptr : s.last_error.c_str()},
                    PGRES_COMMAND_OK);
                published_[name] = s.version;
            } catch (const pq_error &e) {
                if (!local_.is_open() || PQstatus(local_.get()) != CONNECTION_OK)
                    throw;
                log_line("could not record the state of region " + name + ": " + e.what());
            }
        }
    }

    void purge_tombstones() {
        try {
            result r = local_.exec("SELECT meridian.purge_tombstones()");
            std::string n = value(r, 0, 0);
            if (n != "0")
                log_line("purged " + n + " tombstone(s) older than meridian.tombstone_retention");
        } catch (const pq_error &e) {
            if (PQstatus(local_.get()) != CONNECTION_OK)
                throw;
            log_line(std::string("could not purge tombstones: ") + e.what());
        }
    }

    supervisor_settings settings_;
    const std::atomic<bool> &shutdown_;
    connection local_;
    std::string local_region_;
    status_board board_;
    std::map<std::string, std::unique_ptr<peer_stream>> streams_;
    std::map<std::string, std::unique_ptr<peer_clock>> clocks_;
    int write_quorum_ = 1;
    std::map<std::string, bool> partitioned_;
    std::map<std::string, std::uint64_t> published_;
};

}  // namespace

int run_supervisor(const supervisor_settings &settings, const std::atomic<bool> &shutdown) {
    return supervisor(settings, shutdown).run();
}

}  // namespace meridian::replicator
