#include "log.hpp"

#include "core/error.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace meridian::replicator {

namespace {
std::mutex log_mutex;
std::string region_tag;
}  // namespace

void set_log_region(const std::string &local_region) {
    std::lock_guard<std::mutex> g(log_mutex);
    region_tag = local_region;
}

void log_line(const std::string &message) {
    using namespace std::chrono;
    auto now = system_clock::now();
    std::time_t secs = system_clock::to_time_t(now);
    int ms = static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    // One event, one line: server messages carry "\nHINT: ..." and the like.
    std::string line = message;
    while (!line.empty() && line.back() == '\n')
        line.pop_back();
    for (std::size_t i; (i = line.find('\n')) != std::string::npos;)
        line.replace(i, 1, " ");
    std::lock_guard<std::mutex> g(log_mutex);
    std::fprintf(stderr, "%s.%03d UTC meridian-replicator[%s]: %s\n", stamp, ms,
                 region_tag.empty() ? "-" : region_tag.c_str(), line.c_str());
    std::fflush(stderr);
}

std::string describe(const std::exception &e) {
    std::string s = e.what();
    if (auto *m = dynamic_cast<const meridian::error *>(&e)) {
        if (!m->detail().empty())
            s += " (" + m->detail() + ")";
        if (!m->hint().empty())
            s += " HINT: " + m->hint();
    }
    return s;
}

}  // namespace meridian::replicator
