// fmnist-bench: the Fashion-MNIST benchmark and demo tool (see bench/README.md).
//
//   fmnist-bench groundtruth [--out DIR]         compute (or verify) the cached exact top-10
//   fmnist-bench reference   [--out DIR]         hnswlib in memory      -> DIR/reference.tsv
//   fmnist-bench pg          [--out DIR] [--extension meridian|vector] [--format binary|text]
//                            [--index hnsw|none] [--inserts 2000]
//                                                 PostgreSQL (PG* env)   -> DIR/pg.tsv
//   fmnist-bench report      [--out DIR]         both as markdown       -> stdout and DIR/results.md
//   fmnist-bench demo        [--db demo] [--extension meridian] [--queries 5]
//   fmnist-bench qps         [--db bench] [--table items] [--ef 40] [--passes 1] [--label X] [--format binary|text]
//                                                 single-client passes on an existing database (A/B runs)
//
// Common options: --data DIR (default /usr/share/datasets/fashion-mnist), --queries N (1000),
// --efs 10,20,40,80,120,200,400, --conninfo STR (extra libpq fields; PGHOST etc. apply).
#include "bench_pg.hpp"
#include "dataset.hpp"
#include "demo.hpp"
#include "reference.hpp"
#include "util.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

using namespace bench;

namespace {

std::vector<int> parse_efs(const std::string &s) {
    std::vector<int> efs;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) efs.push_back(std::stoi(item));
    return efs;
}

std::string machine_description() {
    std::string model = "unknown CPU";
    std::ifstream cpu("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpu, line))
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    double mem_gib = 0;
    std::ifstream mem("/proc/meminfo");
    while (std::getline(mem, line))
        if (line.rfind("MemTotal:", 0) == 0) mem_gib = std::stod(line.substr(9)) / 1048576.0;
    return model + ", " + std::to_string(std::thread::hardware_concurrency()) + " cores, " + fmt("%.1f", mem_gib) + " GiB RAM";
}

std::string get(const Results &r, const std::string &k, const std::string &def = "n/a") {
    auto it = r.find(k);
    return it == r.end() ? def : it->second;
}

double num(const Results &r, const std::string &k) {
    auto it = r.find(k);
    return it == r.end() ? -1 : std::stod(it->second);
}

std::string with_unit(const Results &r, const std::string &k, const char *unit) {
    auto it = r.find(k);
    return it == r.end() ? "n/a" : it->second + unit;
}

std::string mib(const Results &r, const std::string &k) {
    double b = num(r, k);
    return b < 0 ? "n/a" : fmt("%.1f MiB", b / 1048576.0);
}

std::string report(const Results &r, const std::vector<int> &efs) {
    const bool pg = r.count("pg.label") > 0;
    const std::string label = pg ? get(r, "pg.label") : "PostgreSQL (not measured)";
    std::ostringstream o;
    o << "Fashion-MNIST (784 dimensions, L2): 60,000 base vectors, " << get(r, "queries", "1000")
      << " queries, recall@10 against exact brute force; hnsw m = 16, ef_construction = 64.\n\n";
    o << "- Machine: " << machine_description() << "\n";
    if (pg) {
        o << "- Server: PostgreSQL " << get(r, "pg.server") << ", " << label << "; shared_buffers = "
          << get(r, "pg.setting.shared_buffers") << ", maintenance_work_mem = " << get(r, "pg.setting.maintenance_work_mem")
          << ", max_parallel_maintenance_workers = " << get(r, "pg.setting.max_parallel_maintenance_workers")
          << ", max_wal_size = " << get(r, "pg.setting.max_wal_size") << ", synchronous_commit = "
          << get(r, "pg.setting.synchronous_commit") << ", jit = " << get(r, "pg.setting.jit")
          << "; column storage `" << get(r, "pg.storage", "default") << "` (BENCH_STORAGE)\n";
        o << "- Client: one libpq connection over loopback TCP, prepared statement, query vectors sent as "
          << get(r, "pg.format") << " parameters, latency measured at the client per query after a warm-up pass\n";
        o << "- Plan: `" << get(r, "pg.plan") << "`\n";
    }
    if (r.count("pg.error")) o << "- **The PostgreSQL run failed:** " << get(r, "pg.error") << "\n";
    o << "\n| build | hnswlib (in memory, 1 thread) | " << label << " |\n|---|---:|---:|\n";
    o << "| CREATE INDEX / build time | " << with_unit(r, "hnswlib.build_s", " s") << " | " << with_unit(r, "pg.build_s", " s") << " |\n";
    o << "| index size | " << (r.count("hnswlib.memory_bytes") ? mib(r, "hnswlib.memory_bytes") + " (memory)" : "n/a") << " | " << mib(r, "pg.index_bytes") << " |\n";
    o << "| COPY 60,000 rows | | " << with_unit(r, "pg.load_s", " s") << " |\n";
    o << "| round trip without search (`SELECT $1 IS NULL`, same parameter): QPS, p50 | | "
      << get(r, "pg.floor_qps") << ", " << with_unit(r, "pg.floor_p50_ms", " ms") << " |\n";
    o << "| 2-client QPS, ef_search = 40 | | " << get(r, "pg.qps2_ef40") << " |\n";
    o << "| single-row INSERT (autocommit), rows/s | | " << get(r, "pg.insert_rps") << " |\n";

    o << "\n| ef_search | hnswlib recall@10 | hnswlib QPS | hnswlib p50 ms | hnswlib p99 ms | " << label
      << " recall@10 | QPS | p50 ms | p99 ms | QPS / hnswlib |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (int ef : efs) {
        const std::string h = "hnswlib.ef." + std::to_string(ef) + ".", p = "pg.ef." + std::to_string(ef) + ".";
        const double ratio = (num(r, p + "qps") > 0 && num(r, h + "qps") > 0) ? num(r, p + "qps") / num(r, h + "qps") : -1;
        o << "| " << ef << " | " << get(r, h + "recall") << " | " << get(r, h + "qps") << " | " << get(r, h + "p50_ms")
          << " | " << get(r, h + "p99_ms") << " | " << get(r, p + "recall") << " | " << get(r, p + "qps") << " | "
          << get(r, p + "p50_ms") << " | " << get(r, p + "p99_ms") << " | " << (ratio < 0 ? "n/a" : fmt("%.2f", ratio))
          << " |\n";
    }

    struct Target {
        const char *name, *target;
        double value;
        bool higher_is_better;
        double bound;
        const char *unit;
    };
    const double build_ratio = (num(r, "pg.build_s") > 0 && num(r, "hnswlib.build_s") > 0)
                                   ? num(r, "pg.build_s") / num(r, "hnswlib.build_s") : -1;
    const double qps_ratio = (num(r, "pg.ef.40.qps") > 0 && num(r, "hnswlib.ef.40.qps") > 0)
                                 ? num(r, "pg.ef.40.qps") / num(r, "hnswlib.ef.40.qps") : -1;
    const double size_mib = num(r, "pg.index_bytes") < 0 ? -1 : num(r, "pg.index_bytes") / 1048576.0;
    const Target targets[] = {
        {"recall@10 at ef_search = 40", ">= 0.99", num(r, "pg.ef.40.recall"), true, 0.99, "%.4f"},
        {"QPS(ef 40) / hnswlib QPS(ef 40)", ">= 0.40", qps_ratio, true, 0.40, "%.2f"},
        {"p99 latency at ef_search = 40", "<= 1 ms", num(r, "pg.ef.40.p99_ms"), false, 1.0, "%.3f ms"},
        {"CREATE INDEX time / hnswlib 1-thread build", "<= 1.2", build_ratio, false, 1.2, "%.2f"},
        {"index size", "<= 200 MiB", size_mib, false, 200, "%.1f MiB"},
        {"single-row INSERT rows/s", ">= 1000", num(r, "pg.insert_rps"), true, 1000, "%.0f"},
    };
    o << "\n| target (" << label << ") | goal | measured | |\n|---|---|---:|---|\n";
    for (const auto &t : targets) {
        const bool have = t.value >= 0;
        const bool ok = have && (t.higher_is_better ? t.value >= t.bound : t.value <= t.bound);
        o << "| " << t.name << " | " << t.target << " | " << (have ? fmt(t.unit, t.value) : "n/a") << " | "
          << (have ? (ok ? "met" : "**missed**") : "") << " |\n";
    }
    return o.str();
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s groundtruth|reference|pg|report|demo [--options]\n", argv[0]);
        return 2;
    }
    try {
        const std::string cmd = argv[1];
        Args args(argc, argv, 2);
        const std::string data = args.str("data", "/usr/share/datasets/fashion-mnist");
        const std::string out = args.str("out", ".run/bench");
        const std::size_t nq = static_cast<std::size_t>(args.num("queries", cmd == "demo" ? 5 : 1000));
        const std::vector<int> efs = parse_efs(args.str("efs", "10,20,40,80,120,200,400"));
        const std::string conninfo = args.str("conninfo", "");

        if (cmd == "report") {
            Results r = read_results(out + "/reference.tsv");
            for (auto &[k, v] : read_results(out + "/pg.tsv")) r[k] = v;
            const std::string md = report(r, efs);
            std::ofstream(out + "/results.md", std::ios::trunc) << md;
            std::fputs(md.c_str(), stdout);
            return 0;
        }

        Stopwatch sw;
        FashionMnist fm = load_fashion_mnist(data, cmd == "demo");
        std::fprintf(stderr, "data: %zu base, %zu test images read in %.1f s\n", fm.train.n, fm.test.n, sw.seconds());

        if (cmd == "demo") {
            DemoConfig cfg;
            cfg.conninfo = conninfo;
            cfg.db = args.str("db", "demo");
            cfg.extension = args.str("extension", "meridian");
            cfg.queries = nq;
            cfg.build_index = args.str("index", "hnsw") != "none";
            run_demo(cfg, fm);
            return 0;
        }

        const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        const GroundTruth gt = cached_ground_truth(out + "/groundtruth-" + std::to_string(nq) + ".bin", fm.train, fm.test,
                                                   nq, kK, threads, true);
        if (cmd == "groundtruth") return 0;

        if (cmd == "reference") {
            Results r = run_reference(fm, gt, efs, 16, 64);
            r["queries"] = std::to_string(nq);
            write_results(out + "/reference.tsv", r);
            return 0;
        }
        if (cmd == "qps") {
            const std::string f = args.str("format", "binary");
            if (f != "binary" && f != "text") throw std::runtime_error("--format must be binary or text");
            run_qps(conninfo_for(conninfo, args.str("db", "bench")), args.str("table", "items"),
                    f == "binary" ? WireFormat::binary : WireFormat::text,
                    static_cast<int>(args.num("ef", 40)), static_cast<int>(args.num("passes", 1)), args.str("label", "run"),
                    fm, gt);
            return 0;
        }
        if (cmd == "pg") {
            PgBenchConfig cfg;
            cfg.conninfo = conninfo;
            cfg.db = args.str("db", "bench");
            cfg.extension = args.str("extension", "meridian");
            const std::string f = args.str("format", "binary");
            if (f != "binary" && f != "text") throw std::runtime_error("--format must be binary or text");
            cfg.format = f == "binary" ? WireFormat::binary : WireFormat::text;
            cfg.efs = efs;
            cfg.inserts = static_cast<std::size_t>(args.num("inserts", 2000));
            const std::string index = args.str("index", "hnsw");
            if (index != "hnsw" && index != "none") throw std::runtime_error("--index must be hnsw or none");
            cfg.build_index = index == "hnsw";
            Results r;
            r["queries"] = std::to_string(nq);
            try {
                run_pg(cfg, fm, gt, r);
            } catch (const std::exception &e) {
                r["pg.error"] = e.what();
                write_results(out + "/pg.tsv", r);
                throw;
            }
            write_results(out + "/pg.tsv", r);
            return 0;
        }
        throw std::runtime_error("unknown command " + cmd);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "fmnist-bench: %s\n", e.what());
        return 1;
    }
}
