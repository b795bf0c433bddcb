#include "pq.hpp"

namespace meridian::replicator {

namespace {
std::string trimmed(const char *m) {
    std::string s = m ? m : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}
}  // namespace

connection connection::open(const std::string &conninfo,
                            const std::vector<std::pair<std::string, std::string>> &overrides) {
    std::vector<const char *> keys{"dbname"}, values{conninfo.c_str()};
    for (const auto &[k, v] : overrides) {
        keys.push_back(k.c_str());
        values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    PGconn *c = PQconnectdbParams(keys.data(), values.data(), 1);
    if (c == nullptr)
        throw pq_error("out of memory allocating a libpq connection");
    if (PQstatus(c) != CONNECTION_OK) {
        std::string m = trimmed(PQerrorMessage(c));
        PQfinish(c);
        throw pq_error(m);
    }
    return connection(c);
}

connection &connection::operator=(connection &&o) noexcept {
    if (this != &o) {
        close();
        conn_ = o.conn_;
        o.conn_ = nullptr;
    }
    return *this;
}

void connection::close() noexcept {
    if (conn_)
        PQfinish(conn_);
    conn_ = nullptr;
}

std::string connection::error_message() const { return trimmed(conn_ ? PQerrorMessage(conn_) : "not connected"); }

result connection::check(PGresult *r, ExecStatusType expect) {
    result res(r);
    if (!res)
        throw pq_error(error_message());
    ExecStatusType st = PQresultStatus(r);
    if (st != expect) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        std::string m = trimmed(PQresultErrorMessage(r));
        if (m.empty())
            m = std::string("unexpected result status ") + PQresStatus(st);
        throw pq_error(m, state ? state : "");
    }
    return res;
}

result connection::exec(const std::string &sql, ExecStatusType expect) {
    if (!conn_)
        throw pq_error("not connected");
    return check(PQexec(conn_, sql.c_str()), expect);
}

result connection::exec_params(const std::string &sql, const std::vector<const char *> &params,
                               ExecStatusType expect) {
    if (!conn_)
        throw pq_error("not connected");
    return check(PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr, params.data(), nullptr,
                              nullptr, 0),
                 expect);
}

void connection::prepare(const std::string &name, const std::string &sql) {
    if (!conn_)
        throw pq_error("not connected");
    check(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr), PGRES_COMMAND_OK);
}

result connection::exec_prepared(const std::string &name, const std::vector<const char *> &params,
                                 ExecStatusType expect) {
    if (!conn_)
        throw pq_error("not connected");
    return check(PQexecPrepared(conn_, name.c_str(), static_cast<int>(params.size()), params.data(), nullptr, nullptr, 0),
                 expect);
}

result connection::exec_binary_param(const std::string &sql, const void *data, int size, ExecStatusType expect) {
    if (!conn_)
        throw pq_error("not connected");
    const char *values[1] = {static_cast<const char *>(data)};
    int lengths[1] = {size};
    int formats[1] = {1};
    return check(PQexecParams(conn_, sql.c_str(), 1, nullptr, values, lengths, formats, 0), expect);
}

std::string connection::quote_literal(const std::string &s) const {
    char *q = PQescapeLiteral(conn_, s.c_str(), s.size());
    if (!q)
        throw pq_error(error_message());
    std::string out(q);
    PQfreemem(q);
    return out;
}

std::string connection::quote_ident(const std::string &s) const {
    char *q = PQescapeIdentifier(conn_, s.c_str(), s.size());
    if (!q)
        throw pq_error(error_message());
    std::string out(q);
    PQfreemem(q);
    return out;
}

}  // namespace meridian::replicator
