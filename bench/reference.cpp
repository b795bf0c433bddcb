// The reference: raw in-memory hnswlib (Debian libhnswlib-dev) with the same parameters, single
// thread, so the PostgreSQL numbers have a fixed point on the same machine in the same run.
#include "reference.hpp"

#include <hnswlib/hnswlib.h>

#include <cstdio>
#include <memory>

namespace bench {

Results run_reference(const FashionMnist &fm, const GroundTruth &gt, const std::vector<int> &efs, int m,
                      int ef_construction) {
    Results r;
    const std::size_t n = fm.train.n, nq = gt.nq;
    const int dim = fm.train.dim;

    std::vector<float> base(n * dim), queries(nq * dim);
    for (std::size_t i = 0; i < n; ++i) fm.train.to_float(i, &base[i * dim]);
    for (std::size_t q = 0; q < nq; ++q) fm.test.to_float(q, &queries[q * dim]);

    hnswlib::L2Space space(static_cast<std::size_t>(dim));
    auto index = std::make_unique<hnswlib::HierarchicalNSW<float>>(&space, n, static_cast<std::size_t>(m),
                                                                    static_cast<std::size_t>(ef_construction));
    std::fprintf(stderr, "hnswlib: building (M=%d, ef_construction=%d, 1 thread) ...\n", m, ef_construction);
    Stopwatch sw;
    for (std::size_t i = 0; i < n; ++i) index->addPoint(&base[i * dim], static_cast<hnswlib::labeltype>(i));
    const double build_s = sw.seconds();
    std::fprintf(stderr, "hnswlib: built in %.1f s\n", build_s);
    r["hnswlib.build_s"] = fmt("%.2f", build_s);

    // Memory the graph and vectors occupy: level-0 block plus the upper-level link lists.
    std::size_t bytes = index->max_elements_ * index->size_data_per_element_;
    for (std::size_t i = 0; i < index->cur_element_count; ++i)
        bytes += static_cast<std::size_t>(index->element_levels_[i]) * index->size_links_per_element_;
    r["hnswlib.memory_bytes"] = std::to_string(bytes);

    for (int ef : efs) {
        index->setEf(static_cast<std::size_t>(ef));
        // Warm-up pass, then the measured pass.
        for (std::size_t q = 0; q < nq; ++q) index->searchKnn(&queries[q * dim], kK);
        std::vector<double> lat_ms(nq);
        std::vector<std::vector<std::int64_t>> answers(nq);
        Stopwatch total;
        for (std::size_t q = 0; q < nq; ++q) {
            Stopwatch one;
            auto res = index->searchKnn(&queries[q * dim], kK);
            lat_ms[q] = one.seconds() * 1e3;
            answers[q].resize(res.size());  // the queue pops farthest first
            for (std::size_t i = res.size(); i-- > 0; res.pop()) answers[q][i] = static_cast<std::int64_t>(res.top().second);
        }
        const double secs = total.seconds();
        double recall = 0;
        for (std::size_t q = 0; q < nq; ++q)
            recall += recall_at_k(gt, q, fm.train, fm.test, answers[q].data(), answers[q].size());
        const std::string p = "hnswlib.ef." + std::to_string(ef) + ".";
        r[p + "recall"] = fmt("%.4f", recall / nq);
        r[p + "qps"] = fmt("%.0f", nq / secs);
        r[p + "p50_ms"] = fmt("%.3f", percentile(lat_ms, 50));
        r[p + "p99_ms"] = fmt("%.3f", percentile(lat_ms, 99));
        std::fprintf(stderr, "hnswlib: ef=%-4d recall@10=%s  QPS=%s  p50=%s ms  p99=%s ms\n", ef,
                     r[p + "recall"].c_str(), r[p + "qps"].c_str(), r[p + "p50_ms"].c_str(), r[p + "p99_ms"].c_str());
    }
    return r;
}

}  // namespace bench
