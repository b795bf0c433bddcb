// repl-bench: replication throughput and lag between regions (BENCHMARKS.md, "Replication").
//
//   repl-bench --source CONNINFO --table T --receiver LABEL=ORIGIN=CONNINFO [...]
//              [--rate ROWS_PER_S (0 = as fast as one client can)] [--seconds D] [--batch B] [--label L]
//
// One client inserts B-row transactions into T in the source region (rows copied from the
// source's bench_staging table with fresh uuids), at the given rate or flat out, for D seconds.
// Before each COMMIT it reads pg_current_wal_insert_lsn(): with one writer, a receiver's
// replication origin has passed that LSN exactly when the transaction has been applied there.
// One poller per receiver reads pg_replication_origin_progress(ORIGIN, true) every millisecond
// and timestamps when each transaction became visible as applied. Lag = that moment minus the
// moment COMMIT returned at the source (one machine, one clock). Works the same for
// meridian-replicator (origin meridian_<region>) and built-in logical replication (pg_<subid>).
// Prints one markdown table row.
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct receiver {
    std::string label, origin, conninfo;
};

struct batch {
    std::uint64_t lsn;              // insert position before the COMMIT
    clock_type::time_point committed;
};

std::uint64_t parse_lsn(const char *s) {
    unsigned hi = 0, lo = 0;
    if (std::sscanf(s, "%X/%X", &hi, &lo) != 2)
        throw std::runtime_error(std::string("bad LSN ") + s);
    return (std::uint64_t(hi) << 32) | lo;
}

PGconn *connect(const std::string &conninfo) {
    PGconn *c = PQconnectdb(conninfo.c_str());
    if (PQstatus(c) != CONNECTION_OK)
        throw std::runtime_error("connect " + conninfo + ": " + PQerrorMessage(c));
    return c;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5));
    return v[i];
}

}  // namespace

int run(int argc, char **argv) {
    std::string source, table, label = "run";
    std::vector<receiver> receivers;
    double rate = 0, seconds = 20;
    int batch_rows = 100;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc)
                throw std::runtime_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--source")
            source = next();
        else if (a == "--table")
            table = next();
        else if (a == "--rate")
            rate = std::atof(next().c_str());
        else if (a == "--seconds")
            seconds = std::atof(next().c_str());
        else if (a == "--batch")
            batch_rows = std::atoi(next().c_str());
        else if (a == "--label")
            label = next();
        else if (a == "--receiver") {
            std::string v = next();
            auto e1 = v.find('='), e2 = v.find('=', e1 + 1);
            if (e1 == std::string::npos || e2 == std::string::npos)
                throw std::runtime_error("--receiver LABEL=ORIGIN=CONNINFO");
            receivers.push_back({v.substr(0, e1), v.substr(e1 + 1, e2 - e1 - 1), v.substr(e2 + 1)});
        } else {
            std::fprintf(stderr, "usage: repl-bench --source CONNINFO --table T --receiver LABEL=ORIGIN=CONNINFO "
                                 "[--rate R] [--seconds D] [--batch B] [--label L]\n");
            return 2;
        }
    }
    if (source.empty() || table.empty() || receivers.empty())
        throw std::runtime_error("--source, --table and at least one --receiver are required");

    PGconn *src = connect(source);
    PGresult *r = PQexec(src, "SELECT count(*) FROM bench_staging");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        throw std::runtime_error(std::string("bench_staging: ") + PQresultErrorMessage(r));
    long staging = std::atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (staging < batch_rows)
        throw std::runtime_error("bench_staging has too few rows");

    std::mutex m;
    std::vector<batch> batches;
    std::atomic<bool> load_done{false};
    std::vector<std::vector<clock_type::time_point>> seen(receivers.size());
    std::vector<std::thread> pollers;
    std::atomic<bool> give_up{false};
    for (std::size_t k = 0; k < receivers.size(); k++) {
        pollers.emplace_back([&, k] {
            PGconn *c = connect(receivers[k].conninfo);
            const char *params[1] = {receivers[k].origin.c_str()};
            std::size_t next = 0;
            while (!give_up) {
                std::size_t total;
                {
                    std::lock_guard<std::mutex> g(m);
                    total = batches.size();
                }
                if (load_done && next == total)
                    break;
                PGresult *pr = PQexecParams(c, "SELECT pg_replication_origin_progress($1, true)", 1, nullptr, params,
                                            nullptr, nullptr, 0);
                auto now = clock_type::now();
                if (PQresultStatus(pr) == PGRES_TUPLES_OK && !PQgetisnull(pr, 0, 0)) {
                    std::uint64_t progress = parse_lsn(PQgetvalue(pr, 0, 0));
                    std::lock_guard<std::mutex> g(m);
                    while (next < batches.size() && batches[next].lsn < progress) {
                        seen[k].push_back(now);
                        next++;
                    }
                }
                PQclear(pr);
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            PQfinish(c);
        });
    }

    const std::string insert = "BEGIN; INSERT INTO " + table +
                               " (id, embedding, payload) SELECT gen_random_uuid(), embedding, payload "
                               "FROM bench_staging WHERE n >= $START AND n < $END; "
                               "SELECT pg_current_wal_insert_lsn(); COMMIT";
    auto start = clock_type::now();
    auto stop_at = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
    long offset = 0;
    std::size_t n = 0;
    try {
    while (clock_type::now() < stop_at) {
        if (rate > 0) {
            auto due = start + std::chrono::duration_cast<clock_type::duration>(
                                   std::chrono::duration<double>(double(n) * batch_rows / rate));
            std::this_thread::sleep_until(due);
        }
        if (offset + batch_rows > staging)
            offset = 0;
        std::string sql = insert;
        sql.replace(sql.find("$START"), 6, std::to_string(offset));
        sql.replace(sql.find("$END"), 4, std::to_string(offset + batch_rows));
        offset += batch_rows;
        if (!PQsendQuery(src, sql.c_str()))
            throw std::runtime_error(PQerrorMessage(src));
        std::uint64_t lsn = 0;
        while (PGresult *res = PQgetResult(src)) {
            auto st = PQresultStatus(res);
            if (st == PGRES_TUPLES_OK)
                lsn = parse_lsn(PQgetvalue(res, 0, 0));
            else if (st != PGRES_COMMAND_OK)
                throw std::runtime_error(std::string("insert: ") + PQresultErrorMessage(res));
            PQclear(res);
        }
        auto committed = clock_type::now();
        std::lock_guard<std::mutex> g(m);
        batches.push_back({lsn, committed});
        n++;
    }
    } catch (...) {
        give_up = true;  // the pollers stop; threads must be joined before the error leaves
        for (auto &t : pollers)
            t.join();
        throw;
    }
    auto load_end = clock_type::now();
    load_done = true;
    // Wait for the receivers to catch up, at most 120 s.
    std::thread watchdog([&] {
        auto deadline = clock_type::now() + std::chrono::seconds(120);
        while (clock_type::now() < deadline) {
            bool all = true;
            {
                std::lock_guard<std::mutex> g(m);
                for (auto &s : seen)
                    all = all && s.size() == batches.size();
            }
            if (all)
                return;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        give_up = true;
    });
    for (auto &t : pollers)
        t.join();
    watchdog.join();
    PQfinish(src);

    double load_s = std::chrono::duration<double>(load_end - start).count();
    std::vector<double> lags;
    clock_type::time_point last = load_end;
    bool complete = true;
    for (auto &s : seen) {
        complete = complete && s.size() == batches.size();
        for (std::size_t i = 0; i < s.size(); i++) {
            lags.push_back(std::chrono::duration<double, std::milli>(s[i] - batches[i].committed).count());
            last = std::max(last, s[i]);
        }
    }
    double rows = double(batches.size()) * batch_rows;
    double replicated_s = std::chrono::duration<double>(last - start).count();
    std::printf("| %s | %s | %.0f | %.0f | %.0f | %.1f | %.1f | %.1f |%s\n", label.c_str(),
                rate > 0 ? std::to_string(long(rate)).c_str() : "max", rows, rows / load_s, rows / replicated_s,
                percentile(lags, 0.5), percentile(lags, 0.99), percentile(lags, 1.0),
                complete ? "" : " (receivers did not catch up within 120 s)");
    return complete ? 0 : 1;
}

int main(int argc, char **argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "repl-bench: %s\n", e.what());
        return 1;
    }
}
