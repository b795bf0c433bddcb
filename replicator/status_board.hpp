// What the replicator knows about each peer stream, shared between the stream threads (writers)
// and the supervisor, which publishes it to meridian.region_progress.
#pragma once

#include "core/clock_bound.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <mutex>
#include <string>

namespace meridian::replicator {

struct peer_state {
    bool connected = false;
    std::uint64_t applied_lsn = 0;      // end_lsn of the last source transaction applied here
    std::int64_t last_heartbeat = 0;    // the peer's clock in the last heartbeat processed (TimestampTz), 0 = none
    std::string last_error;             // empty when fine
    std::uint64_t transactions = 0;     // applied since start
    std::uint64_t version = 1;          // bumped on every change, so the supervisor writes only what changed
};

class status_board {
public:
    template <typename F> void update(const std::string &peer, F &&f) {
        std::lock_guard<std::mutex> g(m_);
        peer_state &s = peers_[peer];
        f(s);
        s.version++;
    }
    std::map<std::string, peer_state> snapshot() const {
        std::lock_guard<std::mutex> g(m_);
        return peers_;
    }
    void forget(const std::string &peer) {
        std::lock_guard<std::mutex> g(m_);
        peers_.erase(peer);
        clocks_.erase(peer);
        views_.erase(peer);
        reachable_again_.erase(peer);
    }

    // peer_clock answers again after failing (a link or a server is back): a stream waiting out
    // its reconnect backoff retries at once instead of up to max_backoff later.
    void note_reachable_again(const std::string &peer) {
        std::lock_guard<std::mutex> g(m_);
        reachable_again_[peer]++;
    }
    std::uint64_t times_reachable_again(const std::string &peer) const {
        std::lock_guard<std::mutex> g(m_);
        auto it = reachable_again_.find(peer);
        return it == reachable_again_.end() ? 0 : it->second;
    }

    // Clock samples of a peer (peer_clock) and the local time a peer's timestamp is at the latest
    // (the stream, for watermarks); all times in microseconds since 2000-01-01 (TimestampTz).
    void add_clock_sample(const std::string &peer, std::int64_t sent_local, std::int64_t peer_clock) {
        std::lock_guard<std::mutex> g(m_);
        clocks_[peer].add_sample(sent_local, peer_clock);
    }
    std::optional<std::int64_t> peer_time_to_local(const std::string &peer, std::int64_t peer_time,
                                                   std::int64_t now_local) const {
        std::lock_guard<std::mutex> g(m_);
        auto it = clocks_.find(peer);
        if (it == clocks_.end())
            return std::nullopt;
        return it->second.to_local_lower(peer_time, now_local);
    }

    // What a peer says about the others (meridian.peer_freshness() there, read by peer_clock):
    // region -> unavailable there. For the partition judgement of the supervisor.
    struct peer_view {
        std::chrono::steady_clock::time_point fetched;
        std::map<std::string, bool> unavailable;
    };
    void set_view(const std::string &peer, peer_view v) {
        std::lock_guard<std::mutex> g(m_);
        views_[peer] = std::move(v);
    }
    std::map<std::string, peer_view> views() const {
        std::lock_guard<std::mutex> g(m_);
        return views_;
    }

private:
    mutable std::mutex m_;
    std::map<std::string, peer_state> peers_;
    std::map<std::string, clockbound::offset_bound> clocks_;
    std::map<std::string, peer_view> views_;
    std::map<std::string, std::uint64_t> reachable_again_;
};

}  // namespace meridian::replicator
