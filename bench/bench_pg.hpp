#pragma once

#include "dataset.hpp"
#include "pg.hpp"
#include "util.hpp"

#include <string>
#include <vector>

namespace bench {

struct PgBenchConfig {
    std::string conninfo;             // base libpq conninfo (PGHOST/PGPORT/PGUSER fill the rest)
    std::string db = "bench";         // dropped and recreated
    std::string extension = "meridian";  // or "vector" (pgvector), same SQL surface
    WireFormat format = WireFormat::binary;
    std::vector<int> efs;
    int m = 16, ef_construction = 64;
    std::size_t inserts = 2000;
    bool build_index = true;          // false: no index, exact scans (checks the client path only)
};

// Loads fm.train into a fresh database, builds the hnsw index and measures it, adding keys
// "pg.*" to r as it goes (so a failure part-way still leaves what was measured).
void run_pg(const PgBenchConfig &cfg, const FashionMnist &fm, const GroundTruth &gt, Results &r);

// Single-client passes over the queries against an already loaded and indexed database (for
// A/B comparisons of extension builds): one warm-up pass, then `passes` measured ones at
// hnsw.ef_search = ef; prints one line per measured pass (ms per 1,000 queries, QPS, recall@10).
void run_qps(const std::string &conninfo, const std::string &table, WireFormat format, int ef, int passes,
             const std::string &label, const FashionMnist &fm, const GroundTruth &gt);

}  // namespace bench
