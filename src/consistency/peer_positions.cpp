// Strong reads ask every peer region for its current WAL position over libpq: the peer runs
// meridian.emit_heartbeat(), which writes a heartbeat after everything committed there so far,
// flushes it and returns its position. Once this region's replicator has applied that heartbeat,
// every write acknowledged in that region before the question arrived is applied here.
//
// Connections are opened on first use with the peer's catalog conninfo and kept for the life of
// the backend (a connection setup costs several round trips). All peers are asked at once, and
// the waiting polls their sockets with a short timeout so that query cancel and termination are
// served. A connection left mid-question by an error is closed at its next use.
// Plain C-style frames over malloc'd/TopMemoryContext state; no C++ resources.
#include "consistency/consistency.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

extern "C" {
#include "storage/pmsignal.h"
#include "utils/timestamp.h"
}

namespace meridian::consistency {

namespace {

struct peer_link {
    char name[NAMEDATALEN];
    char *conninfo = nullptr;  // TopMemoryContext
    PGconn *conn = nullptr;
    bool connecting = false;
    bool busy = false;         // a question is out: the connection is unusable until answered
};

constexpr int max_links = 64;
peer_link links[max_links];
int nlinks = 0;

void close_link(peer_link &l) {
    if (l.conn)
        PQfinish(l.conn);
    l.conn = nullptr;
    l.connecting = l.busy = false;
}

peer_link &link_for(const peer_entry &p) {
    for (int i = 0; i < nlinks; i++)
        if (std::strcmp(links[i].name, p.name) == 0) {
            if (std::strcmp(links[i].conninfo, p.conninfo) != 0) {
                close_link(links[i]);
                pfree(links[i].conninfo);
                links[i].conninfo = MemoryContextStrdup(TopMemoryContext, p.conninfo);
            }
            return links[i];
        }
    if (nlinks == max_links)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many peer regions (at most %d)", max_links)));
    peer_link &l = links[nlinks++];
    strlcpy(l.name, p.name, NAMEDATALEN);
    l.conninfo = MemoryContextStrdup(TopMemoryContext, p.conninfo);
    return l;
}

bool parse_lsn(const char *s, XLogRecPtr *out) {
    unsigned hi = 0, lo = 0;
    if (std::sscanf(s, "%X/%X", &hi, &lo) != 2)
        return false;
    *out = (static_cast<XLogRecPtr>(hi) << 32) | lo;
    return true;
}

enum class step { waiting_read, waiting_write, done, failed };

struct question {
    peer_link *link;
    step state;
    XLogRecPtr answer;
    char error[256];
};

void fail(question &q, const char *why) {
    const char *msg = q.link->conn ? PQerrorMessage(q.link->conn) : "";
    std::snprintf(q.error, sizeof q.error, "%s%s%s", why, *msg ? ": " : "", msg);
    // libpq messages end with a newline
    std::size_t n = std::strlen(q.error);
    while (n && (q.error[n - 1] == '\n' || q.error[n - 1] == ' '))
        q.error[--n] = '\0';
    close_link(*q.link);
    q.state = step::failed;
}

// Advances one question as far as it goes without blocking.
void advance(question &q) {
    peer_link &l = *q.link;
    if (l.connecting) {
        switch (PQconnectPoll(l.conn)) {
        case PGRES_POLLING_READING:
            q.state = step::waiting_read;
            return;
        case PGRES_POLLING_WRITING:
            q.state = step::waiting_write;
            return;
        case PGRES_POLLING_FAILED:
            fail(q, "could not connect");
            return;
        default:
            l.connecting = false;
            break;
        }
    }
    if (!l.busy) {
        if (!PQsendQuery(l.conn, "SELECT meridian.emit_heartbeat()")) {
            fail(q, "could not send the position request");
            return;
        }
        l.busy = true;
    }
    int flushed = PQflush(l.conn);
    if (flushed < 0) {
        fail(q, "could not send the position request");
        return;
    }
    if (flushed > 0) {
        q.state = step::waiting_write;
        return;
    }
    if (!PQconsumeInput(l.conn)) {
        fail(q, "lost the connection");
        return;
    }
    if (PQisBusy(l.conn)) {
        q.state = step::waiting_read;
        return;
    }
    PGresult *r = PQgetResult(l.conn);
    bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) &&
              parse_lsn(PQgetvalue(r, 0, 0), &q.answer);
    if (!ok) {
        const char *why = r ? PQresultErrorMessage(r) : "no result";
        std::snprintf(q.error, sizeof q.error, "meridian.emit_heartbeat() failed: %s", *why ? why : "unexpected result");
        std::size_t n = std::strlen(q.error);
        while (n && q.error[n - 1] == '\n')
            q.error[--n] = '\0';
    }
    if (r)
        PQclear(r);
    while ((r = PQgetResult(l.conn)) != nullptr)
        PQclear(r);
    l.busy = false;
    if (!ok) {
        close_link(l);
        q.state = step::failed;
        return;
    }
    q.state = step::done;
}

}  // namespace

void fetch_peer_positions(const catalog_view &c, TimestampTz deadline, XLogRecPtr *positions) {
    question *qs = static_cast<question *>(palloc0(sizeof(question) * c.npeers));
    struct pollfd *fds = static_cast<struct pollfd *>(palloc0(sizeof(struct pollfd) * c.npeers));
    for (int i = 0; i < c.npeers; i++) {
        question &q = qs[i];
        q.link = &link_for(c.peers[i]);
        peer_link &l = *q.link;
        // Left mid-question or broken by an earlier statement: start afresh.
        if (l.conn && (l.busy || l.connecting || PQstatus(l.conn) != CONNECTION_OK))
            close_link(l);
        if (!l.conn) {
            const char *keys[] = {"dbname", "application_name", nullptr};
            const char *values[] = {l.conninfo, "meridian strong read", nullptr};
            l.conn = PQconnectStartParams(keys, values, 1);
            if (!l.conn || PQstatus(l.conn) == CONNECTION_BAD) {
                fail(q, "could not connect");
                continue;
            }
            if (PQsetnonblocking(l.conn, 1) != 0) {
                fail(q, "could not connect");
                continue;
            }
            l.connecting = true;
        }
        advance(q);
    }
    for (;;) {
        int nfds = 0;
        for (int i = 0; i < c.npeers; i++) {
            question &q = qs[i];
            if (q.state == step::waiting_read || q.state == step::waiting_write) {
                fds[nfds].fd = PQsocket(q.link->conn);
                fds[nfds].events = q.state == step::waiting_read ? POLLIN : POLLOUT;
                fds[nfds].revents = 0;
                nfds++;
            }
        }
        if (nfds == 0)
            break;
        TimestampTz now = GetCurrentTimestamp();
        if (now >= deadline)
            break;
        long ms = static_cast<long>((deadline - now + 999) / 1000);
        int rc = poll(fds, nfds, static_cast<int>(ms < 10 ? ms : 10));
        if (rc < 0 && errno != EINTR)
            ereport(ERROR, (errcode_for_socket_access(), errmsg("could not wait for the peer regions: %m")));
        CHECK_FOR_INTERRUPTS();
        if (!PostmasterIsAlive())
            ereport(FATAL, (errcode(ERRCODE_ADMIN_SHUTDOWN), errmsg("postmaster exited during a strong read")));
        int k = 0;
        for (int i = 0; i < c.npeers; i++) {
            question &q = qs[i];
            if (q.state == step::waiting_read || q.state == step::waiting_write) {
                if (fds[k].revents)
                    advance(q);
                k++;
            }
        }
    }
    // Unanswered questions and failures: name the first such peer (and how many there are).
    int missing = 0, first = -1;
    for (int i = 0; i < c.npeers; i++)
        if (qs[i].state != step::done) {
            missing++;
            if (first < 0)
                first = i;
            if (qs[i].state != step::failed) {
                close_link(*qs[i].link);
                std::snprintf(qs[i].error, sizeof qs[i].error, "no answer within meridian.consistency_timeout (%d ms)",
                              consistency_timeout_ms);
            }
        }
    if (first >= 0)
        ereport(ERROR, (errcode(errcode_peer_unreachable),
                        errmsg("strong read: region \"%s\" could not be asked for its position", c.peers[first].name),
                        errdetail("%s%s", qs[first].error,
                                  missing > 1 ? psprintf(" (%d peer regions did not answer)", missing) : ""),
                        errhint("A strong read needs every peer region; read with meridian.read_consistency = bounded "
                                "or eventual while one is unreachable.")));
    for (int i = 0; i < c.npeers; i++)
        positions[i] = qs[i].answer;
    pfree(qs);
    pfree(fds);
}

}  // namespace meridian::consistency
