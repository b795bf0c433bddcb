// SQL functions that feed the output plugin (docs/protocol.md section 6):
//   meridian.emit_heartbeat() -> pg_lsn           writes the heartbeat logical message and flushes it
//   meridian.replication_catalog_changed() -> void invalidates the plugin's catalog caches
// Both are plain C-style frames (no C++ resources), so they call PostgreSQL directly.
#include "decoding/decoding.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "replication/message.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(meridian_emit_heartbeat);
PG_FUNCTION_INFO_V1(meridian_replication_catalog_changed);
}

Datum meridian_emit_heartbeat(PG_FUNCTION_ARGS) {
    if (!XLogLogicalInfoActive())
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("meridian.emit_heartbeat requires wal_level = logical")));
    // The content: this server's clock as an 8-byte little-endian TimestampTz.
    TimestampTz now = GetCurrentTimestamp();
    char content[8];
    uint64 bits = static_cast<uint64>(now);
    for (int i = 0; i < 8; i++)
        content[i] = static_cast<char>(bits >> (8 * i));
    // The end of the record: logical decoding reports it as the message's LSN, so it is the
    // heartbeat's wal_lsn (and the position the walsender sends it at).
    XLogRecPtr end = LogLogicalMessage(meridian::decoding::heartbeat_prefix, content, sizeof content, false);
    // Walsenders send only flushed WAL: flush now, so the heartbeat leaves at once.
    XLogFlush(end);
    PG_RETURN_LSN(end);
}

Datum meridian_replication_catalog_changed(PG_FUNCTION_ARGS) {
    // Rows of the user catalog tables generate no invalidation by themselves; with wal_level =
    // logical these are WAL-logged at commit, so decoding sessions see them at this transaction's
    // position in the stream and reload the catalog.
    Oid nsp = get_namespace_oid("meridian", false);
    for (const char *name : {"regions", "replicated_tables"}) {
        Oid rel = get_relname_relid(name, nsp);
        if (OidIsValid(rel))
            CacheInvalidateRelcacheByRelid(rel);
    }
    PG_RETURN_VOID();
}
