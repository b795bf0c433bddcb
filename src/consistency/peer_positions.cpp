// Strong reads ask every peer region for its current WAL position over libpq: the peer runs
// meridian.emit_heartbeat(), which writes a heartbeat after everything committed there so far,
// flushes it and returns its position. Once this region's replicator has applied that heartbeat,
// every write acknowledged in that region before the question arrived is applied here. The peer
// also says how far it has applied every other region (its replication origins): with a read
// quorum (meridian.strong_read_quorum), a quorum write acknowledged in a region that was not
// heard from is in one that was, and this region waits until it has applied that far too.
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
#include <algorithm>

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

constexpr const char *position_question =
    "SELECT meridian.emit_heartbeat(), coalesce((SELECT string_agg(substr(o.roname, 10) || '=' || "
    "pg_catalog.pg_replication_origin_progress(o.roname, false)::text, ',') FROM pg_catalog.pg_replication_origin o "
    "WHERE o.roname LIKE 'meridian\\_%' AND pg_catalog.pg_replication_origin_progress(o.roname, false) IS NOT NULL), '')";

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

enum class step { waiting_read, waiting_write, done, failed, skipped };

struct question {
    peer_link *link;
    step state;
    XLogRecPtr answer;
    char *applied;  // "region=LSN,...": what the peer has applied from the others (palloc'd)
    char error[256];
};

// Reads whatever an earlier, abandoned question left on the connection; true when it is idle now.
bool drain(peer_link &l) {
    if (!l.busy)
        return true;
    if (!PQconsumeInput(l.conn))
        return false;
    while (!PQisBusy(l.conn)) {
        PGresult *r = PQgetResult(l.conn);
        if (!r) {
            l.busy = false;
            return true;
        }
        PQclear(r);
    }
    return false;
}

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
        if (!PQsendQuery(l.conn, position_question)) {
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
    bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 2 &&
              !PQgetisnull(r, 0, 0) && parse_lsn(PQgetvalue(r, 0, 0), &q.answer);
    if (ok)
        q.applied = pstrdup(PQgetvalue(r, 0, 1));
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

void fetch_peer_positions(const catalog_view &c, TimestampTz deadline, int needed, XLogRecPtr *targets) {
    question *qs = static_cast<question *>(palloc0(sizeof(question) * c.npeers));
    struct pollfd *fds = static_cast<struct pollfd *>(palloc0(sizeof(struct pollfd) * c.npeers));
    bool quorum = needed < c.npeers;
    for (int i = 0; i < c.npeers; i++) {
        question &q = qs[i];
        q.link = &link_for(c.peers[i]);
        peer_link &l = *q.link;
        if (l.conn && PQstatus(l.conn) == CONNECTION_BAD)
            close_link(l);
        // An earlier read left a question out (a read quorum did not wait for it, or an error
        // interrupted it). Reuse the connection once its answer is in; until then a read quorum
        // goes without this peer, and a read of every peer starts it afresh.
        if (l.conn && !l.connecting && !drain(l)) {
            if (quorum && PQstatus(l.conn) == CONNECTION_OK) {
                q.state = step::skipped;
                continue;
            }
            close_link(l);
        }
        if (!l.conn) {
            const char *keys[] = {"dbname", "application_name", nullptr};
            const char *values[] = {l.conninfo, "meridian strong read", nullptr};
            l.conn = PQconnectStartParams(keys, values, 1);
            if (!l.conn || PQstatus(l.conn) == CONNECTION_BAD || PQsetnonblocking(l.conn, 1) != 0) {
                fail(q, "could not connect");
                continue;
            }
            l.connecting = true;
        }
        advance(q);
    }
    for (;;) {
        int nfds = 0, answered = 0;
        for (int i = 0; i < c.npeers; i++) {
            question &q = qs[i];
            if (q.state == step::done)
                answered++;
            if (q.state == step::waiting_read || q.state == step::waiting_write) {
                fds[nfds].fd = PQsocket(q.link->conn);
                fds[nfds].events = q.state == step::waiting_read ? POLLIN : POLLOUT;
                fds[nfds].revents = 0;
                nfds++;
            }
        }
        if (nfds == 0 || answered >= needed)
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
    int answered = 0, first = -1, missing = 0;
    for (int i = 0; i < c.npeers; i++) {
        if (qs[i].state == step::done) {
            answered++;
            continue;
        }
        missing++;
        if (first < 0 || (qs[first].state != step::failed && qs[i].state == step::failed))
            first = i;  // prefer a peer that failed, with its reason
    }
    if (answered < needed) {
        for (int i = 0; i < c.npeers; i++)
            if (qs[i].state == step::waiting_read || qs[i].state == step::waiting_write) {
                close_link(*qs[i].link);
                std::snprintf(qs[i].error, sizeof qs[i].error, "no answer within meridian.consistency_timeout (%d ms)",
                              consistency_timeout_ms);
            } else if (qs[i].state == step::skipped) {
                std::snprintf(qs[i].error, sizeof qs[i].error, "its connection is still busy with an earlier question");
            }
        ereport(ERROR, (errcode(errcode_peer_unreachable),
                        errmsg("strong read: region \"%s\" could not be asked for its position", c.peers[first].name),
                        errdetail("%s%s", qs[first].error,
                                  missing > 1 ? psprintf(" (%d peer regions did not answer)", missing) : ""),
                        errhint("A strong read needs %s; read with meridian.read_consistency = bounded or eventual "
                                "while they are unreachable.",
                                quorum ? "a read quorum of regions" : "every peer region")));
    }
    // Questions still out (a read quorum answered first) stay on their connections: drained at next use.
    for (int i = 0; i < c.npeers; i++) {
        const question &q = qs[i];
        if (q.state != step::done)
            continue;
        targets[i] = std::max(targets[i], q.answer);
        // "region=X/Y,...": what this peer has applied from each region.
        for (char *item = q.applied; item && *item;) {
            char *comma = std::strchr(item, ',');
            if (comma)
                *comma = '\0';
            char *eq = std::strrchr(item, '=');
            XLogRecPtr lsn = 0;
            if (eq && parse_lsn(eq + 1, &lsn)) {
                *eq = '\0';
                for (int j = 0; j < c.npeers; j++)
                    if (j != i && std::strcmp(c.peers[j].name, item) == 0)
                        targets[j] = std::max(targets[j], lsn);
            }
            item = comma ? comma + 1 : nullptr;
        }
    }
    pfree(qs);
    pfree(fds);
}

}  // namespace meridian::consistency
