#pragma once

#include "dataset.hpp"

#include <string>

namespace bench {

struct DemoConfig {
    std::string conninfo;
    std::string db = "demo";
    std::string extension = "meridian";
    std::size_t queries = 5;
    bool build_index = true;  // false: no index (checks the client path only)
};

// Idempotent: creates the database and extension if missing, reuses a fully loaded table,
// rebuilds the index (printing progress) and runs `queries` k-NN queries against brute force.
void run_demo(const DemoConfig &cfg, const FashionMnist &fm);

}  // namespace bench
