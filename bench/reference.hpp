#pragma once

#include "dataset.hpp"
#include "util.hpp"

#include <vector>

namespace bench {

// Builds an in-memory hnswlib index of fm.train (single thread) and measures recall@10, QPS and
// latency per ef over the first gt.nq test images. Keys are prefixed "hnswlib.".
Results run_reference(const FashionMnist &fm, const GroundTruth &gt, const std::vector<int> &efs, int m,
                      int ef_construction);

}  // namespace bench
