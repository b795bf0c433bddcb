// Tombstones (docs/apply.md): the meridian_tombstone trigger that records a deleted key of a
// replicated table, and meridian.purge_tombstones(). C-style frames on palloc'd memory: they call
// PostgreSQL directly (docs/architecture.md, error handling).
#include "apply/apply.hpp"
#include "pg/as_owner.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/commit_ts.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"

PG_FUNCTION_INFO_V1(meridian_tombstone_trigger);
PG_FUNCTION_INFO_V1(meridian_purge_tombstones);
}

namespace {

SPIPlanPtr upsert_plan = nullptr;

// meridian.tombstones: tombstones are written as its owner, whoever deletes.
Oid tombstones_relid() {
    Oid relid = get_relname_relid("tombstones", get_namespace_oid("meridian", false));
    if (!OidIsValid(relid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation meridian.tombstones does not exist")));
    return relid;
}

Datum tombstone_trigger(FunctionCallInfo fcinfo) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("meridian.tombstone_trigger() was not called by the trigger manager")));
    TriggerData *td = reinterpret_cast<TriggerData *>(fcinfo->context);
    if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
        !TRIGGER_FIRED_BY_DELETE(td->tg_event))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("meridian.tombstone_trigger() must be fired AFTER DELETE FOR EACH ROW")));
    Relation rel = td->tg_relation;
    Bitmapset *pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
    int x = bms_next_member(pk, -1);
    AttrNumber attnum = x >= 0 && bms_next_member(pk, x) < 0
                            ? static_cast<AttrNumber>(x + FirstLowInvalidHeapAttributeNumber)
                            : InvalidAttrNumber;
    if (attnum <= 0 || TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid != UUIDOID)
        ereport(ERROR, (errcode(ERRCODE_INVALID_TABLE_DEFINITION),
                        errmsg("the primary key of table \"%s\" is not one uuid column", RelationGetRelationName(rel)),
                        errdetail("The meridian_tombstone trigger records deleted keys of replicated tables.")));
    bool isnull;
    Datum id = heap_getattr(td->tg_trigtuple, attnum, RelationGetDescr(rel), &isnull);
    if (isnull)
        return PointerGetDatum(nullptr);

    Oid tombstones = tombstones_relid();
    SPI_connect();
    if (!upsert_plan) {
        Oid types[2] = {OIDOID, UUIDOID};
        SPIPlanPtr p = SPI_prepare("INSERT INTO meridian.tombstones AS t (relid, id) VALUES ($1, $2) "
                                   "ON CONFLICT (relid, id) DO UPDATE SET relid = excluded.relid",
                                   2, types);
        if (!p)
            elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        SPI_keepplan(p);
        upsert_plan = p;
    }
    Datum args[2] = {ObjectIdGetDatum(RelationGetRelid(rel)), id};
    int rc = 0;
    meridian::pg::as_owner_of(tombstones, [&] { rc = SPI_execute_plan(upsert_plan, args, nullptr, false, 0); });
    if (rc != SPI_OK_INSERT)
        elog(ERROR, "writing a tombstone failed: %s", SPI_result_code_string(rc));
    SPI_finish();
    return PointerGetDatum(nullptr);
}

int64 purge_tombstones() {
    int retention = meridian::apply::tombstone_retention;
    if (retention > 0 && !track_commit_timestamp)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("meridian.purge_tombstones requires track_commit_timestamp = on"),
                        errdetail("Tombstones are dated by their commit timestamps.")));
    SPI_connect();
    Oid types[1] = {INT4OID};
    Datum args[1] = {Int32GetDatum(retention)};
    int rc = SPI_execute_with_args(
        "DELETE FROM meridian.tombstones t "
        "WHERE ($1 > 0 AND coalesce(pg_catalog.pg_xact_commit_timestamp(t.xmin), '-infinity') "
        "                  < pg_catalog.now() - pg_catalog.make_interval(secs => $1)) "
        "   OR NOT EXISTS (SELECT FROM meridian.replicated_tables r WHERE r.relid::pg_catalog.oid = t.relid)",
        1, types, args, nullptr, false, 0);
    if (rc != SPI_OK_DELETE)
        elog(ERROR, "purging tombstones failed: %s", SPI_result_code_string(rc));
    int64 n = static_cast<int64>(SPI_processed);
    SPI_finish();
    return n;
}

}  // namespace

extern "C" Datum meridian_tombstone_trigger(PG_FUNCTION_ARGS) {
    return meridian::pg::guarded([&] { return tombstone_trigger(fcinfo); });
}

extern "C" Datum meridian_purge_tombstones(PG_FUNCTION_ARGS) {
    return meridian::pg::guarded([&] { return Int64GetDatum(purge_tombstones()); });
}
