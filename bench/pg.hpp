// libpq helpers shared by the benchmark and the demo: connections, the pgvector wire format of
// `vector` (text '[1,2,3]' and binary: int16 dim, int16 0, dim float4, all big-endian), bulk
// loading with COPY, CREATE INDEX with progress from pg_stat_progress_create_index, and
// prepared k-NN queries.
#pragma once

#include "dataset.hpp"

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bench {

struct ResultDeleter {
    void operator()(PGresult *r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

class Conn {
public:
    // conninfo: a libpq connection string; empty fields come from PGHOST/PGPORT/PGUSER.
    explicit Conn(const std::string &conninfo);
    ~Conn();
    Conn(const Conn &) = delete;
    Conn &operator=(const Conn &) = delete;

    PGconn *get() const { return c_; }
    void exec(const std::string &sql);                  // throws unless the command succeeds
    Result query(const std::string &sql);               // throws unless it returns tuples
    std::string scalar(const std::string &sql);         // first column of the first row ("" if none)
    void prepare(const std::string &name, const std::string &sql, const std::vector<Oid> &types);
    int backend_pid() const { return PQbackendPID(c_); }

private:
    PGconn *c_ = nullptr;
};

// "dbname=<db>" plus whatever the base conninfo says.
std::string conninfo_for(const std::string &base, const std::string &db);

enum class WireFormat { text, binary };
const char *to_string(WireFormat f);

// pgvector-compatible encodings of one vector.
void encode_vector_binary(const float *v, int dim, std::string &out);  // appends
void encode_vector_text(const float *v, int dim, std::string &out);    // appends "[..]"

// Creates `table`(id int primary key, embedding vector(dim)) and loads images[first, first+count)
// with COPY (binary or text), ids id_base + i. Returns the rows/s achieved.
double copy_load(Conn &c, const std::string &table, const Images &images, std::size_t first, std::size_t count,
                 std::int32_t id_base, WireFormat fmt);

// Runs `create_sql` on `c` while a second connection polls pg_stat_progress_create_index for
// c's backend; on_progress is called with a one-line description whenever it changes (at most
// every poll_seconds). Returns the wall time of the statement in seconds.
double create_index_with_progress(Conn &c, const std::string &progress_conninfo, const std::string &create_sql,
                                  double poll_seconds, const std::function<void(const std::string &)> &on_progress);

// A prepared "SELECT id FROM <table> ORDER BY embedding <-> $1 LIMIT k" on one connection.
class KnnQuery {
public:
    KnnQuery(Conn &c, const std::string &table, int k, WireFormat fmt);
    // Runs the query for vector v and returns the ids in order.
    std::vector<std::int64_t> run(const float *v, int dim);

private:
    Conn &c_;
    WireFormat fmt_;
    std::string param_;
};

// Oid of the type `vector` in the current database (as created by the extension).
Oid vector_type_oid(Conn &c);

}  // namespace bench
