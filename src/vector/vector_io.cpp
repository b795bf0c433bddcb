// The `vector` type's input and output: text (in/out), binary (recv/send), the typmod, the
// typmod coercion and the casts to and from arrays. Text form `[1,2,3]`; binary form int16 dim,
// int16 unused (0), then dim float4 in network byte order, as pgvector.
#include "vector/vector_util.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern "C" {
#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "libpq/pqformat.h"
#include "port/pg_bswap.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

using namespace meridian;
using namespace meridian::vec;

namespace {

// Whitespace tolerated around elements and brackets (the C locale's isspace, spelled out so the
// server's locale cannot change it).
inline bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

inline const char *skip_space(const char *p) {
    while (is_space(*p))
        p++;
    return p;
}

[[noreturn]] void bad_syntax(const char *literal, const char *detail = "") {
    throw meridian::error(sqlstate::invalid_text_representation,
                          std::string("invalid input syntax for type vector: \"") + literal + "\"", detail);
}

// Parses `[x1, x2, ...]`; the result is palloc'd in the current memory context.
Vector *parse_vector(const char *literal, int32 typmod) {
    const char *p = skip_space(literal);
    if (*p != '[')
        bad_syntax(literal, "A vector starts with \"[\".");
    p = skip_space(p + 1);
    if (*p == ']')
        check_dim(0);

    // Room for every element the commas announce (at most one more than max_dim, which is an
    // error below), so the floats are parsed straight into the result.
    long capacity = 1;
    for (const char *q = p; *q != '\0' && capacity <= max_dim; q++)
        capacity += (*q == ',');
    if (capacity > max_dim)
        capacity = max_dim;
    Vector *v = new_vector(static_cast<int>(capacity));

    int dim = 0;
    for (;;) {
        if (dim == max_dim)
            check_dim(max_dim + 1);
        p = skip_space(p);
        if (*p == '\0')
            bad_syntax(literal, "The closing \"]\" is missing.");
        char *end;
        errno = 0;
        float value = std::strtof(p, &end);
        if (end == p)
            bad_syntax(literal);
        if (errno == ERANGE && std::isinf(value))
            throw meridian::error(sqlstate::numeric_value_out_of_range,
                                  "\"" + std::string(p, end - p) + "\" is out of range for type vector");
        check_element(value);
        v->x[dim++] = value;
        p = skip_space(end);
        if (*p == ',') {
            p++;
        } else if (*p == ']') {
            p++;
            break;
        } else {
            bad_syntax(literal);
        }
    }
    if (*skip_space(p) != '\0')
        bad_syntax(literal, "Only whitespace may follow the closing \"]\".");
    check_expected_dim(typmod, dim);
    v->dim = static_cast<int16>(dim);
    SET_VARSIZE(v, vector_size(dim));
    return v;
}

// A float4 from an array element of type elemtype.
float element_to_float(Datum d, Oid elemtype) {
    switch (elemtype) {
    case INT4OID:
        return static_cast<float>(DatumGetInt32(d));
    case FLOAT4OID:
        return DatumGetFloat4(d);
    case FLOAT8OID: {
        double x = DatumGetFloat8(d);
        float f = static_cast<float>(x);
        if (std::isinf(f) && !std::isinf(x))
            overflow();
        return f;
    }
    case NUMERICOID:
        // numeric_float4 reports out-of-range values itself.
        return DatumGetFloat4(DirectFunctionCall1(numeric_float4, d));
    default:
        throw meridian::error(sqlstate::datatype_mismatch, "unsupported array element type for vector");
    }
}

}  // namespace

// vector_in(cstring, oid, integer) -> vector
MERIDIAN_SQL_FUNCTION(vector_in) {
    return pg::guarded([&] {
        const char *literal = PG_GETARG_CSTRING(0);
        int32 typmod = PG_GETARG_INT32(2);
        return PointerGetDatum(parse_vector(literal, typmod));
    });
}

// vector_out(vector) -> cstring: shortest round-trip decimal of every element.
MERIDIAN_SQL_FUNCTION(vector_out) {
    return pg::guarded([&] {
        const Vector *v = datum_get_vector(PG_GETARG_DATUM(0));
        int dim = v->dim;
        // Each element takes at most FLOAT_SHORTEST_DECIMAL_LEN - 1 characters plus a separator.
        char *buf = static_cast<char *>(palloc(static_cast<std::size_t>(dim) * FLOAT_SHORTEST_DECIMAL_LEN + 3));
        char *p = buf;
        *p++ = '[';
        for (int i = 0; i < dim; i++) {
            if (i > 0)
                *p++ = ',';
            p += float_to_shortest_decimal_bufn(v->x[i], p);
        }
        *p++ = ']';
        *p = '\0';
        return CStringGetDatum(buf);
    });
}

// vector_typmod_in(cstring[]) -> integer: the dimensions, 1..16000.
MERIDIAN_SQL_FUNCTION(vector_typmod_in) {
    return pg::guarded([&] {
        ArrayType *mods = PG_GETARG_ARRAYTYPE_P(0);
        int n = 0;
        int32 *values = ArrayGetIntegerTypmods(mods, &n);
        if (n != 1)
            throw meridian::error(sqlstate::invalid_parameter_value, "invalid type modifier",
                                  "A vector type takes exactly one modifier, its dimensions.");
        if (values[0] < 1)
            throw meridian::error(sqlstate::invalid_parameter_value, "dimensions for type vector must be at least 1");
        if (values[0] > max_dim)
            throw meridian::error(sqlstate::invalid_parameter_value,
                                  "dimensions for type vector cannot exceed " + std::to_string(max_dim));
        return Int32GetDatum(values[0]);
    });
}

// vector_recv(internal, oid, integer) -> vector
MERIDIAN_SQL_FUNCTION(vector_recv) {
    return pg::guarded([&] {
        StringInfo buf = reinterpret_cast<StringInfo>(PG_GETARG_POINTER(0));
        int32 typmod = PG_GETARG_INT32(2);
        int dim = static_cast<int16>(pq_getmsgint(buf, sizeof(int16)));
        int unused = static_cast<int16>(pq_getmsgint(buf, sizeof(int16)));
        check_dim(dim);
        if (unused != 0)
            throw meridian::error(sqlstate::data_exception, "expected unused to be 0, not " + std::to_string(unused));
        check_expected_dim(typmod, dim);
        // The elements in one pass over the buffer (replication applies many vectors: a call per
        // element was ~6% of apply time).
        if (buf->len - buf->cursor < static_cast<int>(sizeof(float)) * dim)
            throw meridian::error("08P01", "insufficient data left in message");
        Vector *v = new_vector(dim);
        const char *src = buf->data + buf->cursor;
        for (int i = 0; i < dim; i++) {
            uint32 bits;
            std::memcpy(&bits, src + sizeof(float) * i, sizeof bits);
            bits = pg_ntoh32(bits);
            std::memcpy(&v->x[i], &bits, sizeof bits);
            check_element(v->x[i]);
        }
        buf->cursor += static_cast<int>(sizeof(float)) * dim;
        return PointerGetDatum(v);
    });
}

// vector_send(vector) -> bytea
MERIDIAN_SQL_FUNCTION(vector_send) {
    return pg::guarded([&] {
        const Vector *v = datum_get_vector(PG_GETARG_DATUM(0));
        StringInfoData buf;
        pq_begintypsend(&buf);
        int size = static_cast<int>(binary_size(v->dim));
        enlargeStringInfo(&buf, size);
        write_binary(v, reinterpret_cast<std::uint8_t *>(buf.data + buf.len));
        buf.len += size;
        buf.data[buf.len] = '\0';
        return PointerGetDatum(pq_endtypsend(&buf));
    });
}

// vector(vector, integer, boolean) -> vector: the typmod coercion (length cast).
MERIDIAN_SQL_FUNCTION(vector) {
    return pg::guarded([&] {
        Datum d = PG_GETARG_DATUM(0);
        check_expected_dim(PG_GETARG_INT32(1), datum_dim(d));
        return d;
    });
}

// array_to_vector(integer[] | real[] | double precision[] | numeric[], integer, boolean) -> vector
MERIDIAN_SQL_FUNCTION(array_to_vector) {
    return pg::guarded([&] {
        ArrayType *array = PG_GETARG_ARRAYTYPE_P(0);
        int32 typmod = PG_GETARG_INT32(1);
        if (ARR_NDIM(array) > 1)
            throw meridian::error(sqlstate::data_exception, "array must be 1-D");
        if (array_contains_nulls(array))
            throw meridian::error(sqlstate::null_value_not_allowed, "array must not contain nulls");
        Oid elemtype = ARR_ELEMTYPE(array);
        int16 typlen;
        bool typbyval;
        char typalign;
        get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
        Datum *elems;
        int n;
        deconstruct_array(array, elemtype, typlen, typbyval, typalign, &elems, nullptr, &n);
        check_dim(n);
        check_expected_dim(typmod, n);
        Vector *v = new_vector(n);
        for (int i = 0; i < n; i++) {
            v->x[i] = element_to_float(elems[i], elemtype);
            check_element(v->x[i]);
        }
        return PointerGetDatum(v);
    });
}

// vector_to_float4(vector, integer, boolean) -> real[]
MERIDIAN_SQL_FUNCTION(vector_to_float4) {
    return pg::guarded([&] {
        const Vector *v = datum_get_vector(PG_GETARG_DATUM(0));
        Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * v->dim));
        for (int i = 0; i < v->dim; i++)
            elems[i] = Float4GetDatum(v->x[i]);
        return PointerGetDatum(construct_array(elems, v->dim, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT));
    });
}
