// Index options (m, ef_construction) and the hnsw.* GUCs.
#include "hnsw/hnsw.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/reloptions.h"
#include "utils/guc.h"
}

#include <thread>

namespace meridian::hnsw {

int ef_search = default_ef_search;
int iterative_scan = static_cast<int>(iterative_mode::strict_order);
int max_scan_tuples = 20000;
int build_threads = 0;

namespace {

relopt_kind option_kind;

const struct config_enum_entry iterative_scan_options[] = {
    {"off", static_cast<int>(iterative_mode::off), false},
    {"relaxed_order", static_cast<int>(iterative_mode::relaxed_order), false},
    {"strict_order", static_cast<int>(iterative_mode::strict_order), false},
    {nullptr, 0, false},
};

}  // namespace

void register_gucs() {
    option_kind = add_reloption_kind();
    add_int_reloption(option_kind, "m", "Maximum number of neighbors per element and level (2m at level 0)",
                      default_m, min_m, max_m, AccessExclusiveLock);
    add_int_reloption(option_kind, "ef_construction", "Size of the candidate list while building the graph",
                      default_ef_construction, min_ef_construction, max_ef_construction, AccessExclusiveLock);

    DefineCustomIntVariable("hnsw.ef_search", "Size of the candidate list of an hnsw index search.",
                            "Larger is slower and finds more of the true nearest neighbors.", &ef_search,
                            default_ef_search, min_ef_search, max_ef_search, PGC_USERSET, 0, nullptr, nullptr,
                            nullptr);
    DefineCustomEnumVariable("hnsw.iterative_scan", "Whether an hnsw scan continues past ef_search results.",
                             "strict_order (the default) continues the search when a query filters rows out and "
                             "returns rows in exact distance order; relaxed_order also returns late finds slightly "
                             "out of order; off stops after ef_search results.",
                             &iterative_scan, static_cast<int>(iterative_mode::strict_order), iterative_scan_options,
                             PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("hnsw.max_scan_tuples", "Tuple budget of an iterative hnsw scan.",
                            "An iterative scan stops after visiting this many index elements.", &max_scan_tuples,
                            20000, 1, INT_MAX, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("hnsw.build_threads", "Threads used to build an hnsw graph in memory.",
                            "0 means one per CPU core.", &build_threads, 0, 0, 64, PGC_USERSET, 0, nullptr, nullptr,
                            nullptr);
    MarkGUCPrefixReserved("hnsw");
}

bytea *parse_options(Datum reloptions, bool validate) {
    static const relopt_parse_elt table[] = {
        {"m", RELOPT_TYPE_INT, offsetof(index_options, m)},
        {"ef_construction", RELOPT_TYPE_INT, offsetof(index_options, ef_construction)},
    };
    return static_cast<bytea *>(build_reloptions(reloptions, validate, option_kind, sizeof(index_options), table,
                                                 lengthof(table)));
}

}  // namespace meridian::hnsw
