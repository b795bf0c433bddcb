// Fashion-MNIST as the ann-benchmarks "fashion-mnist-784-euclidean" data set:
//   base    = the 60,000 training images, 784 float32 dimensions holding the raw pixel values 0..255
//   queries = the first 1,000 test images
//   ground truth = exact top-10 by L2, computed once by brute force and cached.
// Pixels are kept as uint8 (what the IDX files hold); float copies are made where needed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bench {

constexpr int kDim = 784;
constexpr int kK = 10;  // recall@10

// One IDX image file (magic 0x00000803): n images of rows*cols uint8 pixels, row-major.
struct Images {
    std::size_t n = 0;
    int dim = 0;
    std::vector<std::uint8_t> pixels;  // n * dim

    const std::uint8_t *row(std::size_t i) const { return pixels.data() + i * static_cast<std::size_t>(dim); }
    void to_float(std::size_t i, float *out) const;
    std::vector<float> to_float(std::size_t i) const;
};

// One IDX label file (magic 0x00000801).
std::vector<std::uint8_t> read_idx_labels(const std::string &gz_path);
// Reads a gzip-compressed IDX image file; limit > 0 keeps only the first `limit` images.
Images read_idx_images(const std::string &gz_path, std::size_t limit = 0);

// The Fashion-MNIST class names, by label.
const char *class_name(int label);

// Exact squared L2 distance between two uint8 images. Integer arithmetic, so it is exact
// (the float sum of 784 squared differences up to 255^2 is not), and ties are real ties.
std::uint32_t l2sq_u8(const std::uint8_t *a, const std::uint8_t *b, int dim);

// Exact top-k neighbors of each query in `base` (ids are base row numbers), by brute force.
struct GroundTruth {
    std::size_t nq = 0;
    int k = 0;
    std::vector<std::int32_t> ids;     // nq * k, nearest first (ties by smaller id)
    std::vector<std::uint32_t> dist2;  // nq * k squared distances

    const std::int32_t *ids_of(std::size_t q) const { return ids.data() + q * k; }
    std::uint32_t kth_dist2(std::size_t q) const { return dist2[q * k + k - 1]; }
};
GroundTruth brute_force(const Images &base, const Images &queries, std::size_t nq, int k, int threads);

// Loads the ground truth cached in `path`, or computes and writes it. The cache records the
// shape and a checksum of the inputs and is recomputed when they do not match.
GroundTruth cached_ground_truth(const std::string &path, const Images &base, const Images &queries,
                                std::size_t nq, int k, int threads, bool verbose);

// recall@k of one answer: how many of the returned ids are true k-nearest neighbors, counting an
// id as correct when its exact distance is <= the k-th true distance (so ties at the boundary
// are not punished, as in ann-benchmarks), divided by k. Duplicate or unknown ids count as wrong.
double recall_at_k(const GroundTruth &gt, std::size_t q, const Images &base, const Images &queries,
                   const std::int64_t *result_ids, std::size_t n_results);

// Everything the benchmark and the demo read, from the Debian dataset-fashion-mnist files.
struct FashionMnist {
    Images train;  // base vectors
    Images test;   // queries (first nq) and rows for the insert test (after them)
    std::vector<std::uint8_t> train_labels, test_labels;
};
FashionMnist load_fashion_mnist(const std::string &dir, bool with_labels);

}  // namespace bench
