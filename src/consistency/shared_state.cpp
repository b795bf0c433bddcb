// Per-peer progress in shared memory, written by meridian-replicator through
// meridian.note_peer_progress() and read by every backend that serves a bounded or strong read
// (reads.cpp) and by meridian.region_status (meridian.peer_freshness()). A condition variable is
// broadcast on every change, so waiting reads wake as soon as the data they wait for is applied.
// Shared memory exists only with shared_preload_libraries = 'meridian'; without it the functions
// say so and bounded/strong reads fail with a hint.
#include "consistency/consistency.hpp"

#include <cstring>

extern "C" {
#include "funcapi.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(meridian_note_peer_progress);
PG_FUNCTION_INFO_V1(meridian_peer_freshness);
PG_FUNCTION_INFO_V1(meridian_forget_peer_progress);
PG_FUNCTION_INFO_V1(meridian_note_peer_partitioned);
}

namespace meridian::consistency {

namespace {

constexpr int max_peers = 64;  // distinct peer names noted (and not forgotten) since the server started;
                                // meridian.create_region keeps a group within it

struct peer_slot {
    char name[NAMEDATALEN];
    XLogRecPtr applied_through;
    TimestampTz watermark;
    TimestampTz heartbeat_at;
    bool partitioned;               // cut off from a write quorum of regions (meridian-replicator's judgement)
    TimestampTz partitioned_noted;  // when that was last said
};

struct shared_state {
    slock_t mutex;  // guards used and peers (short, non-blocking sections only)
    ConditionVariable changed;
    int used;
    peer_slot peers[max_peers];
};

shared_state *state = nullptr;
shmem_request_hook_type previous_request = nullptr;
shmem_startup_hook_type previous_startup = nullptr;

void on_shmem_request() {
    if (previous_request)
        previous_request();
    RequestAddinShmemSpace(MAXALIGN(sizeof(shared_state)));
}

void on_shmem_startup() {
    if (previous_startup)
        previous_startup();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found = false;
    state = static_cast<shared_state *>(ShmemInitStruct("meridian peer progress", sizeof(shared_state), &found));
    if (!found) {
        std::memset(state, 0, sizeof(shared_state));
        SpinLockInit(&state->mutex);
        ConditionVariableInit(&state->changed);
    }
    LWLockRelease(AddinShmemInitLock);
}

// The slot of a peer, or null. The caller holds state->mutex.
peer_slot *find_slot(const char *region) {
    for (int i = 0; i < state->used; i++)
        if (std::strcmp(state->peers[i].name, region) == 0)
            return &state->peers[i];
    return nullptr;
}

// Changes the slot of a peer under the lock (`change` must be short and cannot fail), then wakes
// every waiting read; false when the peer has no slot.
template <typename Change> bool change_slot(const char *region, Change change) {
    SpinLockAcquire(&state->mutex);
    peer_slot *slot = find_slot(region);
    if (slot)
        change(slot);
    SpinLockRelease(&state->mutex);
    if (slot)
        ConditionVariableBroadcast(&state->changed);
    return slot != nullptr;
}

}  // namespace

void request_shared_state() {
    previous_request = shmem_request_hook;
    shmem_request_hook = on_shmem_request;
    previous_startup = shmem_startup_hook;
    shmem_startup_hook = on_shmem_startup;
}

bool shared_state_available() { return state != nullptr; }

peer_progress progress_of(const char *region) {
    peer_progress p;
    if (!state)
        return p;
    SpinLockAcquire(&state->mutex);
    if (const peer_slot *s = find_slot(region)) {
        p.applied_through = s->applied_through;
        p.watermark = s->watermark;
        p.heartbeat_at = s->heartbeat_at;
        p.partitioned = s->partitioned;
        p.partitioned_noted = s->partitioned_noted;
    }
    SpinLockRelease(&state->mutex);
    return p;
}

RepOriginId peer_origin(const char *region) {
    char name[NAMEDATALEN + 16];
    snprintf(name, sizeof name, "meridian_%s", region);  // the replicator's origin for that peer
    return replorigin_by_name(name, true);
}

XLogRecPtr applied_from(const char *region, RepOriginId origin) {
    XLogRecPtr through = progress_of(region).applied_through;
    if (origin != InvalidRepOriginId) {
        XLogRecPtr last = replorigin_get_progress(origin, false);
        if (last > through)
            through = last;
    }
    return through;
}

ConditionVariable *progress_changed() {
    Assert(state != nullptr);  // callers check shared_state_available() first
    return &state->changed;
}

}  // namespace meridian::consistency

using namespace meridian::consistency;

// meridian.note_peer_progress(region text, applied_through pg_lsn, watermark timestamptz) -> boolean
// Called by meridian-replicator's apply session after it applied a peer's heartbeat: every change
// of the peer before applied_through is applied and visible here, and every commit of the peer
// before watermark (local clock, NULL when not known) too. Positions never move backwards.
// Returns false when shared memory is not available (not preloaded): nothing is recorded.
Datum meridian_note_peer_progress(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("region and applied_through must not be null")));
    if (!state)
        PG_RETURN_BOOL(false);
    char *region = text_to_cstring(PG_GETARG_TEXT_PP(0));
    if (std::strlen(region) >= NAMEDATALEN)
        ereport(ERROR, (errcode(ERRCODE_NAME_TOO_LONG), errmsg("region name \"%s\" is too long", region)));
    XLogRecPtr through = PG_GETARG_LSN(1);
    TimestampTz watermark = PG_ARGISNULL(2) ? 0 : PG_GETARG_TIMESTAMPTZ(2);
    TimestampTz now = GetCurrentTimestamp();

    bool full = false;
    SpinLockAcquire(&state->mutex);
    peer_slot *slot = find_slot(region);
    if (!slot && state->used < max_peers) {
        slot = &state->peers[state->used++];
        std::memset(slot, 0, sizeof *slot);
        std::strcpy(slot->name, region);
    }
    if (slot) {
        if (through > slot->applied_through)
            slot->applied_through = through;
        if (watermark > slot->watermark)
            slot->watermark = watermark;
        slot->heartbeat_at = now;
    } else {
        full = true;
    }
    SpinLockRelease(&state->mutex);
    if (full)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("too many peer regions noted in shared memory (at most %d)", max_peers),
                        errdetail("Peers are counted over every database of the server; meridian.drop_region forgets one."),
                        errhint("Drop regions no longer in use, or restart the server.")));
    ConditionVariableBroadcast(&state->changed);
    PG_RETURN_BOOL(true);
}

// meridian.peer_freshness() -> setof (region, applied_through, watermark, heartbeat_at,
// staleness_ms, unavailable, partitioned), one row per noted peer, for meridian.region_status. Empty without
// shared memory.
Datum meridian_peer_freshness(PG_FUNCTION_ARGS) {
    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);
    if (!state)
        return static_cast<Datum>(0);
    peer_slot copy[max_peers];
    SpinLockAcquire(&state->mutex);
    int n = state->used;
    std::memcpy(copy, state->peers, sizeof(peer_slot) * n);
    SpinLockRelease(&state->mutex);
    TimestampTz now = GetCurrentTimestamp();
    for (int i = 0; i < n; i++) {
        Datum values[7];
        bool nulls[7] = {false, false, false, false, false, false, false};
        values[0] = CStringGetTextDatum(copy[i].name);
        values[1] = LSNGetDatum(copy[i].applied_through);
        if (copy[i].watermark) {
            values[2] = TimestampTzGetDatum(copy[i].watermark);
            values[4] = Float8GetDatum(static_cast<double>(now - copy[i].watermark) / 1000.0);
        } else {
            nulls[2] = nulls[4] = true;
        }
        values[3] = TimestampTzGetDatum(copy[i].heartbeat_at);
        values[5] = BoolGetDatum(unavailable(copy[i].heartbeat_at, now));
        values[6] = BoolGetDatum(judged_cut_off(copy[i].partitioned, copy[i].partitioned_noted, now));
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return static_cast<Datum>(0);
}

// meridian.forget_peer_progress(region text) -> boolean: drops what was noted about a peer
// (meridian.drop_region calls it); true when there was something to drop.
Datum meridian_forget_peer_progress(PG_FUNCTION_ARGS) {
    if (!state)
        PG_RETURN_BOOL(false);
    char *region = text_to_cstring(PG_GETARG_TEXT_PP(0));
    // The last slot takes its place.
    PG_RETURN_BOOL(change_slot(region, [](peer_slot *slot) { *slot = state->peers[--state->used]; }));
}

// meridian.note_peer_partitioned(region text, partitioned boolean) -> boolean
// meridian-replicator's judgement, repeated every 100 ms: the peer is cut off from a write
// quorum of regions (neither this region nor enough others hear it), so it cannot acknowledge
// quorum writes; bounded reads stop waiting for it while it is also unavailable here (reads.cpp).
Datum meridian_note_peer_partitioned(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("region and partitioned must not be null")));
    if (!state)
        PG_RETURN_BOOL(false);
    char *region = text_to_cstring(PG_GETARG_TEXT_PP(0));
    bool partitioned = PG_GETARG_BOOL(1);
    TimestampTz now = GetCurrentTimestamp();
    PG_RETURN_BOOL(change_slot(region, [&](peer_slot *slot) {
        slot->partitioned = partitioned;
        slot->partitioned_noted = now;
    }));
}
