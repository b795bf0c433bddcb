// Small helpers shared by the benchmark and demo tools: timing, latency statistics, command-line
// options and the key/value result files the report is assembled from.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

class Stopwatch {
public:
    Stopwatch() : start_(std::chrono::steady_clock::now()) {}
    double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }
    void reset() { start_ = std::chrono::steady_clock::now(); }

private:
    std::chrono::steady_clock::time_point start_;
};

// Nearest-rank percentile (p in 0..100) of a sample, in the sample's unit.
inline double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    std::size_t rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    rank = std::min(std::max<std::size_t>(rank, 1), v.size());
    return v[rank - 1];
}

// "--name value" options after the subcommand; "--flag" alone means "1".
class Args {
public:
    Args(int argc, char **argv, int first) {
        for (int i = first; i < argc; ++i) {
            std::string a = argv[i];
            if (a.rfind("--", 0) != 0) throw std::runtime_error("unexpected argument " + a);
            a = a.substr(2);
            if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) kv_[a] = argv[++i];
            else kv_[a] = "1";
        }
    }
    std::string str(const std::string &k, const std::string &def) const {
        auto it = kv_.find(k);
        return it == kv_.end() ? def : it->second;
    }
    long num(const std::string &k, long def) const {
        auto it = kv_.find(k);
        return it == kv_.end() ? def : std::stol(it->second);
    }
    bool flag(const std::string &k) const { return kv_.count(k) && kv_.at(k) != "0"; }

private:
    std::map<std::string, std::string> kv_;
};

// Results as "key<TAB>value" lines, so the reference and the PostgreSQL runs (separate processes,
// with a cluster started in between) can be merged into one report.
using Results = std::map<std::string, std::string>;

inline void write_results(const std::string &path, const Results &r) {
    std::ofstream out(path, std::ios::trunc);
    for (const auto &[k, v] : r) out << k << '\t' << v << '\n';
    if (!out) throw std::runtime_error("cannot write " + path);
}

inline Results read_results(const std::string &path) {
    Results r;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        auto tab = line.find('\t');
        if (tab != std::string::npos) r[line.substr(0, tab)] = line.substr(tab + 1);
    }
    return r;
}

inline std::string fmt(const char *f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

}  // namespace bench
