// The apply side of replication (docs/apply.md): meridian.apply_transaction(message bytea) applies
// one transaction message of a peer region under the session's replication origin, row by row
// through the executor's replication helpers (execReplication.c: normal index inserts, constraint
// checks, ALWAYS triggers), resolving conflicts last-writer-wins (src/core/lww). Also the GUC
// meridian.tombstone_retention (used by tombstones.cpp).
//
// Error handling: the message is decoded by C++ (protocol::decode) in the shim's frame; everything
// after that is C-style code on palloc'd memory run inside one meridian::pg::call, reading the
// decoded message through references and owning no C++ resources, so PostgreSQL errors may
// longjmp through it.
#include "apply/apply.hpp"
#include "core/lww.hpp"
#include "core/protocol.hpp"
#include "pg/guard.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <string_view>
#include <variant>

extern "C" {
#include "access/commit_ts.h"
#include "access/genam.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "replication/origin.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/wait_event.h"
#include "utils/snapmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/pg_lsn.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(meridian_apply_transaction);
Datum vector_recv(PG_FUNCTION_ARGS);  // src/vector: identifies Meridian's vector type
}

namespace proto = meridian::protocol;
namespace lww = meridian::lww;

namespace meridian::apply {

int tombstone_retention = 7 * 24 * 3600;

void register_gucs() {
    DefineCustomIntVariable("meridian.tombstone_retention",
                            "How long tombstones of deleted rows are kept (0 = forever).",
                            "meridian.purge_tombstones() deletes tombstones whose commit timestamp is older. "
                            "A change older than a purged tombstone can resurrect its row.",
                            &tombstone_retention, 7 * 24 * 3600, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
                            nullptr);
}

}  // namespace meridian::apply

namespace {

// SQLSTATE of a column set that differs between regions (DDL is not replicated): 42804.
constexpr int errcode_column_mismatch = ERRCODE_DATATYPE_MISMATCH;

// ---------------------------------------------------------------------------------------------
// Per-relation cache: the columns a message must carry, their receive functions, the primary key.
// Rebuilt after any relcache invalidation of the relation.

struct column_info {
    AttrNumber attnum;
    const char *name;
    std::uint8_t tag;          // protocol type tag the column's type travels as
    const char *qualname;      // "nsp.typname" for tag 0
    Oid typid;
    int32 typmod;
    Oid ioparam;
    FmgrInfo recv;
};

struct rel_entry {
    Oid relid;  // hash key
    bool valid;
    MemoryContext cxt;
    int ncols;  // non-dropped, non-generated columns
    column_info *cols;
    int natts;
    AttrNumber pk_attnum;
    Oid pk_index;
    int pk_col;  // index in cols, -1 when the key column is generated
    bool has_trigger;
};

HTAB *rel_cache = nullptr;

void invalidate_rel(Datum, Oid relid) {
    if (!rel_cache)
        return;
    if (relid == InvalidOid) {
        HASH_SEQ_STATUS st;
        hash_seq_init(&st, rel_cache);
        while (auto *e = static_cast<rel_entry *>(hash_seq_search(&st)))
            e->valid = false;
        return;
    }
    if (auto *e = static_cast<rel_entry *>(hash_search(rel_cache, &relid, HASH_FIND, nullptr)))
        e->valid = false;
}

const char *const tag_names[] = {"",      "boolean", "int2",        "int4",      "int8",  "float4",
                                 "float8", "numeric", "text",        "varchar",   "bytea", "uuid",
                                 "timestamptz", "timestamp", "date", "jsonb", "json",  "vector"};

std::uint8_t tag_of(Oid typid, const FmgrInfo &recv) {
    using t = proto::type_tag;
    switch (typid) {
    case BOOLOID: return std::uint8_t(t::boolean);
    case INT2OID: return std::uint8_t(t::int2);
    case INT4OID: return std::uint8_t(t::int4);
    case INT8OID: return std::uint8_t(t::int8);
    case FLOAT4OID: return std::uint8_t(t::float4);
    case FLOAT8OID: return std::uint8_t(t::float8);
    case NUMERICOID: return std::uint8_t(t::numeric);
    case TEXTOID: return std::uint8_t(t::text);
    case VARCHAROID: return std::uint8_t(t::varchar);
    case BYTEAOID: return std::uint8_t(t::bytea);
    case UUIDOID: return std::uint8_t(t::uuid);
    case TIMESTAMPTZOID: return std::uint8_t(t::timestamptz);
    case TIMESTAMPOID: return std::uint8_t(t::timestamp);
    case DATEOID: return std::uint8_t(t::date);
    case JSONBOID: return std::uint8_t(t::jsonb);
    case JSONOID: return std::uint8_t(t::json);
    default: break;
    }
    // Meridian's vector type: the type whose receive function is this library's vector_recv
    // (not a domain over it: a domain travels by its own name).
    if (recv.fn_addr == vector_recv && get_typtype(typid) == TYPTYPE_BASE)
        return std::uint8_t(t::vector);
    return std::uint8_t(t::named);
}

rel_entry *rel_info(Relation rel) {
    if (!rel_cache) {
        HASHCTL ctl;
        std::memset(&ctl, 0, sizeof ctl);
        ctl.keysize = sizeof(Oid);
        ctl.entrysize = sizeof(rel_entry);
        ctl.hcxt = CacheMemoryContext;
        rel_cache = hash_create("meridian apply relations", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
        CacheRegisterRelcacheCallback(invalidate_rel, (Datum)0);
    }
    Oid relid = RelationGetRelid(rel);
    bool found;
    auto *e = static_cast<rel_entry *>(hash_search(rel_cache, &relid, HASH_ENTER, &found));
    if (found && e->valid)
        return e;
    if (!found)
        e->cxt = nullptr;
    if (e->cxt)
        MemoryContextDelete(e->cxt);
    e->cxt = nullptr;
    e->valid = false;

    MemoryContext cxt = AllocSetContextCreate(CacheMemoryContext, "meridian apply relation", ALLOCSET_SMALL_SIZES);
    e->cxt = cxt;
    MemoryContext old = MemoryContextSwitchTo(cxt);
    TupleDesc desc = RelationGetDescr(rel);
    e->natts = desc->natts;
    e->cols = static_cast<column_info *>(palloc0(sizeof(column_info) * (desc->natts + 1)));
    e->ncols = 0;
    e->pk_index = RelationGetPrimaryKeyIndex(rel);
    e->pk_attnum = InvalidAttrNumber;
    e->pk_col = -1;
    if (OidIsValid(e->pk_index)) {
        Bitmapset *pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
        int x = bms_next_member(pk, -1);
        if (x >= 0 && bms_next_member(pk, x) < 0)
            e->pk_attnum = static_cast<AttrNumber>(x + FirstLowInvalidHeapAttributeNumber);
    }
    if (e->pk_attnum <= 0 || TupleDescAttr(desc, e->pk_attnum - 1)->atttypid != UUIDOID)
        ereport(ERROR, (errcode(ERRCODE_INVALID_TABLE_DEFINITION),
                        errmsg("the primary key of table \"%s.%s\" is not one uuid column",
                               get_namespace_name(RelationGetNamespace(rel)), RelationGetRelationName(rel)),
                        errhint("Replication identifies rows by a uuid primary key of exactly one column.")));
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (att->attisdropped || att->attgenerated)
            continue;
        column_info &c = e->cols[e->ncols];
        c.attnum = att->attnum;
        c.name = pstrdup(NameStr(att->attname));
        c.typid = att->atttypid;
        c.typmod = att->atttypmod;
        Oid recv;
        getTypeBinaryInputInfo(att->atttypid, &recv, &c.ioparam);
        fmgr_info_cxt(recv, &c.recv, cxt);
        c.tag = tag_of(att->atttypid, c.recv);
        c.qualname = nullptr;
        if (c.tag == 0) {
            HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(att->atttypid));
            if (!HeapTupleIsValid(tup))
                elog(ERROR, "cache lookup failed for type %u", att->atttypid);
            auto *typ = reinterpret_cast<Form_pg_type>(GETSTRUCT(tup));
            c.qualname = psprintf("%s.%s", get_namespace_name(typ->typnamespace), NameStr(typ->typname));
            ReleaseSysCache(tup);
        }
        if (c.attnum == e->pk_attnum)
            e->pk_col = e->ncols;
        e->ncols++;
    }
    e->has_trigger = false;
    if (rel->trigdesc) {
        for (int i = 0; i < rel->trigdesc->numtriggers; i++) {
            const Trigger &tg = rel->trigdesc->triggers[i];
            if (std::strcmp(tg.tgname, "meridian_tombstone") == 0 && tg.tgenabled == TRIGGER_FIRES_ALWAYS &&
                TRIGGER_FOR_ROW(tg.tgtype) && TRIGGER_FOR_AFTER(tg.tgtype) && TRIGGER_FOR_DELETE(tg.tgtype))
                e->has_trigger = true;
        }
    }
    MemoryContextSwitchTo(old);
    e->valid = true;
    return e;
}

// ---------------------------------------------------------------------------------------------
// The session's apply state: the origin fields apply_transaction set are cleared when the
// transaction ends, so later transactions of the session do not carry the peer's LSN and time.

bool origin_fields_set = false;
bool xact_callback_registered = false;
LocalTransactionId applied_lxid = InvalidLocalTransactionId;

void xact_callback(XactEvent event, void *) {
    switch (event) {
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
        if (origin_fields_set) {
            replorigin_session_origin_lsn = InvalidXLogRecPtr;
            replorigin_session_origin_timestamp = 0;
            origin_fields_set = false;
        }
        break;
    default:
        break;
    }
}

// ---------------------------------------------------------------------------------------------
// One call.

// A lookup by primary key, reused for every change of a call: the index scan is begun once and
// each lookup is a rescan with the key's values (PostgreSQL's RelationFindReplTupleByIndex begins
// and ends a scan, and looks up the key's operators, every time). Its protocol is the same: a
// dirty snapshot sees rows of transactions in progress, whose end it waits for before looking
// again; a row found is locked, and the lookup starts over when a concurrent update or delete
// got there first.
struct key_probe {
    MemoryContext cxt;  // the scan's: the index AM allocates scan state lazily (e.g. btree's
                        // killed items), which must outlive the per-change context
    Relation index;
    IndexScanDesc scan;
    SnapshotData dirty;
    int nkeys;
    ScanKeyData keys[INDEX_MAX_KEYS];
};

void probe_begin(key_probe &p, Relation heap, Oid index_oid, int nkeys) {
    p.index = index_open(index_oid, RowExclusiveLock);
    if (IndexRelationGetNumberOfKeyAttributes(p.index) != nkeys || p.index->rd_rel->relam != BTREE_AM_OID)
        elog(ERROR, "index %u is not a btree on %d columns", index_oid, nkeys);
    p.nkeys = nkeys;
    for (int i = 0; i < nkeys; i++) {
        Oid type = p.index->rd_opcintype[i];
        Oid op = get_opfamily_member(p.index->rd_opfamily[i], type, type, BTEqualStrategyNumber);
        if (!OidIsValid(op))
            elog(ERROR, "missing equality operator for type %u in opfamily %u", type, p.index->rd_opfamily[i]);
        ScanKeyInit(&p.keys[i], AttrNumber(i + 1), BTEqualStrategyNumber, get_opcode(op), (Datum)0);
    }
    InitDirtySnapshot(p.dirty);
    p.cxt = CurrentMemoryContext;
    p.scan = index_beginscan(heap, p.index, &p.dirty, nkeys, 0);
}

void probe_end(key_probe &p) {
    if (p.scan)
        index_endscan(p.scan);
    if (p.index)
        index_close(p.index, NoLock);
    p.scan = nullptr;
    p.index = nullptr;
}

// Finds the row whose key columns equal `values` and locks it (LockTupleExclusive) into `out`.
// With `committed_writer`: when the row's latest version was written by a transaction that has
// committed but not yet ended (it waits for a write quorum), returns with that transaction in
// *committed_writer and the row unlocked in `out`, instead of waiting for it to end. A writer
// still in progress is waited for only until it ends or commits (an open transaction that then
// commits with a quorum wait would otherwise hold this wait through its own).
bool probe_find(key_probe &p, const Datum *values, TupleTableSlot *out, TransactionId *committed_writer = nullptr) {
    for (;;) {
        for (int i = 0; i < p.nkeys; i++)
            p.keys[i].sk_argument = values[i];
        MemoryContext old = MemoryContextSwitchTo(p.cxt);
        index_rescan(p.scan, p.keys, p.nkeys, nullptr, 0);
        bool found = index_getnext_slot(p.scan, ForwardScanDirection, out);
        MemoryContextSwitchTo(old);
        if (!found)
            return false;  // a unique index: nothing else can match
        ExecMaterializeSlot(out);
        TransactionId xwait = TransactionIdIsValid(p.dirty.xmin) ? p.dirty.xmin : p.dirty.xmax;
        if (TransactionIdIsValid(xwait)) {
            // The dirty snapshot saw it in progress; a commit in the clog means it is past its
            // commit record (synchronous replication waits there, holding its locks).
            if (committed_writer) {
                while (!ConditionalXactLockTableWait(xwait)) {
                    if (TransactionIdDidCommit(xwait)) {
                        *committed_writer = xwait;
                        return true;
                    }
                    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1, PG_WAIT_EXTENSION);
                    ResetLatch(MyLatch);
                    CHECK_FOR_INTERRUPTS();
                }
                continue;
            }
            XactLockTableWait(xwait, nullptr, nullptr, XLTW_None);
            continue;
        }
        TM_FailureData tmfd;
        PushActiveSnapshot(GetLatestSnapshot());
        TM_Result res = table_tuple_lock(p.scan->heapRelation, &out->tts_tid, GetLatestSnapshot(), out,
                                         GetCurrentCommandId(false), LockTupleExclusive, LockWaitBlock, 0, &tmfd);
        PopActiveSnapshot();
        switch (res) {
        case TM_Ok:
            return true;
        case TM_Updated:
        case TM_Deleted:
            continue;  // a concurrent change came first: look again
        case TM_Invisible:
            elog(ERROR, "attempted to lock invisible tuple");
            break;
        default:
            elog(ERROR, "unexpected table_tuple_lock status: %u", res);
            break;
        }
    }
}

struct target {
    const std::string *schema;
    const std::string *table;
    Oid relid;
    Relation rel;
    rel_entry *info;
    ResultRelInfo *rri;
    TupleTableSlot *found, *fresh;
    key_probe pk;
    bool *seen;  // scratch: which table columns a change carries
    bool inserts, updates, deletes;
};

struct origin_region {
    RepOriginId id;
    const char *region;
};

struct call_state {
    const proto::transaction *msg;
    const char *local_region;
    origin_region origins[16];
    int norigins;
    EState *estate;
    EPQState epq;
    Relation tomb_rel;
    Oid tomb_index;
    ResultRelInfo *tomb_rri;
    TupleTableSlot *tomb_found, *tomb_fresh;
    key_probe tomb_pk;
};

const char *key_text(const meridian::uuid::bytes &key) {
    pg_uuid_t *u = static_cast<pg_uuid_t *>(palloc(sizeof(pg_uuid_t)));
    std::memcpy(u->data, key.data(), UUID_LEN);
    return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(u)));
}

const char *region_of(call_state &cs, RepOriginId id) {
    if (id == InvalidRepOriginId || id == DoNotReplicateId)
        return cs.local_region;
    for (int i = 0; i < cs.norigins; i++)
        if (cs.origins[i].id == id)
            return cs.origins[i].region;
    char *name = nullptr;
    const char *region = cs.local_region;  // an origin that is not a Meridian peer's
    if (replorigin_by_oid(id, true, &name)) {
        std::string_view r = lww::region_of_origin(name);
        if (!r.empty())
            region = pnstrdup(r.data(), r.size());
    } else {
        region = "";  // dropped origin: unknown region
    }
    if (cs.norigins < 16)
        cs.origins[cs.norigins++] = {id, region};
    return region;
}

// The version a transaction that committed here gives the rows it wrote.
lww::version version_of_committed(call_state &cs, TransactionId xid) {
    lww::version v;
    TimestampTz ts = 0;
    RepOriginId node = InvalidRepOriginId;
    if (TransactionIdGetCommitTsData(xid, &ts, &node)) {
        v.known = true;
        v.time = ts;
        v.region = region_of(cs, node);
    }
    return v;
}

// The version of a stored tuple: (commit timestamp, region) of its xmin.
lww::version version_of(call_state &cs, TupleTableSlot *slot) {
    bool should_free;
    HeapTuple tup = ExecFetchSlotHeapTuple(slot, false, &should_free);
    TransactionId xmin = HeapTupleHeaderGetXmin(tup->t_data);
    lww::version v;
    if (TransactionIdIsCurrentTransactionId(xmin)) {
        // Written earlier in this message: the same region, in commit order.
        v.known = true;
        v.time = cs.msg->commit_time;
        v.region = cs.msg->region;
    } else if (TransactionIdIsNormal(xmin)) {
        v = version_of_committed(cs, xmin);
    }
    if (should_free)
        heap_freetuple(tup);
    return v;
}

Datum key_datum(const meridian::uuid::bytes &key) {
    pg_uuid_t *u = static_cast<pg_uuid_t *>(palloc(sizeof(pg_uuid_t)));
    std::memcpy(u->data, key.data(), UUID_LEN);
    return UUIDPGetDatum(u);
}

const char *qualified(const target &tg) {
    return quote_qualified_identifier(tg.schema->c_str(), tg.table->c_str());
}

const char *message_type_name(const proto::column &c) {
    if (c.type == proto::type_tag::named)
        return c.type_name.c_str();
    auto t = static_cast<std::uint8_t>(c.type);
    return t < sizeof tag_names / sizeof tag_names[0] ? tag_names[t] : "?";
}

const char *local_type_name(const column_info &c) {
    return c.tag == 0 ? c.qualname : tag_names[c.tag];
}

// Maps the change's columns onto the table's (map[j] = index in info->cols), refusing a column
// set that differs (name or type) from the table's non-dropped, non-generated columns.
void map_columns(call_state &cs, target &tg, const proto::row_change &ch, int *map) {
    rel_entry *info = tg.info;
    std::memset(tg.seen, 0, sizeof(bool) * (info->ncols + 1));
    for (std::size_t j = 0; j < ch.columns.size(); j++) {
        const proto::column &mc = ch.columns[j];
        int k = -1;
        if (j < std::size_t(info->ncols) && mc.name == info->cols[j].name)
            k = int(j);
        else
            for (int i = 0; i < info->ncols; i++)
                if (mc.name == info->cols[i].name) {
                    k = i;
                    break;
                }
        if (k < 0)
            ereport(ERROR, (errcode(errcode_column_mismatch),
                            errmsg("columns of table %s differ from region \"%s\"", qualified(tg),
                                   cs.msg->region.c_str()),
                            errdetail("Column \"%s\" (%s) of region \"%s\" does not exist here.", mc.name.c_str(),
                                      message_type_name(mc), cs.msg->region.c_str()),
                            errhint("DDL is not replicated: give the table the same columns in every region.")));
        const column_info &lc = info->cols[k];
        if (std::uint8_t(mc.type) != lc.tag || (lc.tag == 0 && mc.type_name != lc.qualname))
            ereport(ERROR, (errcode(errcode_column_mismatch),
                            errmsg("columns of table %s differ from region \"%s\"", qualified(tg),
                                   cs.msg->region.c_str()),
                            errdetail("Column \"%s\" is %s here and %s in region \"%s\".", lc.name,
                                      local_type_name(lc), message_type_name(mc), cs.msg->region.c_str()),
                            errhint("DDL is not replicated: give the table the same columns in every region.")));
        tg.seen[k] = true;
        map[j] = k;
    }
    if (ch.columns.size() != std::size_t(info->ncols))
        for (int i = 0; i < info->ncols; i++)
            if (!tg.seen[i])
                ereport(ERROR, (errcode(errcode_column_mismatch),
                                errmsg("columns of table %s differ from region \"%s\"", qualified(tg),
                                       cs.msg->region.c_str()),
                                errdetail("Column \"%s\" (%s) exists here but not in region \"%s\".",
                                          info->cols[i].name, local_type_name(info->cols[i]),
                                          cs.msg->region.c_str()),
                                errhint("DDL is not replicated: give the table the same columns in every region.")));
}

// Fills tg.fresh from the change's values (each through the column's typreceive with its typmod);
// unchanged columns keep tg.found's values.
void build_row(call_state &cs, target &tg, const proto::row_change &ch, const int *map, bool from_found) {
    rel_entry *info = tg.info;
    TupleTableSlot *s = tg.fresh;
    ExecClearTuple(s);
    if (from_found) {
        slot_getallattrs(tg.found);
        std::memcpy(s->tts_values, tg.found->tts_values, sizeof(Datum) * info->natts);
        std::memcpy(s->tts_isnull, tg.found->tts_isnull, sizeof(bool) * info->natts);
    } else {
        std::memset(s->tts_isnull, true, sizeof(bool) * info->natts);
    }
    for (std::size_t j = 0; j < ch.columns.size(); j++) {
        const proto::column &mc = ch.columns[j];
        column_info &lc = info->cols[map[j]];
        int a = lc.attnum - 1;
        switch (mc.state) {
        case proto::value_state::present: {
            StringInfoData buf;
            int len = static_cast<int>(mc.value.size());
            buf.data = static_cast<char *>(palloc(len + 1));
            if (len > 0)
                std::memcpy(buf.data, mc.value.data(), len);
            buf.data[len] = '\0';
            buf.len = len;
            buf.maxlen = len + 1;
            buf.cursor = 0;
            s->tts_values[a] = ReceiveFunctionCall(&lc.recv, &buf, lc.ioparam, lc.typmod);
            s->tts_isnull[a] = false;
            if (buf.cursor != buf.len)
                ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
                                errmsg("incorrect binary data format in column \"%s\" of table %s from region \"%s\"",
                                       lc.name, qualified(tg), cs.msg->region.c_str())));
            break;
        }
        case proto::value_state::null:
            s->tts_values[a] = ReceiveFunctionCall(&lc.recv, nullptr, lc.ioparam, lc.typmod);
            s->tts_isnull[a] = true;
            break;
        case proto::value_state::unchanged:
            break;  // keeps the stored value (from_found)
        }
    }
    if (info->pk_col >= 0) {
        int a = info->pk_attnum - 1;
        if (s->tts_isnull[a] || std::memcmp(DatumGetUUIDP(s->tts_values[a])->data, ch.key.data(), UUID_LEN) != 0)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("row change of table %s from region \"%s\" carries key %s but another primary key value",
                                   qualified(tg), cs.msg->region.c_str(), key_text(ch.key))));
    }
    ExecStoreVirtualTuple(s);
}

// Quorum writes and conflicts: a local transaction that committed but waits for a write quorum
// keeps its rows locked until peers have applied it. If this change waited for it while that
// peer's apply waits, the same way, for a local transaction of the peer's that waits for us, no
// region would ever confirm: a deadlock across regions. When the waiting transaction's write is
// the newer one, the incoming change loses last-writer-wins anyway: it is dropped without waiting
// (`skip` true), and the peer, whose own apply drops the older change the same way, confirms.
// Otherwise the change waits for it as for any other writer: the newer write never waits on an
// older one, so there is no cycle.
bool probe_newer_first(call_state &cs, key_probe &p, const Datum *values, TupleTableSlot *out,
                       const lww::version &incoming, bool &skip) {
    TransactionId writer = InvalidTransactionId;
    bool found = probe_find(p, values, out, &writer);
    skip = false;
    if (!TransactionIdIsValid(writer))
        return found;
    if (!lww::incoming_wins(version_of_committed(cs, writer), incoming)) {
        skip = true;
        return true;
    }
    return probe_find(p, values, out);
}

void tomb_values(TupleTableSlot *s, Oid relid, Datum key) {
    ExecClearTuple(s);
    s->tts_values[0] = ObjectIdGetDatum(relid);
    s->tts_values[1] = key;
    s->tts_isnull[0] = s->tts_isnull[1] = false;
    ExecStoreVirtualTuple(s);
}

// K's tombstone (relid, key), looked up like its row (probe_newer_first) into cs.tomb_found.
bool find_tombstone(call_state &cs, Oid relid, Datum key, const lww::version &incoming, bool &skip) {
    Datum values[2] = {ObjectIdGetDatum(relid), key};
    return probe_newer_first(cs, cs.tomb_pk, values, cs.tomb_found, incoming, skip);
}

// ExecSimpleRelationInsert (execReplication.c), except that the key's unique index is checked the
// way INSERT ... ON CONFLICT checks its arbiter index: the row goes in as a speculative insertion
// and is taken back when that index already holds the key. The change probed the key missing, but
// a local session may have inserted it since. A plain insert would then wait for that session
// (through its quorum wait too, which can close a cycle across regions: see probe_newer_first) and
// fail with a unique violation, and the whole message with it. Returns false, having inserted
// nothing, when the key was taken: the caller looks again and resolves against that row. A
// deferrable key is only checked at commit, so it gets the plain insert.
bool insert_unless_key_taken(ResultRelInfo *rri, EState *estate, TupleTableSlot *slot, Oid key_index) {
    Relation rel = rri->ri_RelationDesc;
    bool immediate = false;
    for (int i = 0; i < rri->ri_NumIndices; i++)
        if (RelationGetRelid(rri->ri_IndexRelationDescs[i]) == key_index)
            immediate = rri->ri_IndexRelationDescs[i]->rd_index->indimmediate;
    if (!immediate) {
        ExecSimpleRelationInsert(rri, estate, slot);
        return true;
    }
    CheckCmdReplicaIdentity(rel, CMD_INSERT);
    if (rri->ri_TrigDesc && rri->ri_TrigDesc->trig_insert_before_row && !ExecBRInsertTriggers(estate, rri, slot))
        return true;  // a BEFORE trigger skipped the row, as it may in any insert
    if (rel->rd_att->constr && rel->rd_att->constr->has_generated_stored)
        ExecComputeStoredGenerated(rri, estate, slot, CMD_INSERT);
    if (rel->rd_att->constr)
        ExecConstraints(rri, slot, estate);
    if (rel->rd_rel->relispartition)
        ExecPartitionCheck(rri, slot, estate, true);
    TransactionId xid = GetCurrentTransactionId();
    uint32 token = SpeculativeInsertionLockAcquire(xid);
    table_tuple_insert_speculative(rel, slot, GetCurrentCommandId(true), 0, nullptr, token);
    bool taken = false;
    List *recheck = ExecInsertIndexTuples(rri, slot, estate, false, true, &taken, list_make1_oid(key_index));
    table_tuple_complete_speculative(rel, slot, token, !taken);
    SpeculativeInsertionLockRelease(xid);
    if (!taken)
        ExecARInsertTriggers(estate, rri, slot, recheck, nullptr);
    list_free(recheck);
    return !taken;
}

enum class change_outcome { wrote, skipped, key_taken };

// Applies one change, once: key_taken when its insert found the key inserted since the probe.
change_outcome apply_change_once(call_state &cs, target &tg, const proto::row_change &ch, int *map) {
    using o = change_outcome;
    const proto::transaction &m = *cs.msg;
    lww::version incoming{true, m.commit_time, m.region};
    Datum key = key_datum(ch.key);
    bool skip = false;
    bool live = probe_newer_first(cs, tg.pk, &key, tg.found, incoming, skip);
    if (skip)
        return o::skipped;
    if (ch.op == proto::operation::remove) {
        if (live) {
            if (!lww::incoming_wins(version_of(cs, tg.found), incoming))
                return o::skipped;
            // The meridian_tombstone trigger records the tombstone, with this transaction's version.
            ExecSimpleRelationDelete(tg.rri, cs.estate, &cs.epq, tg.found);
            return o::wrote;
        }
        bool tomb = find_tombstone(cs, tg.relid, key, incoming, skip);
        if (skip || (tomb && !lww::incoming_wins(version_of(cs, cs.tomb_found), incoming)))
            return o::skipped;
        tomb_values(cs.tomb_fresh, tg.relid, key);
        if (tomb) {
            ExecSimpleRelationUpdate(cs.tomb_rri, cs.estate, &cs.epq, cs.tomb_found, cs.tomb_fresh);
            return o::wrote;
        }
        return insert_unless_key_taken(cs.tomb_rri, cs.estate, cs.tomb_fresh, cs.tomb_index) ? o::wrote : o::key_taken;
    }

    map_columns(cs, tg, ch, map);
    if (live && !lww::incoming_wins(version_of(cs, tg.found), incoming))
        return o::skipped;
    bool tomb = find_tombstone(cs, tg.relid, key, incoming, skip);
    if (skip || (tomb && !lww::incoming_wins(version_of(cs, cs.tomb_found), incoming)))
        return o::skipped;
    if (live) {
        build_row(cs, tg, ch, map, true);
        ExecSimpleRelationUpdate(tg.rri, cs.estate, &cs.epq, tg.found, tg.fresh);
        return o::wrote;
    }
    for (const proto::column &c : ch.columns)
        if (c.state == proto::value_state::unchanged) {
            ereport(LOG, (errmsg("meridian: skipped an update of key %s in table %s from region \"%s\": the row does "
                                 "not exist here and the update does not carry every column",
                                 key_text(ch.key), qualified(tg), m.region.c_str()),
                          errdetail("Column \"%s\" is marked unchanged.", c.name.c_str())));
            return o::skipped;
        }
    build_row(cs, tg, ch, map, false);
    return insert_unless_key_taken(tg.rri, cs.estate, tg.fresh, tg.info->pk_index) ? o::wrote : o::key_taken;
}

// Applies one change; returns whether it wrote anything. A key inserted concurrently by a local
// session between the probe and the insert is found by the next probe, which waits for that
// session if it is still in progress, and the change resolves against its row last-writer-wins.
bool apply_change(call_state &cs, target &tg, const proto::row_change &ch, int *map) {
    for (;;) {
        change_outcome r = apply_change_once(cs, tg, ch, map);
        if (r != change_outcome::key_taken)
            return r == change_outcome::wrote;
        CHECK_FOR_INTERRUPTS();
    }
}

Oid meridian_namespace() {
    Oid nsp = get_namespace_oid("meridian", true);
    if (!OidIsValid(nsp))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("schema \"meridian\" does not exist"),
                        errhint("CREATE EXTENSION meridian")));
    return nsp;
}

SPIPlanPtr regions_plan = nullptr;
SPIPlanPtr replicated_plan = nullptr;

SPIPlanPtr keep_plan(SPIPlanPtr &slot, const char *sql, int nargs, Oid *types) {
    if (!slot) {
        SPIPlanPtr p = SPI_prepare(sql, nargs, types);
        if (!p)
            elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        SPI_keepplan(p);
        slot = p;
    }
    return slot;
}

// expected_progress: InvalidXLogRecPtr, or the origin progress the caller requires (the
// two-argument form, for pipelined callers: a transaction whose predecessor failed is refused).
int32 apply_decoded(const proto::transaction &m, XLogRecPtr expected_progress) {
    const char *region = m.region.c_str();
    if (!track_commit_timestamp)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("meridian.apply_transaction requires track_commit_timestamp = on"),
                        errdetail("Last-writer-wins compares the commit timestamps of row versions."),
                        errhint("Set track_commit_timestamp = on in postgresql.conf and restart the server.")));
    if (replorigin_session_origin == InvalidRepOriginId)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("no replication origin is set up for this session"),
                        errdetail("Changes of region \"%s\" are applied under the replication origin \"meridian_%s\".",
                                  region, region),
                        errhint("SELECT pg_replication_origin_session_setup('meridian_%s')", region)));
    {
        char *name = nullptr;
        if (!replorigin_by_oid(replorigin_session_origin, true, &name) ||
            lww::region_of_origin(name) != std::string_view(m.region))
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("the session's replication origin \"%s\" is not region \"%s\"'s",
                                   name ? name : "?", region),
                            errhint("Apply changes of region \"%s\" in a session set up with "
                                    "pg_replication_origin_session_setup('meridian_%s').",
                                    region, region)));
    }
    if (MyProc->lxid == applied_lxid)
        ereport(ERROR, (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
                        errmsg("meridian.apply_transaction was already called in this transaction"),
                        errdetail("Every applied transaction is committed on its own: its commit timestamp is "
                                  "the version of the rows it writes."),
                        errhint("Call it once per transaction, in autocommit mode.")));

    call_state cs;
    std::memset(static_cast<void *>(&cs), 0, sizeof cs);
    cs.msg = &m;
    MemoryContext callcxt = CurrentMemoryContext;

    // The source must be a registered peer; the local region names rows without an origin.
    std::size_t nchanges = m.changes.size();
    target *targets = static_cast<target *>(palloc0(sizeof(target) * (nchanges + 1)));
    int *change_target = static_cast<int *>(palloc(sizeof(int) * (nchanges + 1)));
    int ntargets = 0;
    std::size_t max_columns = 0;
    for (std::size_t i = 0; i < nchanges; i++) {
        const proto::row_change &ch = m.changes[i];
        max_columns = std::max(max_columns, ch.columns.size());
        int t = 0;
        while (t < ntargets && !(*targets[t].schema == ch.schema && *targets[t].table == ch.table))
            t++;
        if (t == ntargets) {
            targets[t].schema = &ch.schema;
            targets[t].table = &ch.table;
            ntargets++;
        }
        change_target[i] = t;
        if (ch.op == proto::operation::insert)
            targets[t].inserts = true;
        else if (ch.op == proto::operation::update)
            targets[t].updates = true;
        else
            targets[t].deletes = true;
    }
    Oid nsp = meridian_namespace();
    for (int t = 0; t < ntargets; t++) {
        target &tg = targets[t];
        Oid tnsp = get_namespace_oid(tg.schema->c_str(), true);
        tg.relid = OidIsValid(tnsp) ? get_relname_relid(tg.table->c_str(), tnsp) : InvalidOid;
        if (OidIsValid(tg.relid))
            LockRelationOid(tg.relid, RowExclusiveLock);
        // (re-check after the lock: the table may have been dropped meanwhile)
        if (OidIsValid(tg.relid) && !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(tg.relid)))
            tg.relid = InvalidOid;
        if (!OidIsValid(tg.relid))
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                            errmsg("table %s does not exist", qualified(tg)),
                            errdetail("Region \"%s\" replicates changes of it.", region),
                            errhint("DDL is not replicated: create the table in every region, then "
                                    "SELECT meridian.replicate_table('%s').",
                                    qualified(tg))));
    }

    SPI_connect();
    {
        Oid text_type = TEXTOID;
        SPIPlanPtr p = keep_plan(regions_plan,
                                 "SELECT name, is_local FROM meridian.regions WHERE is_local OR name = $1", 1,
                                 &text_type);
        Datum arg = CStringGetTextDatum(region);
        if (SPI_execute_plan(p, &arg, nullptr, true, 0) != SPI_OK_SELECT)
            elog(ERROR, "reading meridian.regions failed");
        bool peer = false, source_is_local = false;
        for (uint64 r = 0; r < SPI_processed; r++) {
            HeapTuple row = SPI_tuptable->vals[r];
            bool isnull;
            char *name = TextDatumGetCString(SPI_getbinval(row, SPI_tuptable->tupdesc, 1, &isnull));
            bool is_local = DatumGetBool(SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &isnull));
            if (std::strcmp(name, region) == 0) {
                peer = !is_local;
                source_is_local = is_local;
            }
            if (is_local)
                cs.local_region = MemoryContextStrdup(callcxt, name);
        }
        if (source_is_local)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("region \"%s\" is the local region", region),
                            errdetail("Only changes of peer regions are applied here.")));
        if (!peer)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("region \"%s\" does not exist", region),
                            errhint("Register the peer with meridian.create_region.")));
        if (!cs.local_region)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("no local region is set"),
                            errhint("Name this database's region with meridian.set_local_region.")));

        Oid regclass_type = REGCLASSOID;
        p = keep_plan(replicated_plan, "SELECT FROM meridian.replicated_tables WHERE relid = $1", 1, &regclass_type);
        for (int t = 0; t < ntargets; t++) {
            Datum relid = ObjectIdGetDatum(targets[t].relid);
            if (SPI_execute_plan(p, &relid, nullptr, true, 1) != SPI_OK_SELECT)
                elog(ERROR, "reading meridian.replicated_tables failed");
            if (SPI_processed == 0)
                ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                                errmsg("table %s is not replicated in this region", qualified(targets[t])),
                                errdetail("Region \"%s\" replicates changes of it.", region),
                                errhint("SELECT meridian.replicate_table('%s')", qualified(targets[t]))));
        }
    }
    SPI_finish();

    // A resend of a transaction applied before (after a restart of the replicator): nothing to do.
    applied_lxid = MyProc->lxid;
    XLogRecPtr progress = replorigin_session_get_progress(false);
    if (!XLogRecPtrIsInvalid(expected_progress) && progress != expected_progress)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the progress of replication origin \"meridian_%s\" is %X/%X, not %X/%X", region,
                               uint32(progress >> 32), uint32(progress), uint32(expected_progress >> 32),
                               uint32(expected_progress)),
                        errdetail("The transaction ending at %X/%X follows one that was not applied.",
                                  uint32(m.end_lsn >> 32), uint32(m.end_lsn))));
    if (m.end_lsn <= progress)
        return 0;

    // The local commit records the origin's progress atomically and carries the source's commit
    // timestamp as its own (what pg_replication_origin_xact_setup does). An xid makes sure there
    // is a commit record even when every change loses.
    if (!xact_callback_registered) {
        RegisterXactCallback(xact_callback, nullptr);
        xact_callback_registered = true;
    }
    replorigin_session_origin_lsn = m.end_lsn;
    replorigin_session_origin_timestamp = m.commit_time;
    origin_fields_set = true;
    (void)GetTopTransactionId();

    // Concurrent appliers (one session per peer) of the same table take turns, in relid order,
    // so two of them never both find a key missing and both insert it.
    {
        Oid *relids = static_cast<Oid *>(palloc(sizeof(Oid) * (ntargets + 1)));
        for (int t = 0; t < ntargets; t++)
            relids[t] = targets[t].relid;
        std::sort(relids, relids + ntargets);
        for (int t = 0; t < ntargets; t++) {
            LOCKTAG tag;
            SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, relids[t], 0x6d657264 /* "merd" */, 2);
            (void)LockAcquire(&tag, ExclusiveLock, false, false);
        }
    }

    // The executor state: one result relation per target table, plus meridian.tombstones.
    Oid tomb_relid = get_relname_relid("tombstones", nsp);
    if (!OidIsValid(tomb_relid))
        elog(ERROR, "relation meridian.tombstones does not exist");
    cs.tomb_rel = table_open(tomb_relid, RowExclusiveLock);
    cs.tomb_index = RelationGetPrimaryKeyIndex(cs.tomb_rel);
    List *rtable = NIL;
    for (int t = 0; t <= ntargets; t++) {
        RangeTblEntry *rte = makeNode(RangeTblEntry);
        rte->rtekind = RTE_RELATION;
        rte->relid = t < ntargets ? targets[t].relid : tomb_relid;
        rte->relkind = RELKIND_RELATION;
        rte->rellockmode = RowExclusiveLock;
        rtable = lappend(rtable, rte);
    }
    for (int t = 0; t < ntargets; t++) {
        target &tg = targets[t];
        tg.rel = table_open(tg.relid, NoLock);
        if (tg.rel->rd_rel->relkind != RELKIND_RELATION)
            ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("%s is not a table", qualified(tg))));
        tg.info = rel_info(tg.rel);
        if (!tg.info->has_trigger)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("table %s has no enabled meridian_tombstone trigger", qualified(tg)),
                            errdetail("Deletes of replicated tables must leave tombstones."),
                            errhint("SELECT meridian.replicate_table('%s') installs it.", qualified(tg))));
        AclMode need = (tg.inserts ? ACL_INSERT | ACL_UPDATE : 0) | (tg.updates ? ACL_INSERT | ACL_UPDATE : 0) |
                       (tg.deletes ? ACL_DELETE : 0);
        for (AclMode bit : {AclMode(ACL_INSERT), AclMode(ACL_UPDATE), AclMode(ACL_DELETE)}) {
            if (!(need & bit))
                continue;
            AclResult acl = pg_class_aclcheck(tg.relid, GetUserId(), bit);
            if (acl != ACLCHECK_OK)
                aclcheck_error(acl, OBJECT_TABLE, RelationGetRelationName(tg.rel));
        }
        if (check_enable_rls(tg.relid, InvalidOid, false) == RLS_ENABLED)
            ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                            errmsg("cannot apply changes to table %s: row-level security applies to user \"%s\"",
                                   qualified(tg), GetUserNameFromId(GetUserId(), true))));
        tg.seen = static_cast<bool *>(palloc(sizeof(bool) * (tg.info->ncols + 1)));
    }
    int *map = static_cast<int *>(palloc(sizeof(int) * (max_columns + 1)));

    cs.estate = CreateExecutorState();
    ExecInitRangeTable(cs.estate, rtable);
    for (int t = 0; t <= ntargets; t++) {
        ResultRelInfo *rri = makeNode(ResultRelInfo);
        ExecInitResultRelation(cs.estate, rri, t + 1);
        ExecOpenIndices(rri, false);
        Relation rel = rri->ri_RelationDesc;
        if (t < ntargets) {
            target &tg = targets[t];
            tg.rri = rri;
            tg.found = table_slot_create(rel, &cs.estate->es_tupleTable);
            tg.fresh = table_slot_create(rel, &cs.estate->es_tupleTable);
            probe_begin(tg.pk, rel, tg.info->pk_index, 1);
        } else {
            cs.tomb_rri = rri;
            cs.tomb_found = table_slot_create(rel, &cs.estate->es_tupleTable);
            cs.tomb_fresh = table_slot_create(rel, &cs.estate->es_tupleTable);
            probe_begin(cs.tomb_pk, rel, cs.tomb_index, 2);
        }
    }
    EvalPlanQualInit(&cs.epq, cs.estate, nullptr, NIL, -1);

    MemoryContext changecxt = AllocSetContextCreate(callcxt, "meridian apply change", ALLOCSET_DEFAULT_SIZES);
    int32 written = 0;
    for (std::size_t i = 0; i < nchanges; i++) {
        CHECK_FOR_INTERRUPTS();
        target &tg = targets[change_target[i]];
        MemoryContextSwitchTo(changecxt);
        cs.estate->es_output_cid = GetCurrentCommandId(true);
        AfterTriggerBeginQuery();
        if (apply_change(cs, tg, m.changes[i], map))
            written++;
        AfterTriggerEndQuery(cs.estate);
        ExecClearTuple(tg.found);
        ExecClearTuple(tg.fresh);
        ExecClearTuple(cs.tomb_found);
        ResetPerTupleExprContext(cs.estate);
        MemoryContextSwitchTo(callcxt);
        MemoryContextReset(changecxt);
        CommandCounterIncrement();
    }

    for (int t = 0; t < ntargets; t++)
        probe_end(targets[t].pk);
    probe_end(cs.tomb_pk);
    EvalPlanQualEnd(&cs.epq);
    ExecCloseResultRelations(cs.estate);
    ExecCloseRangeTableRelations(cs.estate);
    ExecResetTupleTable(cs.estate->es_tupleTable, false);
    FreeExecutorState(cs.estate);
    for (int t = 0; t < ntargets; t++)
        table_close(targets[t].rel, NoLock);
    table_close(cs.tomb_rel, NoLock);
    MemoryContextDelete(changecxt);
    return written;
}

}  // namespace

extern "C" Datum meridian_apply_transaction(PG_FUNCTION_ARGS) {
    bytea *message = PG_GETARG_BYTEA_PP(0);
    const auto *bytes = reinterpret_cast<const std::uint8_t *>(VARDATA_ANY(message));
    std::size_t size = VARSIZE_ANY_EXHDR(message);
    XLogRecPtr expected_progress = PG_NARGS() > 1 ? PG_GETARG_LSN(1) : InvalidXLogRecPtr;
    return meridian::pg::guarded([&] {
        proto::message decoded = proto::decode(proto::byte_view(bytes, size));
        const auto *t = std::get_if<proto::transaction>(&decoded);
        if (!t)
            throw meridian::error(meridian::sqlstate::invalid_parameter_value,
                                  "meridian.apply_transaction applies transaction messages, not heartbeats",
                                  "A heartbeat only tells the peer's WAL position and clock.");
        int32 written = meridian::pg::call([&] { return apply_decoded(*t, expected_progress); });
        return Int32GetDatum(written);
    });
}
