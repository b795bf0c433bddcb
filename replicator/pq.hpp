// Thin RAII over libpq for meridian-replicator: a connection that owns its PGconn, results that
// own their PGresult, and one exception type that carries the server's SQLSTATE and message.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace meridian::replicator {

// A libpq or server error. sqlstate is empty for client-side failures (connection refused, ...).
class pq_error : public std::runtime_error {
public:
    pq_error(std::string message, std::string sqlstate = {})
        : std::runtime_error(std::move(message)), sqlstate_(std::move(sqlstate)) {}
    const std::string &sqlstate() const noexcept { return sqlstate_; }

private:
    std::string sqlstate_;
};

struct result_deleter {
    void operator()(PGresult *r) const noexcept { PQclear(r); }
};
using result = std::unique_ptr<PGresult, result_deleter>;

class connection {
public:
    connection() = default;
    // Connects with PQconnectdbParams(expand_dbname = 1): `conninfo` first, then each
    // (keyword, value) override. Throws pq_error.
    static connection open(const std::string &conninfo,
                           const std::vector<std::pair<std::string, std::string>> &overrides = {});
    connection(connection &&o) noexcept : conn_(o.conn_) { o.conn_ = nullptr; }
    connection &operator=(connection &&o) noexcept;
    connection(const connection &) = delete;
    connection &operator=(const connection &) = delete;
    ~connection() { close(); }

    void close() noexcept;
    bool is_open() const noexcept { return conn_ != nullptr; }
    PGconn *get() const noexcept { return conn_; }

    // Simple-query execution; throws pq_error unless the status is one of the expected.
    result exec(const std::string &sql, ExecStatusType expect = PGRES_TUPLES_OK);
    // Extended protocol with text parameters (nullptr = NULL), text results.
    result exec_params(const std::string &sql, const std::vector<const char *> &params,
                       ExecStatusType expect = PGRES_TUPLES_OK);
    // A named prepared statement (parsed and planned once), and its execution with text parameters.
    void prepare(const std::string &name, const std::string &sql);
    result exec_prepared(const std::string &name, const std::vector<const char *> &params = {},
                         ExecStatusType expect = PGRES_TUPLES_OK);
    // One binary parameter (e.g. bytea), text results.
    result exec_binary_param(const std::string &sql, const void *data, int size,
                             ExecStatusType expect = PGRES_TUPLES_OK);
    std::string quote_literal(const std::string &s) const;
    std::string quote_ident(const std::string &s) const;
    std::string error_message() const;

private:
    explicit connection(PGconn *c) : conn_(c) {}
    result check(PGresult *r, ExecStatusType expect);
    PGconn *conn_ = nullptr;
};

// The value of row `row`, column `col` (empty string for NULL); is_null to tell them apart.
inline std::string value(const result &r, int row, int col) {
    return PQgetisnull(r.get(), row, col) ? std::string() : std::string(PQgetvalue(r.get(), row, col));
}
inline bool is_null(const result &r, int row, int col) { return PQgetisnull(r.get(), row, col) != 0; }

}  // namespace meridian::replicator
