// peer_clock: one thread per peer that asks the peer for its clock over an ordinary libpq
// connection every `interval` and records each answer with the local time the question was sent
// (status_board::add_clock_sample), together with which regions the peer hears
// (status_board::set_view, for the supervisor's partition judgement). The stream of that peer turns the peer-clock timestamps of
// heartbeats into local-clock watermarks with these samples (src/core/clock_bound.hpp), so that
// skew between the regions' clocks can only over-report staleness (docs/consistency.md).
#pragma once

#include "status_board.hpp"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace meridian::replicator {

class peer_clock {
public:
    peer_clock(std::string peer, std::string conninfo, std::string local_region, status_board &board,
               const std::atomic<bool> &shutdown, std::chrono::milliseconds interval = std::chrono::milliseconds(200));
    ~peer_clock();  // stops and joins
    peer_clock(const peer_clock &) = delete;
    peer_clock &operator=(const peer_clock &) = delete;

private:
    void run();
    bool stopping() const { return stop_ || shutdown_; }

    std::string peer_, conninfo_, local_region_;
    status_board &board_;
    const std::atomic<bool> &shutdown_;
    std::chrono::milliseconds interval_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace meridian::replicator
