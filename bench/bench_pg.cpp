// The PostgreSQL half of the benchmark: load, CREATE INDEX, ef_search sweep, two clients, inserts.
#include <cstdlib>
#include "bench_pg.hpp"

#include "pg.hpp"

#include <arpa/inet.h>

#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <thread>

namespace bench {

namespace {

struct Sweep {
    double recall = 0, qps = 0, p50_ms = 0, p99_ms = 0;
};

// One pass over the queries on one connection; latency is measured per query at the client
// (PQexecPrepared round trip over loopback TCP, result parsing included).
Sweep run_queries(KnnQuery &knn, const FashionMnist &fm, const GroundTruth &gt, bool score) {
    Sweep s;
    std::vector<double> lat_ms(gt.nq);
    std::vector<float> v(kDim);
    std::vector<std::vector<std::int64_t>> answers(gt.nq);
    Stopwatch total;
    for (std::size_t q = 0; q < gt.nq; ++q) {
        fm.test.to_float(q, v.data());
        Stopwatch one;
        answers[q] = knn.run(v.data(), kDim);
        lat_ms[q] = one.seconds() * 1e3;
    }
    const double secs = total.seconds();
    if (score)
        for (std::size_t q = 0; q < gt.nq; ++q)
            s.recall += recall_at_k(gt, q, fm.train, fm.test, answers[q].data(), answers[q].size());
    s.recall /= static_cast<double>(gt.nq);
    s.qps = static_cast<double>(gt.nq) / secs;
    s.p50_ms = percentile(lat_ms, 50);
    s.p99_ms = percentile(lat_ms, 99);
    return s;
}

}  // namespace

void run_pg(const PgBenchConfig &cfg, const FashionMnist &fm, const GroundTruth &gt, Results &r) {
    const std::string admin_ci = conninfo_for(cfg.conninfo, "postgres");
    const std::string ci = conninfo_for(cfg.conninfo, cfg.db);
    {
        Conn admin(admin_ci);
        admin.exec("DROP DATABASE IF EXISTS " + cfg.db + " WITH (FORCE)");
        admin.exec("CREATE DATABASE " + cfg.db);
    }
    Conn c(ci);
    c.exec("CREATE EXTENSION " + cfg.extension);
    const std::string extversion = c.scalar("SELECT extversion FROM pg_extension WHERE extname = '" + cfg.extension + "'");
    const std::string label = (cfg.extension == "vector" ? "pgvector " : cfg.extension == "meridian" ? "Meridian " : cfg.extension + " ") + extversion;
    r["pg.label"] = label;
    r["pg.server"] = c.scalar("SELECT current_setting('server_version')");
    r["pg.format"] = to_string(cfg.format);
    r["pg.storage"] = std::getenv("BENCH_STORAGE") && *std::getenv("BENCH_STORAGE") ? std::getenv("BENCH_STORAGE") : "plain";
    for (const char *s : {"shared_buffers", "maintenance_work_mem", "max_parallel_maintenance_workers", "work_mem",
                          "effective_cache_size", "max_wal_size", "synchronous_commit", "jit"})
        r[std::string("pg.setting.") + s] = c.scalar(std::string("SELECT current_setting('") + s + "')");
    std::fprintf(stderr, "%s: PostgreSQL %s, vectors sent as %s\n", label.c_str(), r["pg.server"].c_str(),
                 to_string(cfg.format));

    // Load.
    std::fprintf(stderr, "%s: COPY %zu rows ...\n", label.c_str(), fm.train.n);
    Stopwatch sw;
    copy_load(c, "items", fm.train, 0, fm.train.n, 0, cfg.format);
    r["pg.load_s"] = fmt("%.2f", sw.seconds());
    sw.reset();
    c.exec("VACUUM (ANALYZE) items");
    c.exec("CHECKPOINT");
    r["pg.vacuum_s"] = fmt("%.2f", sw.seconds());
    r["pg.table_bytes"] = c.scalar("SELECT pg_table_size('items')");
    std::fprintf(stderr, "%s: loaded in %s s (VACUUM ANALYZE + CHECKPOINT %s s)\n", label.c_str(), r["pg.load_s"].c_str(),
                 r["pg.vacuum_s"].c_str());

    if (cfg.build_index) {
        // Build.
        const std::string create = "CREATE INDEX items_embedding_idx ON items USING hnsw (embedding vector_l2_ops) WITH (m = " +
                                   std::to_string(cfg.m) + ", ef_construction = " + std::to_string(cfg.ef_construction) + ")";
        std::fprintf(stderr, "%s: %s\n", label.c_str(), create.c_str());
        const double build_s = create_index_with_progress(c, ci, create, 5.0, [&](const std::string &line) {
            std::fprintf(stderr, "%s:   %s\n", label.c_str(), line.c_str());
        });
        r["pg.build_s"] = fmt("%.2f", build_s);
        r["pg.index_bytes"] = c.scalar("SELECT pg_relation_size('items_embedding_idx')");
        std::fprintf(stderr, "%s: CREATE INDEX took %.1f s, index is %.1f MiB\n", label.c_str(), build_s,
                     std::stod(r["pg.index_bytes"]) / 1048576.0);

        // The plan must be the index scan, or the numbers below would measure a sequential scan.
        {
            std::vector<float> v(kDim);
            fm.test.to_float(0, v.data());
            std::string lit;
            encode_vector_text(v.data(), kDim, lit);
            Result plan = c.query("EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <-> '" + lit + "' LIMIT 10");
            std::string text;
            for (int i = 0; i < PQntuples(plan.get()); ++i) text += std::string(i ? " / " : "") + PQgetvalue(plan.get(), i, 0);
            // The query vector literal would fill the report: elide it.
        for (std::size_t a = text.find("'["); a != std::string::npos; a = text.find("'[", a + 1)) {
            const std::size_t b = text.find("]'", a);
            if (b == std::string::npos) break;
            text.replace(a, b + 2 - a, "'[...]'");
        }
        r["pg.plan"] = text;
            std::fprintf(stderr, "%s: plan: %s\n", label.c_str(), text.c_str());
            if (text.find("items_embedding_idx") == std::string::npos)
                throw std::runtime_error("the k-NN query does not use the hnsw index: " + text);
        }
    } else {
        std::fprintf(stderr, "%s: no index (--index none): exact sequential scans, for checking the client path\n",
                     label.c_str());
        r["pg.plan"] = "no index: sequential scan";
    }

    // The floor under every query latency: the same round trip with the same 784-float
    // parameter (received and parsed by the type), but no search.
    {
        c.prepare("floor", "SELECT $1 IS NULL", {vector_type_oid(c)});
        std::vector<float> v(kDim);
        std::string param;
        std::vector<double> lat_ms(gt.nq);
        for (int pass = 0; pass < 2; ++pass) {  // warm-up, then measured
            Stopwatch total;
            for (std::size_t q = 0; q < gt.nq; ++q) {
                fm.test.to_float(q, v.data());
                param.clear();
                if (cfg.format == WireFormat::binary) encode_vector_binary(v.data(), kDim, param);
                else encode_vector_text(v.data(), kDim, param);
                const char *values[1] = {param.data()};
                const int lengths[1] = {static_cast<int>(param.size())};
                const int formats[1] = {cfg.format == WireFormat::binary ? 1 : 0};
                Stopwatch one;
                Result res(PQexecPrepared(c.get(), "floor", 1, values, lengths, formats, 1));
                lat_ms[q] = one.seconds() * 1e3;
                if (PQresultStatus(res.get()) != PGRES_TUPLES_OK)
                    throw std::runtime_error(std::string("round-trip query: ") + PQresultErrorMessage(res.get()));
            }
            r["pg.floor_qps"] = fmt("%.0f", static_cast<double>(gt.nq) / total.seconds());
        }
        r["pg.floor_p50_ms"] = fmt("%.3f", percentile(lat_ms, 50));
        std::fprintf(stderr, "%s: round trip without search (SELECT $1 IS NULL): QPS=%s  p50=%s ms\n", label.c_str(),
                     r["pg.floor_qps"].c_str(), r["pg.floor_p50_ms"].c_str());
    }

    // ef_search sweep, single client.
    KnnQuery knn(c, "items", kK, cfg.format);
    for (int ef : cfg.efs) {
        c.exec("SET hnsw.ef_search = " + std::to_string(ef));
        run_queries(knn, fm, gt, false);  // warm-up
        Sweep s = run_queries(knn, fm, gt, true);
        const std::string p = "pg.ef." + std::to_string(ef) + ".";
        r[p + "recall"] = fmt("%.4f", s.recall);
        r[p + "qps"] = fmt("%.0f", s.qps);
        r[p + "p50_ms"] = fmt("%.3f", s.p50_ms);
        r[p + "p99_ms"] = fmt("%.3f", s.p99_ms);
        std::fprintf(stderr, "%s: ef=%-4d recall@10=%s  QPS=%s  p50=%s ms  p99=%s ms\n", label.c_str(), ef,
                     r[p + "recall"].c_str(), r[p + "qps"].c_str(), r[p + "p50_ms"].c_str(), r[p + "p99_ms"].c_str());
    }

    // Two clients at ef 40: two connections, two threads, each running every query once
    // (from different starting points) after a warm-up pass.
    {
        constexpr int kClients = 2;
        std::vector<std::unique_ptr<Conn>> conns;
        std::vector<std::unique_ptr<KnnQuery>> knns;
        for (int t = 0; t < kClients; ++t) {
            conns.push_back(std::make_unique<Conn>(ci));
            conns.back()->exec("SET hnsw.ef_search = 40");
            knns.push_back(std::make_unique<KnnQuery>(*conns.back(), "items", kK, cfg.format));
            run_queries(*knns.back(), fm, gt, false);
        }
        std::atomic<int> ready{0};
        std::vector<std::string> errors(kClients);
        Stopwatch wall;
        std::vector<std::thread> threads;
        for (int t = 0; t < kClients; ++t)
            threads.emplace_back([&, t] {
                try {
                    std::vector<float> v(kDim);
                    ready.fetch_add(1);
                    while (ready.load() < kClients) std::this_thread::yield();
                    for (std::size_t i = 0; i < gt.nq; ++i) {
                        const std::size_t q = (i + gt.nq * t / kClients) % gt.nq;
                        fm.test.to_float(q, v.data());
                        knns[t]->run(v.data(), kDim);
                    }
                } catch (const std::exception &e) {
                    errors[t] = e.what();
                }
            });
        for (auto &th : threads) th.join();
        for (auto &e : errors)
            if (!e.empty()) throw std::runtime_error(e);
        r["pg.qps2_ef40"] = fmt("%.0f", kClients * static_cast<double>(gt.nq) / wall.seconds());
        std::fprintf(stderr, "%s: 2 clients, ef=40: QPS=%s\n", label.c_str(), r["pg.qps2_ef40"].c_str());
    }

    // Inserts into the built index: one row per autocommit transaction, prepared.
    {
        const std::size_t first = gt.nq, n = cfg.inserts;
        if (first + n > fm.test.n) throw std::runtime_error("not enough test images for the insert test");
        c.prepare("ins", "INSERT INTO items (id, embedding) VALUES ($1, $2)", {23 /* int4 */, vector_type_oid(c)});
        std::vector<float> v(kDim);
        std::string vec, idbuf;
        Stopwatch isw;
        for (std::size_t i = 0; i < n; ++i) {
            fm.test.to_float(first + i, v.data());
            vec.clear();
            idbuf.clear();
            const std::int32_t id = static_cast<std::int32_t>(fm.train.n + i);
            int formats[2];
            if (cfg.format == WireFormat::binary) {
                encode_vector_binary(v.data(), kDim, vec);
                const std::uint32_t be = htonl(static_cast<std::uint32_t>(id));
                idbuf.assign(reinterpret_cast<const char *>(&be), 4);
                formats[0] = formats[1] = 1;
            } else {
                encode_vector_text(v.data(), kDim, vec);
                idbuf = std::to_string(id);
                formats[0] = formats[1] = 0;
            }
            const char *values[2] = {idbuf.data(), vec.data()};
            const int lengths[2] = {static_cast<int>(idbuf.size()), static_cast<int>(vec.size())};
            Result res(PQexecPrepared(c.get(), "ins", 2, values, lengths, formats, 0));
            if (PQresultStatus(res.get()) != PGRES_COMMAND_OK)
                throw std::runtime_error(std::string("INSERT: ") + PQresultErrorMessage(res.get()));
        }
        r["pg.insert_rows"] = std::to_string(n);
        r["pg.insert_rps"] = fmt("%.0f", static_cast<double>(n) / isw.seconds());
        if (cfg.build_index) r["pg.index_bytes_after_insert"] = c.scalar("SELECT pg_relation_size('items_embedding_idx')");
        std::fprintf(stderr, "%s: %zu single-row INSERTs: %s rows/s\n", label.c_str(), n, r["pg.insert_rps"].c_str());
    }
}

void run_qps(const std::string &conninfo, const std::string &table, WireFormat format, int ef, int passes,
             const std::string &label, const FashionMnist &fm, const GroundTruth &gt) {
    Conn c(conninfo);
    c.exec("SET hnsw.ef_search = " + std::to_string(ef));
    KnnQuery knn(c, table, kK, format);
    // The server process's own CPU time (when it runs on this machine and is readable): less
    // disturbed than wall time by other processes competing for the cores.
    const std::string schedstat = "/proc/" + std::to_string(c.backend_pid()) + "/schedstat";
    auto cpu_ns = [&]() -> double {
        std::FILE *f = std::fopen(schedstat.c_str(), "r");
        if (!f) return -1;
        double ns = -1;
        if (std::fscanf(f, "%lf", &ns) != 1) ns = -1;
        std::fclose(f);
        return ns;
    };
    run_queries(knn, fm, gt, false);  // warm-up
    for (int p = 0; p < passes; ++p) {
        const double cpu0 = cpu_ns();
        Sweep s = run_queries(knn, fm, gt, true);
        const double cpu1 = cpu_ns();
        const double server_cpu_ms = (cpu0 < 0 || cpu1 < 0) ? -1 : (cpu1 - cpu0) / 1e6 * 1000.0 / static_cast<double>(gt.nq);
        std::printf("%s\tef=%d\tms_per_1000=%.1f\tserver_cpu_ms_per_1000=%.1f\tqps=%.0f\trecall=%.4f\tp50_ms=%.3f\tp99_ms=%.3f\n",
                    label.c_str(), ef, 1e6 / s.qps, server_cpu_ms, s.qps, s.recall, s.p50_ms, s.p99_ms);
        std::fflush(stdout);
    }
}

}  // namespace bench
