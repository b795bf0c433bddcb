// Helpers shared by the files of the `vector` type: the checks every constructor of a vector
// makes (dimensions, typmod, finite elements) and the shim macro. The checks throw
// meridian::error, so they are called only inside meridian::pg::guarded bodies.
#pragma once

#include "core/error.hpp"
#include "pg/guard.hpp"
#include "vector/vector.hpp"

#include <cmath>
#include <string>

// Declares an SQL-callable C function with C linkage (PG_FUNCTION_INFO_V1) and starts its
// definition. The body must be `{ return meridian::pg::guarded([&] { ... }); }`.
#define MERIDIAN_SQL_FUNCTION(name) \
    extern "C" {                    \
    PG_FUNCTION_INFO_V1(name);      \
    }                               \
    Datum name(PG_FUNCTION_ARGS)

namespace meridian::vec {

// 1..max_dim dimensions.
inline void check_dim(long dim) {
    if (dim < 1)
        throw meridian::error(sqlstate::data_exception, "vector must have at least 1 dimension");
    if (dim > max_dim)
        throw meridian::error(sqlstate::program_limit_exceeded,
                              "vector cannot have more than " + std::to_string(max_dim) + " dimensions");
}

// The dimensions a typmod asks for (-1: any).
inline void check_expected_dim(int32 typmod, int dim) {
    if (typmod != -1 && typmod != dim)
        throw meridian::error(sqlstate::data_exception,
                              "expected " + std::to_string(typmod) + " dimensions, not " + std::to_string(dim));
}

// Elements are finite.
inline void check_element(float value) {
    if (std::isnan(value))
        throw meridian::error(sqlstate::data_exception, "NaN not allowed in vector");
    if (std::isinf(value))
        throw meridian::error(sqlstate::data_exception, "infinite value not allowed in vector");
}

// Binary operators and distances need equal dimensions.
inline void check_same_dim(const Vector *a, const Vector *b) {
    if (a->dim != b->dim)
        throw meridian::error(sqlstate::data_exception, "different vector dimensions " + std::to_string(a->dim) +
                                                            " and " + std::to_string(b->dim));
}

[[noreturn]] inline void overflow() {
    throw meridian::error(sqlstate::numeric_value_out_of_range, "value out of range: overflow");
}

[[noreturn]] inline void underflow() {
    throw meridian::error(sqlstate::numeric_value_out_of_range, "value out of range: underflow");
}

// The dimension count of a vector Datum without detoasting all of it.
inline int datum_dim(Datum d) {
    struct varlena *p = reinterpret_cast<struct varlena *>(DatumGetPointer(d));
    if (!VARATT_IS_EXTENDED(p))
        return reinterpret_cast<const Vector *>(p)->dim;
    const Vector *head = reinterpret_cast<const Vector *>(PG_DETOAST_DATUM_SLICE(d, 0, 2 * sizeof(int16)));
    return head->dim;
}

}  // namespace meridian::vec
