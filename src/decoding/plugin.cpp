// The `meridian` logical-decoding output plugin (docs/protocol.md section 6):
//   pg_create_logical_replication_slot(slot, 'meridian'), then stream with ("proto_version" '1').
// It emits one signed transaction message per committed source transaction that changed a
// replicated table (meridian.replicated_tables), and one signed heartbeat per
// "meridian.heartbeat" logical message. Changes with a replication origin are skipped.
//
// Structure. The callbacks are C-style frames that read tuples and catalogs with PostgreSQL
// calls on palloc'd memory; the C++ parts (the transaction writer, the secret key, encoding and
// signing) run inside meridian::pg::guarded sections that make no PostgreSQL call except through
// meridian::pg::call. C++ objects live in memory contexts through pg::context_owned: the key in
// the decoding context, the transaction writer in a per-transaction context reset at commit.
//
// Caches (per backend, in CacheMemoryContext): the catalog (local region name, the set of
// replicated relids, the vector type's OID) and per relation the column layout with send
// functions. A relcache invalidation of a relation marks its entry stale; one of the catalog
// tables (meridian.replication_catalog_changed() issues those, WAL-logged at commit) or a reset
// marks everything stale. Stale entries are rebuilt at their next use, never freed inside the
// callback (it can run in the middle of a lookup).
#include "core/keyfile.hpp"
#include "core/protocol.hpp"
#include "core/signing.hpp"
#include "decoding/decoding.hpp"
#include "pg/context_owned.hpp"
#include "pg/guard.hpp"
#include "vector/vector.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "nodes/pg_list.h"
#include "replication/logical.h"
#include "replication/origin.h"
#include "replication/output_plugin.h"
#include "replication/reorderbuffer.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);
}

namespace meridian::regions {
const char *signing_key_path();  // src/regions/regions.cpp: the GUC meridian.signing_key_file
}

using namespace meridian;
namespace proto = meridian::protocol;

namespace {

// ---------------------------------------------------------------------------------------------
// Per-backend caches

struct column_info {
    const char *name;
    AttrNumber attnum;      // 1-based
    bool varlena;           // attlen == -1: may be an unchanged TOAST pointer
    proto::type_tag tag;
    const char *type_name;  // "nspname.typname" for type_tag::named, else ""
    FmgrInfo send;
};

struct rel_entry {
    Oid relid;  // hash key
    bool valid;
    bool replicated;
    MemoryContext cxt;  // the fields below; nullptr when not replicated
    const char *schema;
    const char *table;
    AttrNumber key_attnum;
    int ncols;
    column_info *cols;
};

struct catalog_cache {
    bool valid;
    Oid regions_oid;
    Oid tables_oid;
    Oid vector_oid;            // InvalidOid if the type is missing
    const char *local_region;  // nullptr when no region is local
    Oid *replicated;           // sorted
    int nreplicated;
};

MemoryContext cache_cxt = nullptr;    // child of CacheMemoryContext
MemoryContext catalog_cxt = nullptr;  // catalog_cache's arrays and strings
HTAB *rel_cache = nullptr;
catalog_cache catalog = {};
std::uint64_t inval_count = 0;  // bumped by every invalidation: a build that saw one is not valid

void invalidate_all() {
    catalog.valid = false;
    if (rel_cache == nullptr)
        return;
    HASH_SEQ_STATUS seq;
    hash_seq_init(&seq, rel_cache);
    while (auto *e = static_cast<rel_entry *>(hash_seq_search(&seq)))
        e->valid = false;
}

void on_relcache_invalidation(Datum, Oid relid) {
    inval_count++;
    if (relid == InvalidOid || relid == catalog.regions_oid || relid == catalog.tables_oid) {
        invalidate_all();
        return;
    }
    if (rel_cache == nullptr)
        return;
    if (auto *e = static_cast<rel_entry *>(hash_search(rel_cache, &relid, HASH_FIND, nullptr)))
        e->valid = false;
}

void init_caches() {
    if (cache_cxt != nullptr)
        return;
    MemoryContext cxt = AllocSetContextCreate(CacheMemoryContext, "meridian decoding cache", ALLOCSET_DEFAULT_SIZES);
    MemoryContext cat = AllocSetContextCreate(cxt, "meridian decoding catalog", ALLOCSET_SMALL_SIZES);
    HASHCTL info;
    std::memset(&info, 0, sizeof info);
    info.keysize = sizeof(Oid);
    info.entrysize = sizeof(rel_entry);
    info.hcxt = cxt;
    HTAB *h = hash_create("meridian decoding relations", 64, &info, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
    CacheRegisterRelcacheCallback(on_relcache_invalidation, 0);
    rel_cache = h;
    catalog_cxt = cat;
    cache_cxt = cxt;
}

[[noreturn]] void extension_missing() {
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("the meridian output plugin needs the meridian extension in database \"%s\"",
                           get_database_name(MyDatabaseId)),
                    errhint("CREATE EXTENSION meridian in the database the slot belongs to.")));
}

// The OID of the `vector` type in the schema the meridian extension is installed in.
Oid find_vector_type() {
    Relation rel = table_open(ExtensionRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ, CStringGetDatum("meridian"));
    SysScanDesc scan = systable_beginscan(rel, ExtensionNameIndexId, true, nullptr, 1, &key);
    HeapTuple tuple = systable_getnext(scan);
    Oid nsp = HeapTupleIsValid(tuple) ? reinterpret_cast<Form_pg_extension>(GETSTRUCT(tuple))->extnamespace : InvalidOid;
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    if (!OidIsValid(nsp))
        extension_missing();
    return GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("vector"), ObjectIdGetDatum(nsp));
}

AttrNumber column_number(Relation rel, const char *name) {
    TupleDesc desc = RelationGetDescr(rel);
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (!att->attisdropped && std::strcmp(NameStr(att->attname), name) == 0)
            return static_cast<AttrNumber>(i + 1);
    }
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                    errmsg("column \"%s\" of meridian.%s does not exist", name, RelationGetRelationName(rel))));
    pg_unreachable();
}

int compare_oids(const void *a, const void *b) {
    Oid x = *static_cast<const Oid *>(a), y = *static_cast<const Oid *>(b);
    return x < y ? -1 : x > y ? 1 : 0;
}

// Reads meridian.regions and meridian.replicated_tables with the current (during decoding: the
// historic) catalog snapshot. Needs a transaction.
void load_catalog() {
    init_caches();
    if (catalog.valid)
        return;
    std::uint64_t seen = inval_count;
    MemoryContextReset(catalog_cxt);
    catalog.local_region = nullptr;
    catalog.replicated = nullptr;
    catalog.nreplicated = 0;

    Oid nsp = get_namespace_oid("meridian", true);
    Oid regions = OidIsValid(nsp) ? get_relname_relid("regions", nsp) : InvalidOid;
    Oid tables = OidIsValid(nsp) ? get_relname_relid("replicated_tables", nsp) : InvalidOid;
    catalog.regions_oid = regions;
    catalog.tables_oid = tables;
    if (!OidIsValid(regions) || !OidIsValid(tables))
        extension_missing();

    Relation rel = table_open(regions, AccessShareLock);
    AttrNumber name_att = column_number(rel, "name"), local_att = column_number(rel, "is_local");
    SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
    HeapTuple tuple;
    while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
        bool isnull;
        Datum local = heap_getattr(tuple, local_att, RelationGetDescr(rel), &isnull);
        if (isnull || !DatumGetBool(local))
            continue;
        Datum name = heap_getattr(tuple, name_att, RelationGetDescr(rel), &isnull);
        if (!isnull)
            catalog.local_region = MemoryContextStrdup(catalog_cxt, TextDatumGetCString(name));
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);

    rel = table_open(tables, AccessShareLock);
    AttrNumber relid_att = column_number(rel, "relid");
    int cap = 16, n = 0;
    Oid *oids = static_cast<Oid *>(MemoryContextAlloc(catalog_cxt, sizeof(Oid) * cap));
    scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
    while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
        bool isnull;
        Datum relid = heap_getattr(tuple, relid_att, RelationGetDescr(rel), &isnull);
        if (isnull)
            continue;
        if (n == cap) {
            cap *= 2;
            oids = static_cast<Oid *>(repalloc(oids, sizeof(Oid) * cap));
        }
        oids[n++] = DatumGetObjectId(relid);
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    qsort(oids, std::size_t(n), sizeof(Oid), compare_oids);
    catalog.replicated = oids;
    catalog.nreplicated = n;

    catalog.vector_oid = find_vector_type();
    // Every relation entry was computed from the previous catalog.
    invalidate_all();
    catalog.valid = seen == inval_count;
}

proto::type_tag tag_of(Oid type) {
    switch (type) {
    case BOOLOID: return proto::type_tag::boolean;
    case INT2OID: return proto::type_tag::int2;
    case INT4OID: return proto::type_tag::int4;
    case INT8OID: return proto::type_tag::int8;
    case FLOAT4OID: return proto::type_tag::float4;
    case FLOAT8OID: return proto::type_tag::float8;
    case NUMERICOID: return proto::type_tag::numeric;
    case TEXTOID: return proto::type_tag::text;
    case VARCHAROID: return proto::type_tag::varchar;
    case BYTEAOID: return proto::type_tag::bytea;
    case UUIDOID: return proto::type_tag::uuid;
    case TIMESTAMPTZOID: return proto::type_tag::timestamptz;
    case TIMESTAMPOID: return proto::type_tag::timestamp;
    case DATEOID: return proto::type_tag::date;
    case JSONBOID: return proto::type_tag::jsonb;
    case JSONOID: return proto::type_tag::json;
    default:
        if (OidIsValid(catalog.vector_oid) && type == catalog.vector_oid)
            return proto::type_tag::vector;
        return proto::type_tag::named;
    }
}

const char *qualified_type_name(Oid type, MemoryContext cxt) {
    HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(type));
    if (!HeapTupleIsValid(tup))
        elog(ERROR, "cache lookup failed for type %u", type);
    auto *t = reinterpret_cast<Form_pg_type>(GETSTRUCT(tup));
    char *nsp = get_namespace_name(t->typnamespace);
    const char *name = MemoryContextStrdup(cxt, psprintf("%s.%s", nsp, NameStr(t->typname)));
    ReleaseSysCache(tup);
    return name;
}

// The cache entry of a relation being decoded, (re)built when stale. Needs a transaction.
rel_entry *entry_of(Relation rel) {
    load_catalog();
    Oid relid = RelationGetRelid(rel);
    bool found;
    auto *e = static_cast<rel_entry *>(hash_search(rel_cache, &relid, HASH_ENTER, &found));
    if (!found) {
        e->valid = false;
        e->cxt = nullptr;
    }
    if (e->valid)
        return e;
    std::uint64_t seen = inval_count;
    if (e->cxt != nullptr) {
        MemoryContext old = e->cxt;
        e->cxt = nullptr;
        MemoryContextDelete(old);
    }
    e->replicated = bsearch(&relid, catalog.replicated, std::size_t(catalog.nreplicated), sizeof(Oid), compare_oids) != nullptr;
    if (e->replicated) {
        MemoryContext cxt = AllocSetContextCreate(cache_cxt, "meridian decoding relation", ALLOCSET_SMALL_SIZES);
        e->cxt = cxt;
        e->schema = MemoryContextStrdup(cxt, get_namespace_name(RelationGetNamespace(rel)));
        e->table = MemoryContextStrdup(cxt, RelationGetRelationName(rel));

        Bitmapset *pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
        e->key_attnum = InvalidAttrNumber;
        if (bms_num_members(pk) == 1)
            e->key_attnum = static_cast<AttrNumber>(bms_singleton_member(pk) + FirstLowInvalidHeapAttributeNumber);
        TupleDesc desc = RelationGetDescr(rel);
        if (e->key_attnum <= 0 || TupleDescAttr(desc, e->key_attnum - 1)->atttypid != UUIDOID)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("replicated table \"%s.%s\" has no primary key of one uuid column", e->schema, e->table),
                            errhint("Give it one, or stop replicating it (delete its row from meridian.replicated_tables).")));

        e->cols = static_cast<column_info *>(MemoryContextAllocZero(cxt, sizeof(column_info) * (desc->natts + 1)));
        e->ncols = 0;
        for (int i = 0; i < desc->natts; i++) {
            Form_pg_attribute att = TupleDescAttr(desc, i);
            if (att->attisdropped || att->attgenerated)
                continue;
            column_info &c = e->cols[e->ncols++];
            c.name = MemoryContextStrdup(cxt, NameStr(att->attname));
            c.attnum = static_cast<AttrNumber>(i + 1);
            c.varlena = att->attlen == -1;
            c.tag = tag_of(att->atttypid);
            c.type_name = c.tag == proto::type_tag::named ? qualified_type_name(att->atttypid, cxt) : "";
            Oid send;
            bool varlena;
            getTypeBinaryOutputInfo(att->atttypid, &send, &varlena);
            fmgr_info_cxt(send, &c.send, cxt);
        }
    }
    e->valid = seen == inval_count;
    return e;
}

// ---------------------------------------------------------------------------------------------
// Plugin state (per decoding context)

struct plugin_state {
    MemoryContext txn_cxt;     // the transaction writer; reset at begin and commit
    MemoryContext change_cxt;  // one change's deformed tuples and send results; reset per change
    const signing::secret_key *key;
    proto::transaction_writer *writer;  // owned by txn_cxt; nullptr until the first replicated change
};

// One column of a row change, ready for the writer (pointers into change_cxt or the cache).
struct prepared_column {
    const column_info *col;
    proto::value_state state;
    const std::uint8_t *data;
    std::size_t len;
};

const char *local_region_or_fail() {
    if (catalog.local_region == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("no local region is set in meridian.regions"),
                        errdetail("The meridian output plugin names the source region in every message."),
                        errhint("Register this region with meridian.create_region and mark it with meridian.set_local_region.")));
    return catalog.local_region;
}

// The uuid key of a deformed tuple.
const pg_uuid_t *key_of(const rel_entry *e, Datum *values, bool *nulls, const char *which) {
    if (nulls[e->key_attnum - 1])
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the %s row of a change of \"%s.%s\" has no primary key value", which, e->schema, e->table)));
    return DatumGetUUIDP(values[e->key_attnum - 1]);
}

bool unchanged_toast(const column_info &c, Datum v, bool isnull) {
    return !isnull && c.varlena && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(v));
}

// The columns of a new row. `old` (may be null) supplies values the new tuple holds only as
// unchanged TOAST pointers, for an update sent as delete + insert.
prepared_column *prepare_columns(const rel_entry *e, Datum *values, bool *nulls, bool is_update, Datum *old_values,
                                 bool *old_nulls) {
    auto *out = static_cast<prepared_column *>(palloc(sizeof(prepared_column) * (e->ncols + 1)));
    for (int k = 0; k < e->ncols; k++) {
        const column_info &c = e->cols[k];
        Datum v = values[c.attnum - 1];
        bool isnull = nulls[c.attnum - 1];
        prepared_column &p = out[k];
        p.col = &c;
        p.data = nullptr;
        p.len = 0;
        if (unchanged_toast(c, v, isnull)) {
            if (is_update) {
                p.state = proto::value_state::unchanged;
                continue;
            }
            if (old_values == nullptr || unchanged_toast(c, old_values[c.attnum - 1], old_nulls[c.attnum - 1]))
                ereport(ERROR,
                        (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                         errmsg("cannot replicate an update of \"%s.%s\" that changes the primary key and keeps the "
                                "out-of-line value of column \"%s\"", e->schema, e->table, c.name),
                         errdetail("The new row is sent as an insert, and logical decoding did not log the unchanged value."),
                         errhint("ALTER TABLE %s.%s REPLICA IDENTITY FULL logs the old row's values in full.",
                                 quote_identifier(e->schema), quote_identifier(e->table))));
            v = old_values[c.attnum - 1];
            isnull = old_nulls[c.attnum - 1];
        }
        if (isnull) {
            p.state = proto::value_state::null;
            continue;
        }
        p.state = proto::value_state::present;
        if (c.tag == proto::type_tag::vector) {
            // Meridian's own type, in vector_send's format without a function call per value
            // (a send call and its bytea were ~10% of a walsender's CPU in the benchmark).
            const auto *vec = vec::datum_get_vector(v);
            p.len = vec::binary_size(vec->dim);
            auto *out_bytes = static_cast<std::uint8_t *>(palloc(p.len));
            vec::write_binary(vec, out_bytes);
            p.data = out_bytes;
            continue;
        }
        bytea *b = SendFunctionCall(const_cast<FmgrInfo *>(&c.send), v);
        p.data = reinterpret_cast<const std::uint8_t *>(VARDATA(b));
        p.len = VARSIZE(b) - VARHDRSZ;
    }
    return out;
}

// Appends one row change to the transaction's message, creating the writer at the first one.
// Called inside pg::guarded.
void append_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, const rel_entry *e, proto::operation op,
                   const pg_uuid_t *key, const prepared_column *cols, int ncols, const char *region) {
    auto *st = static_cast<plugin_state *>(ctx->output_plugin_private);
    if (st->writer == nullptr) {
        auto w = std::make_unique<proto::transaction_writer>(region, txn->xid, txn->final_lsn, txn->end_lsn,
                                                             txn->xact_time.commit_time);
        pg::call([&] { return pg::context_owned<proto::transaction_writer>::attach(st->txn_cxt, w.get()); });
        st->writer = w.release();
    }
    uuid::bytes k;
    std::memcpy(k.data(), key->data, k.size());
    st->writer->add_change(op, e->schema, e->table, k);
    for (int i = 0; i < ncols; i++) {
        const prepared_column &p = cols[i];
        st->writer->add_column(p.col->name, p.col->tag, p.col->type_name, p.state, p.data, p.len);
    }
}

// Writes one whole message. Called inside pg::guarded.
void write_message(LogicalDecodingContext *ctx, const std::vector<std::uint8_t> &bytes) {
    pg::call([&] { OutputPluginPrepareWrite(ctx, true); });
    pg::call([&] { appendBinaryStringInfo(ctx->out, reinterpret_cast<const char *>(bytes.data()), int(bytes.size())); });
    pg::call([&] { OutputPluginWrite(ctx, true); });
}

// ---------------------------------------------------------------------------------------------
// Callbacks

void startup_cb(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init) {
    auto *st = static_cast<plugin_state *>(MemoryContextAllocZero(ctx->context, sizeof(plugin_state)));
    st->txn_cxt = AllocSetContextCreate(ctx->context, "meridian decoding transaction", ALLOCSET_DEFAULT_SIZES);
    st->change_cxt = AllocSetContextCreate(ctx->context, "meridian decoding change", ALLOCSET_DEFAULT_SIZES);
    ctx->output_plugin_private = st;
    opt->output_type = OUTPUT_PLUGIN_BINARY_OUTPUT;
    opt->receive_rewrites = false;
    init_caches();
    if (is_init)  // creating the slot: no options, nothing is decoded yet
        return;

    const char *version = nullptr;
    ListCell *lc;
    foreach (lc, ctx->output_plugin_options) {
        DefElem *d = lfirst_node(DefElem, lc);
        if (std::strcmp(d->defname, "proto_version") == 0) {
            if (d->arg == nullptr || !IsA(d->arg, String))
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("option \"proto_version\" of the meridian output plugin needs a value")));
            version = strVal(d->arg);
        } else {
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("unrecognized option \"%s\" of the meridian output plugin", d->defname),
                            errhint("The only option is proto_version.")));
        }
    }
    if (version == nullptr)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("the meridian output plugin needs the option proto_version"),
                        errhint("Start the stream with (\"proto_version\" '1').")));
    if (std::strcmp(version, "1") != 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("meridian protocol version \"%s\" is not supported", version),
                        errdetail("This server's meridian output plugin emits protocol version 1.")));

    pg::guarded([&] {
        std::string path = regions::signing_key_path();
        if (path.empty())
            throw meridian::error(sqlstate::object_not_in_prerequisite_state,
                                  "the meridian output plugin cannot sign: meridian.signing_key_file is not set", {},
                                  "Create a key with \"meridian-replicator keygen FILE\" as the server's user, set "
                                  "meridian.signing_key_file = 'FILE' in postgresql.conf and reload.");
        auto key = std::make_unique<signing::secret_key>(keyfile::read_file(path));
        pg::call([&] { return pg::context_owned<signing::secret_key>::attach(ctx->context, key.get()); });
        st->key = key.release();
    });
}

bool filter_by_origin_cb(LogicalDecodingContext *, RepOriginId origin_id) {
    return origin_id != InvalidRepOriginId;
}

void begin_cb(LogicalDecodingContext *ctx, ReorderBufferTXN *) {
    auto *st = static_cast<plugin_state *>(ctx->output_plugin_private);
    st->writer = nullptr;
    MemoryContextReset(st->txn_cxt);  // a writer left by a failed transaction, if any
}

void change_cb(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, Relation rel, ReorderBufferChange *change) {
    auto *st = static_cast<plugin_state *>(ctx->output_plugin_private);
    ReorderBufferChangeType action = change->action;
    if (action != REORDER_BUFFER_CHANGE_INSERT && action != REORDER_BUFFER_CHANGE_UPDATE &&
        action != REORDER_BUFFER_CHANGE_DELETE)
        return;
    rel_entry *e = entry_of(rel);
    if (!e->replicated)
        return;
    const char *region = local_region_or_fail();

    MemoryContextReset(st->change_cxt);
    MemoryContext old = MemoryContextSwitchTo(st->change_cxt);
    TupleDesc desc = RelationGetDescr(rel);
    int natts = desc->natts;
    auto deform = [&](ReorderBufferTupleBuf *buf, Datum *&values, bool *&nulls) {
        values = static_cast<Datum *>(palloc(sizeof(Datum) * (natts + 1)));
        nulls = static_cast<bool *>(palloc(sizeof(bool) * (natts + 1)));
        heap_deform_tuple(&buf->tuple, desc, values, nulls);
    };
    ReorderBufferTupleBuf *newtuple = change->data.tp.newtuple;
    ReorderBufferTupleBuf *oldtuple = change->data.tp.oldtuple;
    Datum *nv = nullptr, *ov = nullptr;
    bool *nn = nullptr, *on = nullptr;

    // Up to two row changes: (op, key, columns).
    proto::operation ops[2];
    const pg_uuid_t *keys[2];
    prepared_column *cols[2] = {nullptr, nullptr};
    int ncols[2] = {0, 0};
    int n = 0;
    if (action == REORDER_BUFFER_CHANGE_INSERT) {
        if (newtuple == nullptr)
            elog(ERROR, "insert into \"%s.%s\" without a new tuple", e->schema, e->table);
        deform(newtuple, nv, nn);
        ops[n] = proto::operation::insert;
        keys[n] = key_of(e, nv, nn, "new");
        cols[n] = prepare_columns(e, nv, nn, false, nullptr, nullptr);
        ncols[n++] = e->ncols;
    } else if (action == REORDER_BUFFER_CHANGE_UPDATE) {
        if (newtuple == nullptr)
            elog(ERROR, "update of \"%s.%s\" without a new tuple", e->schema, e->table);
        deform(newtuple, nv, nn);
        const pg_uuid_t *newkey = key_of(e, nv, nn, "new");
        const pg_uuid_t *oldkey = nullptr;
        if (oldtuple != nullptr) {  // logged when the key changed, or always with REPLICA IDENTITY FULL
            deform(oldtuple, ov, on);
            oldkey = key_of(e, ov, on, "old");
        }
        if (oldkey != nullptr && std::memcmp(oldkey->data, newkey->data, UUID_LEN) != 0) {
            ops[n] = proto::operation::remove;
            keys[n++] = oldkey;
            ops[n] = proto::operation::insert;
            keys[n] = newkey;
            cols[n] = prepare_columns(e, nv, nn, false, ov, on);
            ncols[n++] = e->ncols;
        } else {
            ops[n] = proto::operation::update;
            keys[n] = newkey;
            cols[n] = prepare_columns(e, nv, nn, true, nullptr, nullptr);
            ncols[n++] = e->ncols;
        }
    } else {
        if (oldtuple == nullptr)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("a delete from replicated table \"%s.%s\" carries no key", e->schema, e->table),
                            errhint("Set its replica identity to DEFAULT (the primary key) or FULL.")));
        deform(oldtuple, ov, on);
        ops[n] = proto::operation::remove;
        keys[n++] = key_of(e, ov, on, "old");
    }
    MemoryContextSwitchTo(old);

    pg::guarded([&] {
        for (int i = 0; i < n; i++)
            append_change(ctx, txn, e, ops[i], keys[i], cols[i], ncols[i], region);
    });
}

void commit_cb(LogicalDecodingContext *ctx, ReorderBufferTXN *, XLogRecPtr) {
    auto *st = static_cast<plugin_state *>(ctx->output_plugin_private);
    bool sent = false;
    if (st->writer != nullptr && st->writer->change_count() > 0) {
        pg::guarded([&] {
            std::vector<std::uint8_t> bytes = st->writer->finish(*st->key);
            write_message(ctx, bytes);
        });
        sent = true;
    }
    st->writer = nullptr;
    MemoryContextReset(st->txn_cxt);
    MemoryContextReset(st->change_cxt);
    // Lets the walsender report progress (and send keepalives) across skipped transactions.
    OutputPluginUpdateProgress(ctx, !sent);
}

void message_cb(LogicalDecodingContext *ctx, ReorderBufferTXN *, XLogRecPtr message_lsn, bool transactional,
                const char *prefix, Size message_size, const char *message) {
    if (transactional || std::strcmp(prefix, decoding::heartbeat_prefix) != 0 || message_size != 8)
        return;
    auto *st = static_cast<plugin_state *>(ctx->output_plugin_private);
    // A non-transactional message is decoded outside any transaction (in a walsender); the
    // catalog needs one. The historic snapshot is already set up.
    if (!catalog.valid) {
        MemoryContext cxt = CurrentMemoryContext;
        bool started = !IsTransactionState();
        if (started)
            StartTransactionCommand();
        load_catalog();
        if (started)
            AbortCurrentTransaction();
        MemoryContextSwitchTo(cxt);
    }
    const char *region = local_region_or_fail();
    std::uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits |= std::uint64_t(static_cast<unsigned char>(message[i])) << (8 * i);
    pg::guarded([&] {
        proto::heartbeat h;
        h.region = region;
        h.wal_lsn = message_lsn;
        h.time = static_cast<std::int64_t>(bits);
        write_message(ctx, proto::encode(h, *st->key));
    });
}

}  // namespace

void _PG_output_plugin_init(OutputPluginCallbacks *cb) {
    cb->startup_cb = startup_cb;
    cb->begin_cb = begin_cb;
    cb->change_cb = change_cb;
    cb->commit_cb = commit_cb;
    cb->message_cb = message_cb;
    cb->filter_by_origin_cb = filter_by_origin_cb;
    // truncate_cb stays NULL: TRUNCATE is not replicated in protocol version 1. No streaming or
    // two-phase callbacks: transactions are decoded once committed, in commit order.
}
