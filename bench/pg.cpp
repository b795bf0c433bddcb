#include <cstdlib>
#include "pg.hpp"

#include "util.hpp"

#include <arpa/inet.h>
#include <sys/select.h>

#include <cstring>
#include <stdexcept>

namespace bench {

namespace {

std::string pg_error(PGconn *c, PGresult *r) {
    std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return msg;
}

void put_be16(std::string &out, std::uint16_t v) {
    v = htons(v);
    out.append(reinterpret_cast<const char *>(&v), 2);
}

void put_be32(std::string &out, std::uint32_t v) {
    v = htonl(v);
    out.append(reinterpret_cast<const char *>(&v), 4);
}

std::string quote_ident(Conn &c, const std::string &s) {
    char *q = PQescapeIdentifier(c.get(), s.c_str(), s.size());
    if (!q) throw std::runtime_error("bad identifier " + s);
    std::string r = q;
    PQfreemem(q);
    return r;
}

}  // namespace

Conn::Conn(const std::string &conninfo) {
    c_ = PQconnectdb(conninfo.c_str());
    if (PQstatus(c_) != CONNECTION_OK) {
        std::string msg = pg_error(c_, nullptr);
        PQfinish(c_);
        c_ = nullptr;
        throw std::runtime_error("cannot connect (" + conninfo + "): " + msg);
    }
    PQsetNoticeProcessor(c_, [](void *, const char *) {}, nullptr);  // keep NOTICEs off the report
}

Conn::~Conn() {
    if (c_) PQfinish(c_);
}

void Conn::exec(const std::string &sql) {
    Result r(PQexec(c_, sql.c_str()));
    auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw std::runtime_error(sql + ": " + pg_error(c_, r.get()));
}

Result Conn::query(const std::string &sql) {
    Result r(PQexec(c_, sql.c_str()));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) throw std::runtime_error(sql + ": " + pg_error(c_, r.get()));
    return r;
}

std::string Conn::scalar(const std::string &sql) {
    Result r = query(sql);
    return (PQntuples(r.get()) > 0 && !PQgetisnull(r.get(), 0, 0)) ? PQgetvalue(r.get(), 0, 0) : "";
}

void Conn::prepare(const std::string &name, const std::string &sql, const std::vector<Oid> &types) {
    Result r(PQprepare(c_, name.c_str(), sql.c_str(), static_cast<int>(types.size()), types.data()));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) throw std::runtime_error(sql + ": " + pg_error(c_, r.get()));
}

std::string conninfo_for(const std::string &base, const std::string &db) {
    return (base.empty() ? "" : base + " ") + "dbname=" + db;
}

const char *to_string(WireFormat f) { return f == WireFormat::binary ? "binary" : "text"; }

void encode_vector_binary(const float *v, int dim, std::string &out) {
    put_be16(out, static_cast<std::uint16_t>(dim));
    put_be16(out, 0);
    for (int d = 0; d < dim; ++d) {
        std::uint32_t bits;
        std::memcpy(&bits, &v[d], 4);
        put_be32(out, bits);
    }
}

void encode_vector_text(const float *v, int dim, std::string &out) {
    char buf[32];
    out.push_back('[');
    for (int d = 0; d < dim; ++d) {
        if (d) out.push_back(',');
        out.append(buf, static_cast<std::size_t>(std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v[d]))));
    }
    out.push_back(']');
}

Oid vector_type_oid(Conn &c) {
    std::string oid = c.scalar("SELECT to_regtype('vector')::oid");
    if (oid.empty() || oid == "0") throw std::runtime_error("type vector does not exist (is the extension created?)");
    return static_cast<Oid>(std::stoul(oid));
}

double copy_load(Conn &c, const std::string &table, const Images &images, std::size_t first, std::size_t count,
                 std::int32_t id_base, WireFormat fmt) {
    const std::string t = quote_ident(c, table);
    c.exec("CREATE TABLE " + t + " (id int PRIMARY KEY, embedding vector(" + std::to_string(images.dim) + "))");
    // BENCH_STORAGE (default plain): the column's storage. PLAIN keeps 784-dimension vectors in
    // the row instead of TOAST (docs/hnsw.md, performance notes); "default" keeps the type's.
    const char *storage = std::getenv("BENCH_STORAGE");
    std::string st = storage && *storage ? storage : "plain";
    if (st != "default") c.exec("ALTER TABLE " + t + " ALTER embedding SET STORAGE " + st);
    const std::string copy_sql =
        "COPY " + t + " (id, embedding) FROM STDIN" + (fmt == WireFormat::binary ? " WITH (FORMAT binary)" : "");
    {
        // PQexec returns PGRES_COPY_IN and leaves the connection streaming rows with PQputCopyData.
        Result r(PQexec(c.get(), copy_sql.c_str()));
        if (PQresultStatus(r.get()) != PGRES_COPY_IN) throw std::runtime_error(copy_sql + ": " + pg_error(c.get(), r.get()));
    }
    Stopwatch sw;
    std::string buf;
    std::vector<float> v(static_cast<std::size_t>(images.dim));
    auto flush = [&](bool force) {
        if (buf.size() < (1u << 20) && !force) return;
        if (PQputCopyData(c.get(), buf.data(), static_cast<int>(buf.size())) != 1)
            throw std::runtime_error("COPY: " + pg_error(c.get(), nullptr));
        buf.clear();
    };
    if (fmt == WireFormat::binary) {
        static const char sig[] = "PGCOPY\n\377\r\n";
        buf.append(sig, 11);
        put_be32(buf, 0);  // flags
        put_be32(buf, 0);  // header extension length
    }
    for (std::size_t i = 0; i < count; ++i) {
        images.to_float(first + i, v.data());
        const std::int32_t id = id_base + static_cast<std::int32_t>(i);
        if (fmt == WireFormat::binary) {
            put_be16(buf, 2);
            put_be32(buf, 4);
            put_be32(buf, static_cast<std::uint32_t>(id));
            put_be32(buf, static_cast<std::uint32_t>(4 + 4 * images.dim));
            encode_vector_binary(v.data(), images.dim, buf);
        } else {
            buf += std::to_string(id);
            buf.push_back('\t');
            encode_vector_text(v.data(), images.dim, buf);
            buf.push_back('\n');
        }
        flush(false);
    }
    if (fmt == WireFormat::binary) put_be16(buf, 0xFFFF);  // trailer
    flush(true);
    if (PQputCopyEnd(c.get(), nullptr) != 1) throw std::runtime_error("COPY: " + pg_error(c.get(), nullptr));
    Result r(PQgetResult(c.get()));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) throw std::runtime_error("COPY: " + pg_error(c.get(), r.get()));
    while (Result(PQgetResult(c.get()))) {
    }
    return static_cast<double>(count) / sw.seconds();
}

double create_index_with_progress(Conn &c, const std::string &progress_conninfo, const std::string &create_sql,
                                  double poll_seconds, const std::function<void(const std::string &)> &on_progress) {
    Conn watcher(progress_conninfo);
    const std::string pid = std::to_string(c.backend_pid());
    watcher.prepare("progress",
                    "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total "
                    "FROM pg_stat_progress_create_index WHERE pid = " + pid,
                    {});
    Stopwatch sw;
    if (!PQsendQuery(c.get(), create_sql.c_str())) throw std::runtime_error(create_sql + ": " + pg_error(c.get(), nullptr));
    std::string last;
    const int sock = PQsocket(c.get());
    for (;;) {
        if (!PQconsumeInput(c.get())) throw std::runtime_error(create_sql + ": " + pg_error(c.get(), nullptr));
        if (!PQisBusy(c.get())) break;
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(sock, &fds);
        timeval tv{static_cast<time_t>(poll_seconds), static_cast<suseconds_t>((poll_seconds - static_cast<long>(poll_seconds)) * 1e6)};
        if (select(sock + 1, &fds, nullptr, nullptr, &tv) > 0) continue;  // input arrived: consume it
        Result p(PQexecPrepared(watcher.get(), "progress", 0, nullptr, nullptr, nullptr, 0));
        if (PQresultStatus(p.get()) != PGRES_TUPLES_OK || PQntuples(p.get()) == 0) continue;
        auto num = [&](int col) { return std::stoll(PQgetvalue(p.get(), 0, col)); };
        std::string line = PQgetvalue(p.get(), 0, 0);
        if (num(4) > 0 || num(3) > 0) line += ": tuples " + std::to_string(num(3)) + " / " + std::to_string(num(4));
        if (num(2) > 0) line += ", blocks " + std::to_string(num(1)) + " / " + std::to_string(num(2));
        if (line != last) {
            on_progress(fmt("[%6.1f s] ", sw.seconds()) + line);
            last = line;
        }
    }
    Result r(PQgetResult(c.get()));
    const double secs = sw.seconds();
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) throw std::runtime_error(create_sql + ": " + pg_error(c.get(), r.get()));
    while (Result(PQgetResult(c.get()))) {
    }
    return secs;
}

KnnQuery::KnnQuery(Conn &c, const std::string &table, int k, WireFormat fmt) : c_(c), fmt_(fmt) {
    c.prepare("knn", "SELECT id FROM " + quote_ident(c, table) + " ORDER BY embedding <-> $1 LIMIT " + std::to_string(k),
              {vector_type_oid(c)});
}

std::vector<std::int64_t> KnnQuery::run(const float *v, int dim) {
    param_.clear();
    if (fmt_ == WireFormat::binary) encode_vector_binary(v, dim, param_);
    else encode_vector_text(v, dim, param_);
    const char *values[1] = {param_.data()};
    const int lengths[1] = {static_cast<int>(param_.size())};
    const int formats[1] = {fmt_ == WireFormat::binary ? 1 : 0};
    // Results in binary: id is int4, 4 big-endian bytes.
    Result r(PQexecPrepared(c_.get(), "knn", 1, values, lengths, formats, 1));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) throw std::runtime_error("k-NN query: " + pg_error(c_.get(), r.get()));
    std::vector<std::int64_t> ids(static_cast<std::size_t>(PQntuples(r.get())));
    for (std::size_t i = 0; i < ids.size(); ++i) {
        std::uint32_t be;
        std::memcpy(&be, PQgetvalue(r.get(), static_cast<int>(i), 0), 4);
        ids[i] = static_cast<std::int32_t>(ntohl(be));
    }
    return ids;
}

}  // namespace bench
