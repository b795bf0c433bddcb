// One peer's stream: a thread that streams the peer's changes from its slot (named after the local
// region) over the replication protocol, verifies each message with the peer's registered key,
// applies transactions through meridian.apply_transaction on a local session that owns the peer's
// replication origin, and reports the flush position once the local commit is durable. Any failure
// ends the session; the thread logs it, shows it in the status board and starts over with backoff
// from the origin's progress, so nothing is skipped and nothing applied twice.
#pragma once

#include "catalog.hpp"
#include "status_board.hpp"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace meridian::replicator {

struct stream_settings {
    std::string local_conninfo;
    std::string local_region;
    std::chrono::milliseconds status_interval{1000};   // standby status update at least this often
    std::chrono::milliseconds receive_timeout{5000};   // nothing from the peer this long: reconnect
    std::chrono::milliseconds max_backoff{5000};
};

class peer_stream {
public:
    peer_stream(stream_settings settings, peer_region peer, status_board &board, const std::atomic<bool> &shutdown);
    ~peer_stream();  // stops and joins
    peer_stream(const peer_stream &) = delete;
    peer_stream &operator=(const peer_stream &) = delete;

    const peer_region &peer() const noexcept { return peer_; }
    void stop() noexcept { stop_ = true; }

private:
    void run();
    void session();
    bool stopping() const noexcept { return stop_ || shutdown_; }
    // Sleeps d, or less when stopping or when the peer was reachable again (status_board) more
    // than `reachable` times: counted before the attempt that failed, so none is missed.
    void sleep_until_retry(std::chrono::milliseconds d, std::uint64_t reachable) const;

    stream_settings settings_;
    peer_region peer_;
    status_board &board_;
    const std::atomic<bool> &shutdown_;
    std::atomic<bool> stop_{false};
    bool progressed_ = false;  // the current session applied or received something
    std::thread thread_;
};

}  // namespace meridian::replicator
