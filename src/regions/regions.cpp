// The region catalog's C++ parts (docs/regions.md): the GUC meridian.signing_key_file,
// meridian.local_public_key() (the public half of the key in that file, via src/core/keyfile) and
// meridian.table_checksum(regclass) (an order-independent SHA-256 sum of a table's rows). The
// catalog tables and the plpgsql functions are in regions.sql.
#include "core/keyfile.hpp"
#include "core/signing.hpp"
#include "pg/guard.hpp"

#include <sodium.h>

#include <cstdint>
#include <cstring>

extern "C" {
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "executor/tuptable.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(meridian_local_public_key);
PG_FUNCTION_INFO_V1(meridian_table_checksum);
}

using namespace meridian;

namespace {

char *signing_key_file = nullptr;

// ---------------------------------------------------------------------------------------------
// table_checksum. Everything below works on palloc'd memory and plain structs only, so it calls
// PostgreSQL directly (a longjmp through these frames loses nothing).

// sum += h (both 256-bit big-endian numbers), modulo 2^256.
void add_256(std::uint8_t *sum, const std::uint8_t *h) {
    unsigned carry = 0;
    for (int i = 31; i >= 0; i--) {
        unsigned s = unsigned(sum[i]) + unsigned(h[i]) + carry;
        sum[i] = static_cast<std::uint8_t>(s);
        carry = s >> 8;
    }
}

void hash_u32(crypto_hash_sha256_state *st, std::uint32_t v) {
    unsigned char b[4] = {static_cast<unsigned char>(v), static_cast<unsigned char>(v >> 8),
                          static_cast<unsigned char>(v >> 16), static_cast<unsigned char>(v >> 24)};
    crypto_hash_sha256_update(st, b, 4);
}

void hash_bytes(crypto_hash_sha256_state *st, const char *p, std::size_t n) {
    hash_u32(st, static_cast<std::uint32_t>(n));
    crypto_hash_sha256_update(st, reinterpret_cast<const unsigned char *>(p), n);
}

struct column {
    AttrNumber index;  // 0-based, into the slot
    const char *name;
    FmgrInfo out;
};

text *checksum_of(Oid relid) {
    AclResult acl = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);
    Relation rel = table_open(relid, AccessShareLock);
    if (rel->rd_rel->relkind != RELKIND_RELATION && rel->rd_rel->relkind != RELKIND_MATVIEW)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
                        errdetail("meridian.table_checksum reads plain tables and materialized views.")));
    if (acl != ACLCHECK_OK)
        aclcheck_error(acl, get_relkind_objtype(rel->rd_rel->relkind), RelationGetRelationName(rel));
    if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("meridian.table_checksum cannot read \"%s\": row-level security applies to the current user",
                               RelationGetRelationName(rel)),
                        errhint("Compute checksums as the table owner or a role with BYPASSRLS.")));

    // The live columns, sorted by name (bytewise): the checksum compares rows as sets of
    // (name, value) pairs, independent of the columns' physical order.
    TupleDesc desc = RelationGetDescr(rel);
    column *cols = static_cast<column *>(palloc0(sizeof(column) * (desc->natts + 1)));
    int ncols = 0;
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (att->attisdropped)
            continue;
        column c;
        c.index = static_cast<AttrNumber>(i);
        c.name = NameStr(att->attname);
        Oid func;
        bool varlena;
        getTypeOutputInfo(att->atttypid, &func, &varlena);
        fmgr_info(func, &c.out);
        int j = ncols++;
        while (j > 0 && std::strcmp(cols[j - 1].name, c.name) > 0) {
            cols[j] = cols[j - 1];
            j--;
        }
        cols[j] = c;
    }

    std::uint8_t sum[crypto_hash_sha256_BYTES] = {0};
    std::uint64_t rows = 0;
    MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "meridian table_checksum row",
                                                 ALLOCSET_DEFAULT_SIZES);
    TupleTableSlot *slot = table_slot_create(rel, nullptr);
    TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, nullptr);
    while (table_scan_getnextslot(scan, ForwardScanDirection, slot)) {
        CHECK_FOR_INTERRUPTS();
        slot_getallattrs(slot);
        MemoryContext old = MemoryContextSwitchTo(rowcxt);
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        hash_u32(&st, static_cast<std::uint32_t>(ncols));
        for (int k = 0; k < ncols; k++) {
            const column &c = cols[k];
            hash_bytes(&st, c.name, std::strlen(c.name));
            if (slot->tts_isnull[c.index]) {
                crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char *>("\1"), 1);
            } else {
                crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char *>("\0"), 1);
                char *s = OutputFunctionCall(const_cast<FmgrInfo *>(&c.out), slot->tts_values[c.index]);
                hash_bytes(&st, s, std::strlen(s));
            }
        }
        std::uint8_t h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256_final(&st, h);
        add_256(sum, h);
        rows++;
        MemoryContextSwitchTo(old);
        MemoryContextReset(rowcxt);
    }
    table_endscan(scan);
    ExecDropSingleTupleTableSlot(slot);
    MemoryContextDelete(rowcxt);
    table_close(rel, AccessShareLock);

    char hex[2 * crypto_hash_sha256_BYTES + 1];
    static const char digits[] = "0123456789abcdef";
    for (std::size_t i = 0; i < crypto_hash_sha256_BYTES; i++) {
        hex[2 * i] = digits[sum[i] >> 4];
        hex[2 * i + 1] = digits[sum[i] & 15];
    }
    hex[sizeof hex - 1] = '\0';
    return cstring_to_text(psprintf(UINT64_FORMAT ":%s", static_cast<uint64>(rows), hex));
}

}  // namespace

namespace meridian::regions {

// Called from _PG_init (src/module.cpp).
void register_gucs() {
    DefineCustomStringVariable("meridian.signing_key_file",
                               "File holding this region's Ed25519 signing key.",
                               "Written by \"meridian-replicator keygen\"; must be owned by the server's user "
                               "with mode 0600 or stricter. Empty: this server cannot sign.",
                               &signing_key_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
}

// The GUC's current value, "" when unset.
const char *signing_key_path() { return signing_key_file ? signing_key_file : ""; }

}  // namespace meridian::regions

Datum meridian_local_public_key(PG_FUNCTION_ARGS) {
    std::uint8_t pk[signing::public_key_size];
    pg::guarded([&] {
        std::string path = regions::signing_key_path();
        if (path.empty())
            throw meridian::error(sqlstate::object_not_in_prerequisite_state, "meridian.signing_key_file is not set",
                                  {}, "Create a key with \"meridian-replicator keygen FILE\" as the server's user, "
                                      "set meridian.signing_key_file = 'FILE' in postgresql.conf and reload.");
        signing::secret_key key = keyfile::read_file(path);
        signing::public_key p = key.public_key();
        std::memcpy(pk, p.data(), p.size());
    });
    bytea *out = static_cast<bytea *>(palloc(VARHDRSZ + sizeof pk));
    SET_VARSIZE(out, VARHDRSZ + sizeof pk);
    std::memcpy(VARDATA(out), pk, sizeof pk);
    PG_RETURN_BYTEA_P(out);
}

Datum meridian_table_checksum(PG_FUNCTION_ARGS) {
    return pg::guarded([&] {
        signing::init();  // libsodium ready (crypto_hash_sha256 needs no more)
        return PointerGetDatum(checksum_of(PG_GETARG_OID(0)));
    });
}
