// Bounded and strong reads (docs/consistency.md): an ExecutorStart hook that, for a statement
// reading a replicated table under meridian.read_consistency = bounded or strong, waits until the
// local data is fresh enough, then gives the statement a new snapshot so it sees what it waited
// for. Every statement is covered (index scans or not, through functions too); a statement is
// checked once even when functions inside it run further queries.
//
// Plain C-style frames: they hold no C++ resources, so ereport may leave them at any point.
#include "consistency/consistency.hpp"

#include <algorithm>

extern "C" {
#include "access/xact.h"
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace meridian::consistency {

namespace {

ExecutorStart_hook_type previous_executor_start = nullptr;

// The statement already checked (top-level transaction's local id + statement start time).
LocalTransactionId checked_lxid = InvalidLocalTransactionId;
TimestampTz checked_statement = 0;

bool reads_replicated_table(const catalog_view &c, PlannedStmt *stmt) {
    ListCell *lc;
    foreach (lc, stmt->rtable) {
        RangeTblEntry *rte = static_cast<RangeTblEntry *>(lfirst(lc));
        if (rte->rtekind == RTE_RELATION && (rte->requiredPerms & ACL_SELECT) && is_replicated(c, rte->relid))
            return true;
    }
    return false;
}

long remaining_ms(TimestampTz deadline) {
    TimestampTz now = GetCurrentTimestamp();
    return now >= deadline ? 0 : static_cast<long>((deadline - now + 999) / 1000);
}

// Waits until every peer's watermark is within max_staleness of the local clock.
void wait_bounded(const catalog_view &c, TimestampTz deadline) {
    ConditionVariable *cv = progress_changed();
    ConditionVariablePrepareToSleep(cv);
    for (;;) {
        TimestampTz now = GetCurrentTimestamp();
        const char *lagging = nullptr;
        TimestampTz worst = 0;  // its staleness in microseconds, -1: no watermark yet
        for (int i = 0; i < c.npeers; i++) {
            peer_progress p = progress_of(c.peers[i].name);
            // A peer cut off from a write quorum of regions cannot acknowledge quorum writes: while
            // it is also unavailable here, bounded reads do not wait for it (docs/consistency.md).
            if (judged_cut_off(p.partitioned, p.partitioned_noted, now) && unavailable(p.heartbeat_at, now))
                continue;
            TimestampTz staleness = p.watermark ? now - p.watermark : -1;
            bool too_old = staleness < 0 || staleness > static_cast<TimestampTz>(max_staleness_ms) * 1000;
            if (too_old && (!lagging || staleness < 0 || (worst >= 0 && staleness > worst))) {
                lagging = c.peers[i].name;
                worst = staleness;
            }
        }
        if (!lagging)
            break;
        if (now >= deadline) {
            ConditionVariableCancelSleep();
            if (worst < 0)
                ereport(ERROR, (errcode(errcode_staleness_exceeded),
                                errmsg("region \"%s\" has no known staleness, so it may be more than meridian.max_staleness (%d ms) behind",
                                       lagging, max_staleness_ms),
                                errdetail("No heartbeat of region \"%s\" has been applied here since this server started; "
                                          "waited %d ms (meridian.consistency_timeout).",
                                          lagging, consistency_timeout_ms),
                                errhint("Check that meridian-replicator runs in this region and the region is reachable "
                                        "(meridian.region_status), or read with meridian.read_consistency = eventual.")));
            ereport(ERROR, (errcode(errcode_staleness_exceeded),
                            errmsg("region \"%s\" is %.0f ms behind, more than meridian.max_staleness (%d ms)", lagging,
                                   static_cast<double>(worst) / 1000.0, max_staleness_ms),
                            errdetail("Waited %d ms (meridian.consistency_timeout) for it to catch up.", consistency_timeout_ms),
                            errhint("See meridian.region_status; read with meridian.read_consistency = eventual to accept "
                                    "any staleness.")));
        }
        // Woken by every progress note; the timeout re-reads the clock, which alone ages watermarks.
        ConditionVariableTimedSleep(cv, std::min(remaining_ms(deadline), 10L), PG_WAIT_EXTENSION);
    }
    ConditionVariableCancelSleep();
}

// Asks the peers for their current positions, then waits until they are applied here.
void wait_strong(const catalog_view &c, TimestampTz deadline) {
    if (c.npeers == 0)
        return;
    // A read quorum: R-w+1 regions, this one included, meet every write quorum of w.
    int needed = c.npeers;
    if (strong_read_quorum) {
        int regions = c.npeers + 1;
        int w = std::min(std::max(c.write_quorum, 1), regions);
        needed = std::max(regions - w, 0);
    }
    XLogRecPtr *targets = static_cast<XLogRecPtr *>(palloc0(sizeof(XLogRecPtr) * c.npeers));
    RepOriginId *origins = static_cast<RepOriginId *>(palloc(sizeof(RepOriginId) * c.npeers));
    for (int i = 0; i < c.npeers; i++)
        origins[i] = peer_origin(c.peers[i].name);
    if (needed > 0)
        fetch_peer_positions(c, deadline, needed, targets);
    ConditionVariable *cv = progress_changed();
    ConditionVariablePrepareToSleep(cv);
    for (;;) {
        int behind = -1;
        XLogRecPtr applied = 0;
        for (int i = 0; i < c.npeers && behind < 0; i++) {
            if (targets[i] == 0)
                continue;
            XLogRecPtr a = applied_from(c.peers[i].name, origins[i]);
            if (a < targets[i]) {
                behind = i;
                applied = a;
            }
        }
        if (behind < 0)
            break;
        if (GetCurrentTimestamp() >= deadline) {
            ConditionVariableCancelSleep();
            ereport(ERROR, (errcode(errcode_peer_unreachable),
                            errmsg("region \"%s\" has not been applied here up to its current position in time",
                                   c.peers[behind].name),
                            errdetail("Applied up to %X/%X of its %X/%X after %d ms (meridian.consistency_timeout).",
                                      static_cast<uint32>(applied >> 32), static_cast<uint32>(applied),
                                      static_cast<uint32>(targets[behind] >> 32), static_cast<uint32>(targets[behind]),
                                      consistency_timeout_ms),
                            errhint("See meridian.region_status; a strong read needs every peer region's stream.")));
        }
        ConditionVariableTimedSleep(cv, std::min(remaining_ms(deadline), 10L), PG_WAIT_EXTENSION);
    }
    ConditionVariableCancelSleep();
    pfree(origins);
    pfree(targets);
}

void enforce(const catalog_view &c, QueryDesc *qd) {
    if (IsolationUsesXactSnapshot())
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("meridian.read_consistency = %s requires the READ COMMITTED isolation level",
                               read_consistency == read_strong ? "strong" : "bounded"),
                        errdetail("A REPEATABLE READ or SERIALIZABLE transaction reads one snapshot, taken before "
                                  "its reads could wait for the peer regions."),
                        errhint("Use READ COMMITTED, or meridian.read_consistency = eventual in this transaction.")));
    if (!shared_state_available())
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("meridian.read_consistency = %s needs meridian in shared_preload_libraries",
                               read_consistency == read_strong ? "strong" : "bounded"),
                        errhint("Add meridian to shared_preload_libraries in postgresql.conf and restart the server.")));
    TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), consistency_timeout_ms);
    if (read_consistency == read_strong)
        wait_strong(c, deadline);
    else
        wait_bounded(c, deadline);
    // The statement's snapshot was taken before the wait: take a new one (READ COMMITTED).
    // CreateQueryDesc registered the old one; FreeQueryDesc unregisters whatever is there.
    if (qd->snapshot) {
        UnregisterSnapshot(qd->snapshot);
        qd->snapshot = RegisterSnapshot(GetTransactionSnapshot());
    }
}

void executor_start(QueryDesc *qd, int eflags) {
    if (read_consistency != read_eventual && !(eflags & EXEC_FLAG_EXPLAIN_ONLY) && !in_apply_session() &&
        !(MyProc->lxid == checked_lxid && GetCurrentStatementStartTimestamp() == checked_statement)) {
        const catalog_view &c = current_catalog();
        if (c.installed && reads_replicated_table(c, qd->plannedstmt)) {
            enforce(c, qd);
            checked_lxid = MyProc->lxid;
            checked_statement = GetCurrentStatementStartTimestamp();
        }
    }
    if (previous_executor_start)
        previous_executor_start(qd, eflags);
    else
        standard_ExecutorStart(qd, eflags);
}

}  // namespace

void install_read_hooks() {
    previous_executor_start = ExecutorStart_hook;
    ExecutorStart_hook = executor_start;
}

}  // namespace meridian::consistency
