// consistency-bench: the consistency benchmark of issue 4 §5 (scripts/bench-consistency.sh runs it).
//
//   consistency-bench load --conninfo CI [--data DIR] [--batch 1000]
//       Loads the 60,000 Fashion-MNIST training images into items (n int, embedding vector(784))
//       of one region, one COPY per transaction of --batch rows (synchronous_commit = local), so
//       the replicators carry them to the other regions.
//
//   consistency-bench measure --out DIR --region NAME=CONNINFO [--region ...] --control PORT
//       --minority NAME --minority-links L1,L2,... [--queries 1000] [--ef auto|N]
//       [--writers 16] [--latency-writers 4] [--latency-seconds 60] [--write-seconds 10] [--partition-seconds 5]
//       [--data DIR]
//       1. ef_search: the smallest of 40, 60, 80, 120, 200, 400 whose recall@10 over the queries
//          (eventual reads in the first region) is >= 0.99, unless --ef N;
//       2. per region: one pass of k-NN queries at each read consistency (eventual = local,
//          bounded with max_staleness 200 ms, strong), each on a session of its own after untimed
//          queries on it (the whole pass for eventual and bounded, 50 for strong): avg and p99 latency
//          at the client, recall@10, failed queries;
//       3. per region: quorum writes (synchronous_commit = on), one row per transaction (BEGIN,
//          INSERT, COMMIT), for --latency-seconds (after 2 s untimed) from --latency-writers
//          clients (2,900-5,500 commits at 60 s: the p99 rests on a few dozen); the same clients
//          with synchronous_commit = local paced to the rate the quorum run reached (the zero
//          point: a local commit's own tail under the same load); quorum writes from --writers
//          clients (none with --writers 0) for --write-seconds: commits/s, COMMIT latency avg/p99
//          (where the quorum wait is), the whole write's latency avg/p99, failed writes (written
//          vectors are test images shifted by 1,000 per component: they never enter a query's top
//          10); and the disk under --out during each run: stalls (requests in flight, none
//          completing, >= 20 ms), the commits that overlapped one, and the COMMIT p99 of the
//          others; and how late the wan-proxy delivered bytes against their exact delays (its
//          `lateness` command);
//       4. a partition: the minority region's links (wan-proxy control port) are cut for
//          --partition-seconds while both sides run an eventual reader, a bounded reader and two
//          quorum writers; errors and operations that started inside the partition, per side;
//          then how long after the heal every region has the same meridian.table_checksum.
//       Prints a markdown report on stdout.
//
//   consistency-bench writes --conninfo CI --out DIR [--latency-writers 4] [--latency-seconds 60]
//       Only measure's 4-client write runs, against one server: synchronous_commit = on, then =
//       local paced to the rate the first reached (scripts/bench-syncrep-baseline.sh: PostgreSQL's
//       own synchronous replication to a physical standby, for comparison). Markdown on stdout.
#include "../dataset.hpp"
#include "../pg.hpp"
#include "../util.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace {

using bench::Conn;
using bench::FashionMnist;
using bench::GroundTruth;
using bench::Stopwatch;
using clock_type = std::chrono::steady_clock;

std::string fmt(const char *f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

// ---------------------------------------------------------------------------------------- load

void load(const bench::Args &a) {
    const std::string ci = a.str("conninfo", "");
    const long batch = a.num("batch", 1000);
    FashionMnist fm = bench::load_fashion_mnist(a.str("data", "/usr/share/datasets/fashion-mnist"), false);
    Conn c(ci);
    c.exec("SET synchronous_commit = local");
    Stopwatch sw;
    std::string buf;
    for (std::size_t first = 0; first < fm.train.n; first += static_cast<std::size_t>(batch)) {
        const std::size_t end = std::min(fm.train.n, first + static_cast<std::size_t>(batch));
        c.exec("BEGIN");
        bench::Result r(PQexec(c.get(), "COPY items (n, embedding) FROM STDIN"));
        if (PQresultStatus(r.get()) != PGRES_COPY_IN)
            throw std::runtime_error(std::string("COPY: ") + PQerrorMessage(c.get()));
        buf.clear();
        for (std::size_t i = first; i < end; ++i) {
            buf += std::to_string(i);
            buf += "\t[";
            const std::uint8_t *p = fm.train.row(i);
            for (int d = 0; d < fm.train.dim; ++d) {
                if (d) buf.push_back(',');
                buf += std::to_string(p[d]);
            }
            buf += "]\n";
        }
        if (PQputCopyData(c.get(), buf.data(), static_cast<int>(buf.size())) != 1 || PQputCopyEnd(c.get(), nullptr) != 1)
            throw std::runtime_error(std::string("COPY: ") + PQerrorMessage(c.get()));
        bench::Result done(PQgetResult(c.get()));
        if (PQresultStatus(done.get()) != PGRES_COMMAND_OK)
            throw std::runtime_error(std::string("COPY: ") + PQresultErrorMessage(done.get()));
        while (PGresult *extra = PQgetResult(c.get())) PQclear(extra);
        c.exec("COMMIT");
    }
    std::fprintf(stderr, "loaded %zu rows in %.1f s\n", fm.train.n, sw.seconds());
}

// ------------------------------------------------------------------------------------- measure

struct region {
    std::string name, conninfo;
};

// One client session: a connection with its settings and a prepared k-NN query and insert.
class session {
public:
    session(const std::string &conninfo, const std::vector<std::string> &settings) : c_(conninfo) {
        for (const auto &s : settings) c_.exec(s);
        vec_oid_ = bench::vector_type_oid(c_);
        c_.prepare("knn", "SELECT n FROM items ORDER BY embedding <-> $1 LIMIT 10", {vec_oid_});
        c_.prepare("ins", "INSERT INTO items (n, embedding) VALUES ($1, $2)", {INT4OID_, vec_oid_});
    }
    // Runs the query; on failure returns false and sets sqlstate.
    bool knn(const float *v, std::vector<std::int64_t> &ids, std::string &sqlstate) {
        param_.clear();
        bench::encode_vector_binary(v, bench::kDim, param_);
        const char *values[1] = {param_.data()};
        int lengths[1] = {static_cast<int>(param_.size())};
        int formats[1] = {1};
        bench::Result r(PQexecPrepared(c_.get(), "knn", 1, values, lengths, formats, 0));
        ids.clear();
        if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) return failed(r.get(), sqlstate);
        for (int i = 0; i < PQntuples(r.get()); ++i) ids.push_back(std::atoll(PQgetvalue(r.get(), i, 0)));
        return true;
    }
    bool insert(int n, const float *v, std::string &sqlstate) {
        param_.clear();
        bench::encode_vector_binary(v, bench::kDim, param_);
        std::string ns = std::to_string(n);
        const char *values[2] = {ns.c_str(), param_.data()};
        int lengths[2] = {0, static_cast<int>(param_.size())};
        int formats[2] = {0, 1};
        bench::Result r(PQexecPrepared(c_.get(), "ins", 2, values, lengths, formats, 0));
        if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) return failed(r.get(), sqlstate);
        return true;
    }
    // The same row in an explicit transaction, so that COMMIT (where a quorum write waits) is
    // timed on its own: commit_ms.
    bool insert_and_commit(int n, const float *v, std::string &sqlstate, double &commit_ms) {
        if (!command("BEGIN", sqlstate)) return false;
        if (!insert(n, v, sqlstate)) {
            std::string ignored;
            command("ROLLBACK", ignored);
            return false;
        }
        Stopwatch commit;
        bool ok = command("COMMIT", sqlstate);
        commit_ms = commit.seconds() * 1e3;
        return ok;
    }
    Conn &conn() { return c_; }

private:
    static constexpr Oid INT4OID_ = 23;
    bool command(const char *sql, std::string &sqlstate) {
        bench::Result r(PQexec(c_.get(), sql));
        if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) return failed(r.get(), sqlstate);
        return true;
    }
    bool failed(PGresult *r, std::string &sqlstate) {
        const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        sqlstate = s ? s : (PQstatus(c_.get()) == CONNECTION_OK ? "?????" : "conn");
        if (std::getenv("BENCH_VERBOSE")) std::fprintf(stderr, "error: %s", PQresultErrorMessage(r));
        return false;
    }
    Conn c_;
    Oid vec_oid_ = 0;
    std::string param_;
};

// "strong-quorum": a strong read that asks a read quorum (meridian.strong_read_quorum).
std::vector<std::string> level_settings(const std::string &level, int ef) {
    bool quorum = level == "strong-quorum";
    return {"SET hnsw.ef_search = " + std::to_string(ef),
            "SET meridian.read_consistency = " + (quorum ? std::string("strong") : level),
            std::string("SET meridian.strong_read_quorum = ") + (quorum ? "on" : "off"),
            "SET meridian.max_staleness = '200ms'"};
}

struct read_result {
    double avg_ms = 0, p99_ms = 0, recall = 0;
    std::size_t ok = 0, failed = 0;
    std::map<std::string, int> errors;
};

constexpr std::size_t session_warmup = 50;

// warmup: how many queries run untimed first, on the same session. Each level reads through a
// session of its own, and a new backend's first queries pay for filling its caches (and a strong
// read's first one for connecting to the peers): timed, they were the p99 of 1,000 queries. On
// this machine a session's queries also keep getting faster over its first few hundred (eventual
// reads after 50 untimed: avg / p99 0.64 / 2.68 ms, after 200: 0.49 / 1.57, after 1,000: 0.33 /
// 0.98), so the local levels, eventual and bounded, both get the whole pass untimed first.
read_result read_pass(const region &r, const std::string &level, int ef, const FashionMnist &fm, const GroundTruth &gt,
                      std::size_t warmup) {
    session s(r.conninfo, level_settings(level, ef));
    std::vector<float> v(bench::kDim);
    std::vector<std::int64_t> ids;
    std::string state;
    for (std::size_t q = 0; q < std::min(warmup, gt.nq); ++q) {
        fm.test.to_float(q, v.data());
        s.knn(v.data(), ids, state);
    }
    read_result out;
    std::vector<double> lat;
    double sum = 0;
    for (std::size_t q = 0; q < gt.nq; ++q) {
        fm.test.to_float(q, v.data());
        Stopwatch one;
        bool ok = s.knn(v.data(), ids, state);
        double ms = one.seconds() * 1e3;
        if (!ok) {
            out.failed++;
            out.errors[state]++;
            // A level that cannot be served (each failure can take consistency_timeout) is
            // reported, not waited out over every query.
            if (out.failed >= 10 && out.ok == 0) {
                std::fprintf(stderr, "%s %s: gave up after %zu failed queries and none served\n", r.name.c_str(),
                             level.c_str(), out.failed);
                break;
            }
            continue;
        }
        out.ok++;
        lat.push_back(ms);
        sum += ms;
        out.recall += bench::recall_at_k(gt, q, fm.train, fm.test, ids.data(), ids.size());
    }
    if (out.ok) {
        out.avg_ms = sum / static_cast<double>(out.ok);
        out.p99_ms = bench::percentile(lat, 99);
        out.recall /= static_cast<double>(out.ok);
    }
    return out;
}

// Watches the block device that holds a path (/proc/diskstats, every 5 ms) for stalls: spells of
// at least 20 ms in which requests were in flight and none completed. All regions here share one
// virtual disk, so one stall holds up every region's WAL flushes at once; the report says how
// many commits overlapped one, so a reader can tell the disk's tail from the product's.
class disk_watch {
public:
    struct stall {
        double from, to;  // seconds on the bench's steady clock
    };
    explicit disk_watch(const std::string &path) {
        struct stat st {};
        if (stat(path.c_str(), &st) == 0) {
            major_ = major(st.st_dev);
            minor_ = minor(st.st_dev);
        }
        thread_ = std::thread([this] { run(); });
    }
    ~disk_watch() {
        stop_ = true;
        thread_.join();
    }
    bool watching() const { return found_; }
    // Stalls that overlap [from, to], the one still going on included (the run may end less than
    // a sample after the disk came back).
    std::vector<stall> stalls(double from, double to) {
        std::lock_guard<std::mutex> g(mu_);
        std::vector<stall> out;
        for (const stall &s : stalls_)
            if (s.to >= from && s.from <= to) out.push_back(s);
        if (stalled_ && since_ <= to) out.push_back({since_, now()});
        return out;
    }
    static double now() { return std::chrono::duration<double>(clock_type::now().time_since_epoch()).count(); }

private:
    // Completed requests (reads, writes, flushes) and requests in flight, or false.
    bool sample(unsigned long long &completed, unsigned long long &in_flight) {
        std::ifstream in("/proc/diskstats");
        unsigned ma, mi;
        std::string name;
        while (in >> ma >> mi >> name) {
            std::string rest;
            std::getline(in, rest);
            if (ma != major_ || mi != minor_) continue;
            std::istringstream f(rest);
            std::vector<unsigned long long> v;
            unsigned long long x;
            while (f >> x) v.push_back(x);
            if (v.size() < 11) return false;
            completed = v[0] + v[4] + (v.size() >= 17 ? v[15] : 0);  // reads, writes, flushes completed
            in_flight = v[8];
            return true;
        }
        return false;
    }
    void run() {
        unsigned long long done = 0;
        {
            std::lock_guard<std::mutex> g(mu_);
            since_ = now();
        }
        while (!stop_) {
            unsigned long long d, in_flight;
            double t = now();
            if (sample(d, in_flight)) {
                found_ = true;
                std::lock_guard<std::mutex> g(mu_);
                if (d != done || in_flight == 0) {
                    if (stalled_) stalls_.push_back({since_, t});
                    stalled_ = false;
                    done = d;
                    since_ = t;
                } else if (t - since_ >= 0.020) {
                    stalled_ = true;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    unsigned major_ = 0, minor_ = 0;
    std::atomic<bool> stop_{false}, found_{false};
    std::mutex mu_;
    std::vector<stall> stalls_;
    double since_ = 0;     // when requests last completed, or none were in flight
    bool stalled_ = false; // requests in flight and none completed for 20 ms since since_
    std::thread thread_;
};

struct write_result {
    double per_s = 0;
    double avg_ms = 0, p99_ms = 0;                // INSERT + COMMIT, at the client
    double commit_avg_ms = 0, commit_p99_ms = 0;  // COMMIT alone: where the quorum wait is
    std::size_t ok = 0, failed = 0;
    // The disk during the timed run: stalls of >= 20 ms, the longest, and the COMMIT p99 of the
    // commits that overlapped none.
    std::size_t disk_stalls = 0, commits_in_stalls = 0;
    double longest_stall_ms = 0, commit_p99_clear_ms = 0;
};

std::atomic<int> next_n{1000000};  // n of written rows (the loaded ones are 0..59,999)

// A written row's vector: a test image past the queries, every component shifted by 1,000, so
// written rows never enter a query's top 10 and later reads keep measuring the same recall.
void written_vector(const FashionMnist &fm, std::size_t i, float *v) {
    fm.test.to_float(1000 + i % (fm.test.n - 1000), v);
    for (int d = 0; d < bench::kDim; ++d) v[d] += 1000.0f;
}

// Writes from `writers` clients, one row per transaction: `warmup_seconds` untimed, then
// `seconds` timed. `synchronous_commit` is "on" (quorum writes) or "local"; with a `rate` (writes
// per second in all) each client paces itself to its share of it, so a local-commit run can be
// held to the load of a quorum run.
write_result write_run(const region &r, int writers, double seconds, const FashionMnist &fm, disk_watch &disk,
                       const std::string &synchronous_commit = "on", double rate = 0, double warmup_seconds = 2) {
    const std::size_t nw = static_cast<std::size_t>(writers);
    std::vector<std::vector<double>> lat(nw), commit_lat(nw);
    std::vector<std::vector<std::pair<double, double>>> commit_span(nw);  // on disk_watch's clock
    std::vector<std::size_t> failed(nw);
    std::vector<std::unique_ptr<session>> sessions;
    for (int w = 0; w < writers; ++w)
        sessions.push_back(std::make_unique<session>(r.conninfo, std::vector<std::string>{"SET synchronous_commit = " + synchronous_commit}));
    const auto secs_to = [](double s) { return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s)); };
    const auto timed_from = clock_type::now() + secs_to(warmup_seconds);
    const auto end = timed_from + secs_to(seconds);
    const auto gap = rate > 0 ? secs_to(static_cast<double>(writers) / rate) : clock_type::duration::zero();
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w)
        threads.emplace_back([&, w] {
            const std::size_t k = static_cast<std::size_t>(w);
            std::vector<float> v(bench::kDim);
            std::string state;
            std::size_t i = k;
            // Paced clients start spread over one gap, so their commits do not arrive in bursts.
            auto next = clock_type::now() + gap * w / writers;
            while (clock_type::now() < end) {
                if (rate > 0) {
                    std::this_thread::sleep_until(next);
                    next += gap;
                }
                const bool timed = clock_type::now() >= timed_from;
                written_vector(fm, i++, v.data());
                Stopwatch one;
                double commit_ms = 0;
                bool ok = sessions[k]->insert_and_commit(next_n++, v.data(), state, commit_ms);
                const double done = disk_watch::now();
                if (!timed) continue;
                if (ok) {
                    lat[k].push_back(one.seconds() * 1e3);
                    commit_lat[k].push_back(commit_ms);
                    commit_span[k].push_back({done - commit_ms / 1e3, done});
                } else
                    failed[k]++;
            }
        });
    for (auto &t : threads) t.join();
    const double secs = std::chrono::duration<double>(clock_type::now() - timed_from).count();
    write_result out;
    std::vector<double> all, commits, clear;
    double first = 1e300, last = 0;
    for (std::size_t k = 0; k < nw; ++k)
        for (auto &[from, to] : commit_span[k]) {
            first = std::min(first, from);
            last = std::max(last, to);
        }
    const std::vector<disk_watch::stall> stalls = disk.stalls(first, last);
    out.disk_stalls = stalls.size();
    for (const auto &st : stalls) out.longest_stall_ms = std::max(out.longest_stall_ms, (st.to - st.from) * 1e3);
    for (std::size_t k = 0; k < nw; ++k) {
        all.insert(all.end(), lat[k].begin(), lat[k].end());
        commits.insert(commits.end(), commit_lat[k].begin(), commit_lat[k].end());
        out.failed += failed[k];
        for (std::size_t j = 0; j < commit_span[k].size(); ++j) {
            auto [from, to] = commit_span[k][j];
            bool hit = std::any_of(stalls.begin(), stalls.end(), [&](const disk_watch::stall &st) { return st.to >= from && st.from <= to; });
            if (hit) out.commits_in_stalls++;
            else clear.push_back(commit_lat[k][j]);
        }
    }
    out.commit_p99_clear_ms = bench::percentile(clear, 99);
    out.ok = all.size();
    out.per_s = static_cast<double>(all.size()) / secs;
    auto avg = [](const std::vector<double> &x) {
        double sum = 0;
        for (double v : x) sum += v;
        return x.empty() ? 0 : sum / static_cast<double>(x.size());
    };
    out.avg_ms = avg(all);
    out.p99_ms = bench::percentile(all, 99);
    out.commit_avg_ms = avg(commits);
    out.commit_p99_ms = bench::percentile(commits, 99);
    return out;
}

// The wan-proxy's control connection.
class proxy_control {
public:
    explicit proxy_control(int port) {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0)
            throw std::runtime_error("cannot reach the wan-proxy control port " + std::to_string(port));
    }
    ~proxy_control() { close(fd_); }
    std::string command(const std::string &line) {
        std::string l = line + "\n";
        if (write(fd_, l.data(), l.size()) != static_cast<ssize_t>(l.size())) throw std::runtime_error("wan-proxy: write");
        std::string reply;
        char ch;
        while (read(fd_, &ch, 1) == 1 && ch != '\n') reply.push_back(ch);
        if (reply.rfind("ok", 0) != 0) throw std::runtime_error("wan-proxy: \"" + line + "\" answered \"" + reply + "\"");
        return reply;
    }

private:
    int fd_ = -1;
};

struct op {
    double start, end;  // seconds since the run began
    bool ok;
    std::string state;
};

struct side_result {
    std::size_t ops = 0, errors = 0;
    std::map<std::string, int> by_state;
    std::map<std::string, std::pair<int, int>> by_kind;  // kind -> ops, errors
};

std::vector<std::string> split(const std::string &s, char sep) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string x;
    while (std::getline(in, x, sep))
        if (!x.empty()) out.push_back(x);
    return out;
}

std::string checksum(const std::string &conninfo) {
    Conn c(conninfo);
    return c.scalar("SELECT meridian.table_checksum('items')");
}

void measure(const bench::Args &a) {
    std::vector<region> regions;
    for (const auto &spec : split(a.str("region", ""), ';')) {
        auto eq = spec.find('=');
        if (eq == std::string::npos) throw std::runtime_error("--region NAME=CONNINFO;NAME=CONNINFO...");
        regions.push_back({spec.substr(0, eq), spec.substr(eq + 1)});
    }
    if (regions.size() < 2) throw std::runtime_error("at least two --region entries (separated by ';')");
    const std::string out_dir = a.str("out", ".run/bench-consistency");
    const std::size_t nq = static_cast<std::size_t>(a.num("queries", 1000));
    const int writers = static_cast<int>(a.num("writers", 16));
    const int latency_writers = static_cast<int>(a.num("latency-writers", 4));
    const double write_seconds = static_cast<double>(a.num("write-seconds", 10));
    const double latency_seconds = static_cast<double>(a.num("latency-seconds", 60));
    const double partition_seconds = static_cast<double>(a.num("partition-seconds", 5));
    const std::string minority = a.str("minority", regions.back().name);
    const std::vector<std::string> minority_links = split(a.str("minority-links", ""), ',');
    const std::vector<std::string> read_regions = split(a.str("read-regions", regions.front().name), ',');

    FashionMnist fm = bench::load_fashion_mnist(a.str("data", "/usr/share/datasets/fashion-mnist"), false);
    GroundTruth gt = bench::cached_ground_truth(out_dir + "/groundtruth-" + std::to_string(nq) + ".bin", fm.train, fm.test,
                                                nq, bench::kK, 2, true);
    disk_watch disk(out_dir);
    proxy_control proxy(static_cast<int>(a.num("control", 0)));
    std::string report;
    auto emit = [&](const std::string &line) {
        report += line + "\n";
        std::fprintf(stderr, "%s\n", line.c_str());
    };

    // 1. ef_search.
    int ef = static_cast<int>(a.num("ef", 0));
    double ef_recall = 0;
    if (ef == 0) {
        for (int candidate : {40, 60, 80, 120, 200, 400}) {
            read_result r = read_pass(regions.front(), "eventual", candidate, fm, gt, 0);
            std::fprintf(stderr, "ef_search %d: recall@10 %.4f\n", candidate, r.recall);
            ef = candidate;
            ef_recall = r.recall;
            if (r.recall >= 0.99) break;
        }
    }

    // 2 and 3.
    emit("| region | ef_search | recall@10 | local (eventual) avg / p99 ms | bounded 200 ms avg / p99 ms | strong (all peers) avg / p99 ms | "
         "strong (read quorum) avg / p99 ms | failed reads |");
    emit("|---|---|---|---|---|---|---|---|");
    std::vector<std::string> write_lines;
    for (const auto &r : regions) {
        if (std::find(read_regions.begin(), read_regions.end(), r.name) == read_regions.end()) continue;
        std::fprintf(stderr, "%s: reads ...\n", r.name.c_str());
        // The local levels get the whole pass untimed first (the first also warms the region);
        // a strong read waits a round trip between queries, so its session gets a short warm-up.
        read_result ev = read_pass(r, "eventual", ef, fm, gt, gt.nq);
        read_result bo = read_pass(r, "bounded", ef, fm, gt, gt.nq);
        read_result st = read_pass(r, "strong", ef, fm, gt, session_warmup);
        read_result sq = read_pass(r, "strong-quorum", ef, fm, gt, session_warmup);
        char line[512];
        auto lat = [](const read_result &x) {
            return x.ok ? fmt("%.2f", x.avg_ms) + " / " + fmt("%.2f", x.p99_ms) : std::string("n/a (all failed)");
        };
        std::snprintf(line, sizeof line, "| %s | %d | %.4f | %s | %s | %s | %s | %zu of %zu |",
                      r.name.c_str(), ef, ev.recall, lat(ev).c_str(), lat(bo).c_str(), lat(st).c_str(), lat(sq).c_str(),
                      ev.failed + bo.failed + st.failed + sq.failed,
                      ev.ok + bo.ok + st.ok + sq.ok + ev.failed + bo.failed + st.failed + sq.failed);
        emit(line);
        // One line per write run, with the proxy's lateness over it (warm-up included): how far
        // the simulated links were from their exact delays.
        auto timed_run = [&](const std::string &kind, int n, double seconds, const std::string &sync, double rate) {
            proxy.command("lateness");
            write_result w = write_run(r, n, seconds, fm, disk, sync, rate);
            std::istringstream late(proxy.command("lateness").substr(3));
            double chunks = 0, p50_us = 0, p99_us = 0, max_us = 0;
            late >> chunks >> p50_us >> p99_us >> max_us;
            std::string disk_cells = disk.watching() ? std::to_string(w.disk_stalls) + ", longest " + fmt("%.0f", w.longest_stall_ms) +
                                                           " ms | " + std::to_string(w.commits_in_stalls) + " | " + fmt("%.2f", w.commit_p99_clear_ms)
                                                     : std::string("not measured | | ");
            std::snprintf(line, sizeof line, "| %s | %s | %d | %.0f | %.2f / %.2f | %.2f / %.2f | %zu | %s | %.2f / %.1f |", r.name.c_str(),
                          kind.c_str(), n, w.per_s, w.commit_avg_ms, w.commit_p99_ms, w.avg_ms, w.p99_ms, w.failed, disk_cells.c_str(),
                          p99_us / 1e3, max_us / 1e3);
            write_lines.push_back(line);
            return w;
        };
        // Quorum writes: commit latency with a few clients; the zero point, the same clients with
        // synchronous_commit = local paced to the rate the quorum run reached (a local commit's own
        // tail under the same load); then throughput with many clients.
        std::fprintf(stderr, "%s: quorum writes, %d clients ...\n", r.name.c_str(), latency_writers);
        write_result few = timed_run("quorum", latency_writers, latency_seconds, "on", 0);
        std::fprintf(stderr, "%s: local writes, %d clients at %.0f/s ...\n", r.name.c_str(), latency_writers, few.per_s);
        timed_run("local, same rate", latency_writers, latency_seconds, "local", few.per_s);
        if (writers > 0) {
            std::fprintf(stderr, "%s: quorum writes, %d clients ...\n", r.name.c_str(), writers);
            timed_run("quorum", writers, write_seconds, "on", 0);
        }
        for (auto *rr : {&ev, &bo, &st, &sq})
            for (auto &[state, n] : rr->errors) std::fprintf(stderr, "%s: %d reads failed with %s\n", r.name.c_str(), n, state.c_str());
    }
    (void)ef_recall;
    emit("");
    emit("| region | commit | clients | writes/s | COMMIT avg / p99 ms | INSERT + COMMIT avg / p99 ms | failed writes | "
         "disk stalls >= 20 ms | commits during a stall | COMMIT p99 of the others ms | wan-proxy lateness p99 / max ms |");
    emit("|---|---|---|---|---|---|---|---|---|---|---|");
    for (const auto &l : write_lines) emit(l);

    // 4. The partition.
    if (!minority_links.empty()) {
        const region *maj = nullptr, *min = nullptr;
        for (const auto &r : regions) {
            if (r.name == minority) min = &r;
            else if (!maj) maj = &r;
        }
        if (!min || !maj) throw std::runtime_error("--minority must name one of the regions");
        struct worker {
            const region *r;
            std::string kind;
        };
        std::vector<worker> workers;
        for (const region *r : {maj, min})
            for (const char *k : {"eventual", "bounded", "write", "write"}) workers.push_back({r, k});
        std::vector<std::vector<op>> ops(workers.size());
        std::atomic<bool> stop{false};
        const auto t0 = clock_type::now();
        auto since = [&] { return std::chrono::duration<double>(clock_type::now() - t0).count(); };
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < workers.size(); ++i)
            threads.emplace_back([&, i] {
                const worker &w = workers[i];
                std::unique_ptr<session> s;
                std::vector<float> v(bench::kDim);
                std::vector<std::int64_t> ids;
                std::size_t q = i;
                while (!stop) {
                    std::string state;
                    double start = since();
                    bool ok = false;
                    try {
                        if (!s)
                            s = std::make_unique<session>(w.r->conninfo, w.kind == "write"
                                                                              ? std::vector<std::string>{"SET synchronous_commit = on"}
                                                                              : level_settings(w.kind, ef));
                        if (w.kind == "write") written_vector(fm, q++, v.data());
                        else fm.test.to_float(q++ % nq, v.data());
                        ok = w.kind == "write" ? s->insert(next_n++, v.data(), state) : s->knn(v.data(), ids, state);
                        if (!ok && PQstatus(s->conn().get()) != CONNECTION_OK) s.reset();
                    } catch (const std::exception &e) {
                        state = "conn";
                        s.reset();
                        std::this_thread::sleep_for(std::chrono::milliseconds(100));
                    }
                    ops[i].push_back({start, since(), ok, state});
                }
            });
        std::this_thread::sleep_for(std::chrono::seconds(2));
        const double cut_at = since();
        for (const auto &l : minority_links) proxy.command("cut " + l);
        std::this_thread::sleep_for(std::chrono::duration<double>(partition_seconds));
        for (const auto &l : minority_links) proxy.command("restore " + l);
        const double healed_at = since();
        std::this_thread::sleep_for(std::chrono::seconds(2));
        stop = true;
        for (auto &t : threads) t.join();
        // Convergence after the heal (the load has stopped): every region's checksum at once (one
        // takes ~1.5 s over 70,000 rows of 784 dimensions); the time reported is when the first
        // check that found them all equal started.
        double converged_after = -1;
        while (since() - healed_at < 60) {
            const double check_started = since();
            std::vector<std::string> sums(regions.size());
            std::vector<std::thread> checks;
            for (std::size_t i = 0; i < regions.size(); ++i)
                checks.emplace_back([&, i] { sums[i] = checksum(regions[i].conninfo); });
            for (auto &t : checks) t.join();
            if (std::all_of(sums.begin(), sums.end(), [&](const std::string &s) { return s == sums.front(); })) {
                converged_after = check_started - healed_at;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        std::map<std::string, side_result> sides;
        for (std::size_t i = 0; i < workers.size(); ++i) {
            side_result &sr = sides[workers[i].r == maj ? "majority (" + maj->name + ")" : "minority (" + min->name + ")"];
            for (const op &o : ops[i]) {
                if (o.start < cut_at || o.start >= healed_at) continue;
                sr.ops++;
                auto &k = sr.by_kind[workers[i].kind];
                k.first++;
                if (!o.ok) {
                    sr.errors++;
                    k.second++;
                    sr.by_state[o.state]++;
                }
            }
        }
        emit("");
        emit("| " + fmt("%.0f", partition_seconds) + " s partition of " + min->name +
             " | operations started in it | errors | error rate | by kind (errors/ops) | errors by SQLSTATE |");
        emit("|---|---|---|---|---|---|");
        for (auto &[name, sr] : sides) {
            std::string kinds, states;
            for (auto &[k, v] : sr.by_kind) kinds += (kinds.empty() ? "" : ", ") + k + " " + std::to_string(v.second) + "/" + std::to_string(v.first);
            for (auto &[st, n] : sr.by_state) states += (states.empty() ? "" : ", ") + st + " " + std::to_string(n);
            emit("| " + name + " | " + std::to_string(sr.ops) + " | " + std::to_string(sr.errors) + " | " +
                 fmt("%.1f%%", sr.ops ? 100.0 * static_cast<double>(sr.errors) / static_cast<double>(sr.ops) : 0.0) + " | " +
                 kinds + " | " + (states.empty() ? "none" : states) + " |");
        }
        emit("");
        emit(converged_after >= 0 ? "After the heal every region had the same table_checksum " + fmt("%.2f", converged_after) +
                                        " s after the heal (the start of the first check that found them equal; the "
                                        "load ran 2 s past the heal)."
                                  : "After the heal the regions did NOT converge within 60 s.");
    }
    std::fputs(report.c_str(), stdout);
}

// ------------------------------------------------------------------------------------ writes
void writes(const bench::Args &a) {
    const region r{"primary", a.str("conninfo", "")};
    if (r.conninfo.empty()) throw std::runtime_error("--conninfo is required");
    const int n = static_cast<int>(a.num("latency-writers", 4));
    const double seconds = static_cast<double>(a.num("latency-seconds", 60));
    FashionMnist fm = bench::load_fashion_mnist(a.str("data", "/usr/share/datasets/fashion-mnist"), false);
    disk_watch disk(a.str("out", ".run/bench-syncrep"));
    std::printf("| synchronous_commit | clients | writes/s | COMMIT avg / p99 ms | INSERT + COMMIT avg / p99 ms | failed writes | "
                "disk stalls >= 20 ms | COMMIT p99 outside the stalls ms |\n|---|---|---|---|---|---|---|---|\n");
    double rate = 0;
    for (const char *sync : {"on", "local"}) {
        write_result w = write_run(r, n, seconds, fm, disk, sync, rate);
        rate = w.per_s;
        std::printf("| %s | %d | %.0f | %.2f / %.2f | %.2f / %.2f | %zu | %zu | %.2f |\n", sync, n, w.per_s, w.commit_avg_ms,
                    w.commit_p99_ms, w.avg_ms, w.p99_ms, w.failed, w.disk_stalls, w.commit_p99_clear_ms);
        std::fflush(stdout);
    }
}

}  // namespace

int main(int argc, char **argv) {
    try {
        if (argc < 2) throw std::runtime_error("usage: consistency-bench load|measure|writes --option value ...");
        std::string cmd = argv[1];
        bench::Args a(argc, argv, 2);
        if (cmd == "load") load(a);
        else if (cmd == "measure") measure(a);
        else if (cmd == "writes") writes(a);
        else throw std::runtime_error("unknown subcommand " + cmd);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "consistency-bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
