#include "dataset.hpp"

#include "util.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <thread>
#include <unordered_set>

namespace bench {

namespace {

struct GzCloser {
    void operator()(gzFile_s *f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

GzFile open_gz(const std::string &path) {
    GzFile f(gzopen(path.c_str(), "rb"));
    if (!f) throw std::runtime_error("cannot open " + path + " (is dataset-fashion-mnist installed?)");
    gzbuffer(f.get(), 1 << 20);
    return f;
}

void read_exact(gzFile_s *f, void *buf, std::size_t len, const std::string &path) {
    auto *p = static_cast<unsigned char *>(buf);
    while (len > 0) {
        unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(len, 1u << 30));
        int got = gzread(f, p, chunk);
        if (got <= 0) {
            int errnum = 0;
            const char *msg = gzerror(f, &errnum);
            throw std::runtime_error("truncated or corrupt IDX file " + path + (errnum ? std::string(": ") + msg : ""));
        }
        p += got;
        len -= static_cast<std::size_t>(got);
    }
}

std::uint32_t read_be32(gzFile_s *f, const std::string &path) {
    unsigned char b[4];
    read_exact(f, b, 4, path);
    return (std::uint32_t(b[0]) << 24) | (std::uint32_t(b[1]) << 16) | (std::uint32_t(b[2]) << 8) | b[3];
}

std::uint64_t checksum(const Images &im, std::size_t n) {
    // FNV-1a over the pixels actually used: enough to notice a different data set.
    std::uint64_t h = 1469598103934665603ull;
    const std::size_t len = n * static_cast<std::size_t>(im.dim);
    for (std::size_t i = 0; i < len; ++i) h = (h ^ im.pixels[i]) * 1099511628211ull;
    return h;
}

}  // namespace

void Images::to_float(std::size_t i, float *out) const {
    const std::uint8_t *r = row(i);
    for (int d = 0; d < dim; ++d) out[d] = static_cast<float>(r[d]);
}

std::vector<float> Images::to_float(std::size_t i) const {
    std::vector<float> v(static_cast<std::size_t>(dim));
    to_float(i, v.data());
    return v;
}

Images read_idx_images(const std::string &gz_path, std::size_t limit) {
    GzFile f = open_gz(gz_path);
    if (read_be32(f.get(), gz_path) != 0x00000803u) throw std::runtime_error(gz_path + " is not an IDX image file");
    Images im;
    std::size_t n = read_be32(f.get(), gz_path);
    std::size_t rows = read_be32(f.get(), gz_path), cols = read_be32(f.get(), gz_path);
    im.dim = static_cast<int>(rows * cols);
    im.n = (limit > 0 && limit < n) ? limit : n;
    im.pixels.resize(im.n * static_cast<std::size_t>(im.dim));
    read_exact(f.get(), im.pixels.data(), im.pixels.size(), gz_path);
    return im;
}

std::vector<std::uint8_t> read_idx_labels(const std::string &gz_path) {
    GzFile f = open_gz(gz_path);
    if (read_be32(f.get(), gz_path) != 0x00000801u) throw std::runtime_error(gz_path + " is not an IDX label file");
    std::vector<std::uint8_t> labels(read_be32(f.get(), gz_path));
    read_exact(f.get(), labels.data(), labels.size(), gz_path);
    return labels;
}

const char *class_name(int label) {
    static const char *const names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return (label >= 0 && label < 10) ? names[label] : "?";
}

std::uint32_t l2sq_u8(const std::uint8_t *a, const std::uint8_t *b, int dim) {
    std::uint32_t s = 0;
    for (int d = 0; d < dim; ++d) {
        const std::int32_t diff = std::int32_t(a[d]) - std::int32_t(b[d]);
        s += static_cast<std::uint32_t>(diff * diff);
    }
    return s;
}

GroundTruth brute_force(const Images &base, const Images &queries, std::size_t nq, int k, int threads) {
    if (nq > queries.n) throw std::runtime_error("not enough query images");
    GroundTruth gt;
    gt.nq = nq;
    gt.k = k;
    gt.ids.resize(nq * k);
    gt.dist2.resize(nq * k);
    auto work = [&](std::size_t from, std::size_t to) {
        std::vector<std::pair<std::uint32_t, std::int32_t>> all(base.n);
        for (std::size_t q = from; q < to; ++q) {
            for (std::size_t i = 0; i < base.n; ++i)
                all[i] = {l2sq_u8(queries.row(q), base.row(i), base.dim), static_cast<std::int32_t>(i)};
            std::partial_sort(all.begin(), all.begin() + k, all.end());
            for (int j = 0; j < k; ++j) {
                gt.dist2[q * k + j] = all[j].first;
                gt.ids[q * k + j] = all[j].second;
            }
        }
    };
    threads = std::max(1, threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(work, nq * t / threads, nq * (t + 1) / threads);
    for (auto &th : pool) th.join();
    return gt;
}

GroundTruth cached_ground_truth(const std::string &path, const Images &base, const Images &queries,
                                std::size_t nq, int k, int threads, bool verbose) {
    struct Header {
        char magic[8];
        std::uint64_t nbase, nq, k, dim, base_sum, query_sum;
    } want{};
    std::memcpy(want.magic, "MRDNGT01", 8);
    want.nbase = base.n;
    want.nq = nq;
    want.k = static_cast<std::uint64_t>(k);
    want.dim = static_cast<std::uint64_t>(base.dim);
    want.base_sum = checksum(base, base.n);
    want.query_sum = checksum(queries, nq);

    GroundTruth gt;
    gt.nq = nq;
    gt.k = k;
    gt.ids.resize(nq * k);
    gt.dist2.resize(nq * k);
    {
        std::ifstream in(path, std::ios::binary);
        Header have{};
        if (in && in.read(reinterpret_cast<char *>(&have), sizeof have) && std::memcmp(&have, &want, sizeof have) == 0 &&
            in.read(reinterpret_cast<char *>(gt.ids.data()), gt.ids.size() * sizeof(std::int32_t)) &&
            in.read(reinterpret_cast<char *>(gt.dist2.data()), gt.dist2.size() * sizeof(std::uint32_t))) {
            if (verbose) std::fprintf(stderr, "ground truth: cached in %s\n", path.c_str());
            return gt;
        }
    }
    if (verbose) std::fprintf(stderr, "ground truth: brute force, %zu queries x %zu base vectors ...\n", nq, base.n);
    Stopwatch sw;
    gt = brute_force(base, queries, nq, k, threads);
    if (verbose) std::fprintf(stderr, "ground truth: computed in %.1f s, cached in %s\n", sw.seconds(), path.c_str());
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char *>(&want), sizeof want);
        out.write(reinterpret_cast<const char *>(gt.ids.data()), gt.ids.size() * sizeof(std::int32_t));
        out.write(reinterpret_cast<const char *>(gt.dist2.data()), gt.dist2.size() * sizeof(std::uint32_t));
        if (!out) throw std::runtime_error("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp + " to " + path);
    return gt;
}

double recall_at_k(const GroundTruth &gt, std::size_t q, const Images &base, const Images &queries,
                   const std::int64_t *result_ids, std::size_t n_results) {
    const std::uint32_t bound = gt.kth_dist2(q);
    std::unordered_set<std::int64_t> seen;
    int hits = 0;
    for (std::size_t i = 0; i < n_results && i < static_cast<std::size_t>(gt.k); ++i) {
        const std::int64_t id = result_ids[i];
        if (id < 0 || static_cast<std::size_t>(id) >= base.n || !seen.insert(id).second) continue;
        if (l2sq_u8(queries.row(q), base.row(static_cast<std::size_t>(id)), base.dim) <= bound) ++hits;
    }
    return static_cast<double>(hits) / gt.k;
}

FashionMnist load_fashion_mnist(const std::string &dir, bool with_labels) {
    FashionMnist fm;
    fm.train = read_idx_images(dir + "/train-images-idx3-ubyte.gz");
    fm.test = read_idx_images(dir + "/t10k-images-idx3-ubyte.gz");
    if (fm.train.dim != kDim || fm.test.dim != kDim) throw std::runtime_error("unexpected image size in " + dir);
    if (with_labels) {
        fm.train_labels = read_idx_labels(dir + "/train-labels-idx1-ubyte.gz");
        fm.test_labels = read_idx_labels(dir + "/t10k-labels-idx1-ubyte.gz");
    }
    return fm;
}

}  // namespace bench
