// The local demo (make demo): Fashion-MNIST into a table, an hnsw index built with visible
// progress, and a few nearest-neighbor queries checked against brute force.
#include "demo.hpp"

#include "pg.hpp"
#include "util.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

namespace bench {

void run_demo(const DemoConfig &cfg, const FashionMnist &fm) {
    {
        Conn admin(conninfo_for(cfg.conninfo, "postgres"));
        if (admin.scalar("SELECT 1 FROM pg_database WHERE datname = '" + cfg.db + "'").empty())
            admin.exec("CREATE DATABASE " + cfg.db);
    }
    const std::string ci = conninfo_for(cfg.conninfo, cfg.db);
    Conn c(ci);
    c.exec("CREATE EXTENSION IF NOT EXISTS " + cfg.extension);
    std::printf("database %s, extension %s %s\n", cfg.db.c_str(), cfg.extension.c_str(),
                c.scalar("SELECT extversion FROM pg_extension WHERE extname = '" + cfg.extension + "'").c_str());

    // Reuse the table when a previous run loaded it completely; otherwise (re)load it.
    const bool have_table = !c.scalar("SELECT to_regclass('items')").empty();
    const std::string rows = have_table ? c.scalar("SELECT count(*) FROM items") : "";
    if (rows == std::to_string(fm.train.n)) {
        std::printf("table items: reusing the %s rows loaded earlier\n", rows.c_str());
    } else {
        c.exec("DROP TABLE IF EXISTS items");
        std::printf("table items: loading %zu Fashion-MNIST training images (784-dimension vectors) with COPY ...\n",
                    fm.train.n);
        std::fflush(stdout);
        Stopwatch sw;
        copy_load(c, "items", fm.train, 0, fm.train.n, 0, WireFormat::binary);
        c.exec("VACUUM (ANALYZE) items");
        std::printf("table items: loaded in %.1f s\n", sw.seconds());
    }

    c.exec("DROP INDEX IF EXISTS items_embedding_idx");
    if (cfg.build_index) {
        const std::string create =
            "CREATE INDEX items_embedding_idx ON items USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 64)";
        std::printf("\n%s;\n(progress from pg_stat_progress_create_index, polled on a second connection)\n", create.c_str());
        std::fflush(stdout);
        const double secs = create_index_with_progress(c, ci, create, 0.5, [](const std::string &line) {
            std::printf("  %s\n", line.c_str());
            std::fflush(stdout);
        });
        std::printf("index built in %.1f s, size %s\n", secs,
                    c.scalar("SELECT pg_size_pretty(pg_relation_size('items_embedding_idx'))").c_str());
    } else {
        std::printf("no index (--index none): the queries below are exact sequential scans\n");
    }

    std::string ef = c.scalar("SELECT current_setting('hnsw.ef_search', true)");
    std::printf("\nSELECT id FROM items ORDER BY embedding <-> $1 LIMIT 10;  -- hnsw.ef_search = %s, $1 = a test image\n",
                ef.empty() ? "(default)" : ef.c_str());
    KnnQuery knn(c, "items", kK, WireFormat::binary);
    double total_recall = 0;
    const std::size_t nq = std::min<std::size_t>(cfg.queries, fm.test.n);
    for (std::size_t q = 0; q < nq; ++q) {
        std::vector<float> v = fm.test.to_float(q);
        Stopwatch sw;
        std::vector<std::int64_t> ids = knn.run(v.data(), kDim);
        const double ms = sw.seconds() * 1e3;
        Images query;  // image q alone, so brute force and recall see a one-query set
        query.n = 1;
        query.dim = fm.test.dim;
        query.pixels.assign(fm.test.row(q), fm.test.row(q) + fm.test.dim);
        const GroundTruth one = brute_force(fm.train, query, 1, kK, 2);
        const double recall = recall_at_k(one, 0, fm.train, query, ids.data(), ids.size());
        total_recall += recall;

        const int label = fm.test_labels.empty() ? -1 : fm.test_labels[q];
        std::printf("\nquery %zu: test image #%zu (%s), %.2f ms\n", q + 1, q, class_name(label), ms);
        std::printf("  SQL ids:  ");
        for (auto id : ids) std::printf(" %5lld", static_cast<long long>(id));
        std::printf("\n  exact ids:");
        for (int j = 0; j < kK; ++j) std::printf(" %5d", one.ids[j]);
        std::map<std::string, int> classes;
        for (auto id : ids)
            if (id >= 0 && static_cast<std::size_t>(id) < fm.train_labels.size()) ++classes[class_name(fm.train_labels[id])];
        std::printf("\n  recall@10 = %.2f; the hits are:", recall);
        for (const auto &[name, n] : classes) std::printf(" %d x %s", n, name.c_str());
        std::printf("\n");
    }
    if (nq > 0) std::printf("\nmean recall@10 over %zu queries: %.3f\n", nq, total_recall / static_cast<double>(nq));
}

}  // namespace bench
