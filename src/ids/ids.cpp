// Deterministic ids: meridian.uuid_v5(namespace, name) (RFC 9562 UUIDv5) and
// meridian.vector_id(v [, namespace]) (UUIDv5 over the vector's canonical bytes), so that every
// region derives the same id for the same vector. The hashing is in src/core/uuid; these shims only
// move bytes between Datums and it. Byte formats: docs/ids.md.
#include "core/uuid.hpp"
#include "pg/guard.hpp"
#include "vector/vector.hpp"
#include "vector/vector_util.hpp"

#include <cstring>

extern "C" {
#include "utils/uuid.h"
}

using namespace meridian;

namespace {

uuid::bytes arg_uuid(FunctionCallInfo fcinfo, int n) {
    const pg_uuid_t *p = PG_GETARG_UUID_P(n);
    uuid::bytes u;
    static_assert(sizeof(p->data) == std::tuple_size<uuid::bytes>::value, "pg_uuid_t is 16 bytes");
    std::memcpy(u.data(), p->data, u.size());
    return u;
}

// A palloc'd pg_uuid_t Datum (the frame owns no C++ resources: a failing palloc loses nothing).
Datum uuid_datum(const uuid::bytes &u) {
    pg_uuid_t *p = static_cast<pg_uuid_t *>(palloc(sizeof(pg_uuid_t)));
    std::memcpy(p->data, u.data(), u.size());
    return UUIDPGetDatum(p);
}

// UUIDv5 of a varlena name (text or bytea: both are hashed as their raw bytes; text is in the
// database encoding, as in uuid-ossp's uuid_generate_v5).
Datum v5_of_varlena(FunctionCallInfo fcinfo) {
    uuid::bytes ns = arg_uuid(fcinfo, 0);
    const struct varlena *name = PG_GETARG_VARLENA_PP(1);
    return uuid_datum(uuid::v5(ns, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name)));
}

Datum vector_id_of(FunctionCallInfo fcinfo, const uuid::bytes &ns) {
    const vec::Vector *v = vec::datum_get_vector(PG_GETARG_DATUM(0));
    return uuid_datum(uuid::vector_id(ns, v->x, static_cast<std::uint32_t>(v->dim)));
}

}  // namespace

MERIDIAN_SQL_FUNCTION(meridian_uuid_v5_text) {
    return pg::guarded([&] { return v5_of_varlena(fcinfo); });
}

MERIDIAN_SQL_FUNCTION(meridian_uuid_v5_bytea) {
    return pg::guarded([&] { return v5_of_varlena(fcinfo); });
}

MERIDIAN_SQL_FUNCTION(meridian_vector_id) {
    return pg::guarded([&] { return vector_id_of(fcinfo, uuid::meridian_namespace); });
}

MERIDIAN_SQL_FUNCTION(meridian_vector_id_ns) {
    return pg::guarded([&] { return vector_id_of(fcinfo, arg_uuid(fcinfo, 1)); });
}
