// The settings of consistency per query and per write (docs/consistency.md), and _PG_init's entry
// into this folder: GUCs, hooks and, while preloading, the shared memory request.
#include "consistency/consistency.hpp"

#include <climits>

extern "C" {
#include "replication/origin.h"
#include "commands/trigger.h"
#include "utils/guc.h"
}

namespace meridian::consistency {

int read_consistency = read_eventual;
int max_staleness_ms = 200;
int consistency_timeout_ms = 5000;
int heartbeat_timeout_ms = 1000;
bool quorum_admission = true;
bool strong_read_quorum = false;

namespace {
const struct config_enum_entry read_levels[] = {
    {"eventual", read_eventual, false}, {"bounded", read_bounded, false}, {"strong", read_strong, false}, {nullptr, 0, false}};
}

bool in_apply_session() {
    return replorigin_session_origin != InvalidRepOriginId || SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA;
}

void register_gucs() {
    DefineCustomEnumVariable("meridian.read_consistency",
                             "Consistency of queries that read replicated tables: eventual, bounded or strong.",
                             "eventual reads local data; bounded waits until every peer region is at most "
                             "meridian.max_staleness behind; strong waits until every write acknowledged in any region "
                             "before the query started is applied here.",
                             &read_consistency, read_eventual, read_levels, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("meridian.max_staleness", "How far behind a peer region a bounded read may be.", nullptr,
                            &max_staleness_ms, 200, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("meridian.consistency_timeout",
                            "How long a bounded or strong read waits for the peer regions before it fails.", nullptr,
                            &consistency_timeout_ms, 5000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("meridian.heartbeat_timeout",
                            "A peer region is unavailable after this long without a heartbeat, and does not count "
                            "towards a write quorum after this long without an acknowledgement.",
                            nullptr, &heartbeat_timeout_ms, 1000, 1, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr,
                            nullptr);
    DefineCustomBoolVariable("meridian.quorum_admission",
                             "Refuse, before commit, a quorum write that too few live peer regions could acknowledge.",
                             "When off, such a commit waits for the acknowledgements like any synchronous commit.",
                             &quorum_admission, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable("meridian.strong_read_quorum",
                             "Strong reads ask only a read quorum of regions (the fastest to answer).",
                             "With a write quorum w of R regions, R-w peers answering suffice to see every quorum "
                             "write acknowledged before the read; local commits (synchronous_commit = local) of "
                             "regions that were not heard from may be missed. Off: every peer must answer.",
                             &strong_read_quorum, false, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    install_read_hooks();
    install_quorum_hooks();
    if (process_shared_preload_libraries_in_progress)
        request_shared_state();
}

}  // namespace meridian::consistency
