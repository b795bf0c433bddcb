// The region catalog as a backend needs it for consistency decisions: the write quorum, the peer
// regions with their conninfo, and the set of replicated tables. Loaded with SPI on first use and
// after a relcache invalidation of meridian.regions or meridian.replicated_tables (every catalog
// function, meridian.set_write_quorum included, issues one through
// meridian.replication_catalog_changed()). It is read as the owner of meridian.regions, whoever
// the session's user is: an application role writes replicated tables and reads at any level
// without any privilege on the catalog (which holds the peers' conninfo). Plain C-style frames
// over TopMemoryContext memory.
#include "consistency/consistency.hpp"
#include "pg/as_owner.hpp"

#include <algorithm>
#include <cstring>

extern "C" {
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

namespace meridian::consistency {

namespace {

catalog_view cached;
bool stale = true;
bool callback_registered = false;
Oid regions_relid = InvalidOid;
Oid replicated_relid = InvalidOid;

void on_relcache_invalidation(Datum, Oid relid) {
    if (relid == InvalidOid || relid == regions_relid || relid == replicated_relid)
        stale = true;
}

void release(catalog_view &c) {
    for (int i = 0; i < c.npeers; i++)
        pfree(c.peers[i].conninfo);
    if (c.peers)
        pfree(c.peers);
    if (c.replicated)
        pfree(c.replicated);
    c = catalog_view{};
}

// Runs the queries; the caller has made the catalog's owner the current user.
void load_as_owner(catalog_view &c) {
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    if (SPI_execute("SELECT meridian.write_quorum()", true, 0) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not read the write quorum");
    bool isnull = false;
    c.write_quorum = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

    if (SPI_execute("SELECT name, conninfo FROM meridian.regions WHERE NOT is_local ORDER BY name", true, 0) !=
        SPI_OK_SELECT)
        elog(ERROR, "could not read meridian.regions");
    c.npeers = static_cast<int>(SPI_processed);
    c.peers = static_cast<peer_entry *>(MemoryContextAllocZero(TopMemoryContext, sizeof(peer_entry) * (c.npeers + 1)));
    for (int i = 0; i < c.npeers; i++) {
        char *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
        char *conninfo = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
        strlcpy(c.peers[i].name, name, NAMEDATALEN);
        c.peers[i].conninfo = MemoryContextStrdup(TopMemoryContext, conninfo ? conninfo : "");
    }

    if (SPI_execute("SELECT relid::oid FROM meridian.replicated_tables ORDER BY 1", true, 0) != SPI_OK_SELECT)
        elog(ERROR, "could not read meridian.replicated_tables");
    c.nreplicated = static_cast<int>(SPI_processed);
    c.replicated = static_cast<Oid *>(MemoryContextAllocZero(TopMemoryContext, sizeof(Oid) * (c.nreplicated + 1)));
    for (int i = 0; i < c.nreplicated; i++)
        c.replicated[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
    SPI_finish();
}

void load(catalog_view &c) {
    Oid nsp = get_namespace_oid("meridian", true);
    regions_relid = OidIsValid(nsp) ? get_relname_relid("regions", nsp) : InvalidOid;
    replicated_relid = OidIsValid(nsp) ? get_relname_relid("replicated_tables", nsp) : InvalidOid;
    if (!OidIsValid(regions_relid) || !OidIsValid(replicated_relid))
        return;  // the extension is not installed in this database (the library may be preloaded)
    c.installed = true;

    meridian::pg::as_owner_of(regions_relid, [&] { load_as_owner(c); });
}

}  // namespace

const catalog_view &current_catalog() {
    if (!callback_registered) {
        CacheRegisterRelcacheCallback(on_relcache_invalidation, static_cast<Datum>(0));
        callback_registered = true;
    }
    AcceptInvalidationMessages();
    if (stale) {
        release(cached);
        // Cleared first: an invalidation that arrives while loading (SPI takes locks) marks it
        // stale again. On an error the half-loaded pieces leak (rare) and the next use reloads.
        stale = false;
        // The queries need a snapshot; at commit (quorum.cpp asks then) none is active any more.
        bool pushed = !ActiveSnapshotSet();
        if (pushed)
            PushActiveSnapshot(GetTransactionSnapshot());
        PG_TRY();
        {
            load(cached);
            if (pushed)
                PopActiveSnapshot();
        }
        PG_CATCH();
        {
            cached = catalog_view{};
            stale = true;
            PG_RE_THROW();
        }
        PG_END_TRY();
    }
    return cached;
}

bool is_replicated(const catalog_view &c, Oid relid) {
    return std::binary_search(c.replicated, c.replicated + c.nreplicated, relid);
}

}  // namespace meridian::consistency
