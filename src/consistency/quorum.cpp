// Quorum writes (docs/consistency.md). PostgreSQL's synchronous replication makes COMMIT wait:
// meridian-replicator keeps synchronous_standby_names = 'ANY w-1 (<peer regions>)', and each peer's
// replicator streams from this region with application_name = its region name and confirms a
// transaction only after applying it durably. This file adds what PostgreSQL lacks:
//  - admission: before a transaction that wrote a replicated table commits, it counts the peers
//    whose stream acknowledged within meridian.heartbeat_timeout and refuses (MR001) when fewer
//    than w-1 are live, instead of waiting for acknowledgements that will not come;
//  - scope: a transaction that wrote no replicated table commits locally (synchronous_commit =
//    local for it), so local tables never wait for other regions. Only while
//    synchronous_standby_names names peer regions and nothing else, as the replicator sets it: a
//    synchronous physical standby of a server that uses Meridian only for its vector type and
//    index keeps every commit waiting for it.
// The writes are noticed by a statement trigger that meridian.replicate_table installs
// (meridian_quorum_write); replicated writes applied by meridian-replicator do not fire it.
#include "consistency/consistency.hpp"

extern "C" {
#include "access/xact.h"
#include "commands/trigger.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(meridian_note_replicated_write);
}

namespace meridian::consistency {

namespace {

bool wrote_replicated = false;
int quorum_of_transaction = 1;  // meridian.write_quorum() when the transaction first wrote

// Whether synchronous_standby_names names only peer regions of this database's catalog (as
// meridian-replicator sets it): then a commit waits for other regions only, and one that wrote no
// replicated table need not wait at all. A name that is no peer's ('*', a physical standby) is
// the DBA's: their commits wait as PostgreSQL says.
bool standbys_are_peer_regions() {
    const catalog_view &c = current_catalog();
    if (!c.installed || c.npeers == 0 || SyncRepConfig->nmembers == 0)
        return false;
    const char *member = SyncRepConfig->member_names;
    for (int i = 0; i < SyncRepConfig->nmembers; i++, member += strlen(member) + 1) {
        bool peer = false;
        // Matched as PostgreSQL matches application_name: case-insensitively.
        for (int j = 0; j < c.npeers && !peer; j++)
            peer = pg_strcasecmp(member, c.peers[j].name) == 0;
        if (!peer)
            return false;
    }
    return true;
}

// Walsenders of peers named in synchronous_standby_names that acknowledged recently.
int live_quorum_peers(TimestampTz now) {
    int live = 0;
    for (int i = 0; i < max_wal_senders; i++) {
        WalSnd *w = &WalSndCtl->walsnds[i];
        SpinLockAcquire(&w->mutex);
        bool counts = w->pid != 0 && w->state == WALSNDSTATE_STREAMING && w->sync_standby_priority > 0 &&
                      w->flush != InvalidXLogRecPtr &&
                      now - w->replyTime <= static_cast<TimestampTz>(heartbeat_timeout_ms) * 1000;
        SpinLockRelease(&w->mutex);
        if (counts)
            live++;
    }
    return live;
}

void admit() {
    int needed = quorum_of_transaction - 1;
    if (!quorum_admission || needed <= 0 || synchronous_commit <= SYNCHRONOUS_COMMIT_LOCAL_FLUSH)
        return;
    if (SyncRepConfig == nullptr || SyncRepConfig->num_sync < needed)
        ereport(ERROR, (errcode(errcode_quorum_unavailable),
                        errmsg("write quorum of %d regions is not in effect", quorum_of_transaction),
                        errdetail("synchronous_standby_names is \"%s\"; meridian-replicator sets it to ANY %d (<peer "
                                  "regions>) while it runs.",
                                  SyncRepStandbyNames ? SyncRepStandbyNames : "", needed),
                        errhint("Start meridian-replicator in this region, or SET synchronous_commit = local for a "
                                "local commit that replicates eventually.")));
    int live = live_quorum_peers(GetCurrentTimestamp());
    if (live < needed)
        ereport(ERROR, (errcode(errcode_quorum_unavailable),
                        errmsg("write quorum not available: %d of the %d peer regions it needs are live", live, needed),
                        errdetail("A write quorum of %d regions needs %d peer acknowledgements; a peer is live when its "
                                  "stream from this region acknowledged within meridian.heartbeat_timeout (%d ms). "
                                  "Nothing was committed.",
                                  quorum_of_transaction, needed, heartbeat_timeout_ms),
                        errhint("Retry when the peers are back (meridian.region_status), or SET synchronous_commit = "
                                "local for a local commit that replicates eventually.")));
}

void on_transaction(XactEvent event, void *) {
    switch (event) {
    case XACT_EVENT_PRE_COMMIT:
        if (wrote_replicated) {
            admit();
        } else if (synchronous_commit > SYNCHRONOUS_COMMIT_LOCAL_FLUSH && SyncRepConfig != nullptr &&
                   GetTopTransactionIdIfAny() != InvalidTransactionId && !in_apply_session() &&
                   standbys_are_peer_regions()) {
            // Only writes of replicated tables need other regions; SET LOCAL semantics: the
            // session's setting is back after this commit.
            (void)set_config_option("synchronous_commit", "local", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true,
                                    0, false);
        }
        break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PREPARE:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_PARALLEL_ABORT:
        wrote_replicated = false;
        break;
    default:
        break;
    }
}

}  // namespace

void install_quorum_hooks() { RegisterXactCallback(on_transaction, nullptr); }

}  // namespace meridian::consistency

using namespace meridian::consistency;

// meridian.note_replicated_write(): AFTER ... FOR EACH STATEMENT trigger on replicated tables.
Datum meridian_note_replicated_write(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("meridian.note_replicated_write() must be called as a trigger")));
    if (!wrote_replicated && !in_apply_session()) {
        quorum_of_transaction = current_catalog().write_quorum;
        wrote_replicated = true;
    }
    return PointerGetDatum(nullptr);
}
