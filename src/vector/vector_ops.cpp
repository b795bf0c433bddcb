// The `vector` type's operators and functions: distances (through the SIMD kernels of
// core/distance), element-wise arithmetic, concatenation, comparison (btree), norms and slicing.
#include "core/distance.hpp"
#include "vector/vector_util.hpp"

#include <cmath>
#include <cstring>

extern "C" {
#include "fmgr.h"
#include "utils/builtins.h"
}

using namespace meridian;
using namespace meridian::vec;
namespace dist = meridian::distance;

namespace {

inline const Vector *arg_vector(FunctionCallInfo fcinfo, int n) {
    return datum_get_vector(PG_GETARG_DATUM(n));
}

// sum x_i^2 in double: the kernel's float sum when it is a normal number, otherwise (overflow to
// infinity, underflow to zero or subnormal) an exact-range double sum.
double norm_squared_double(const Vector *v) {
    float fast = dist::norm_squared(v->x, v->dim);
    if (std::isnormal(fast))
        return fast;
    double s = 0.0;
    for (int i = 0; i < v->dim; i++)
        s += static_cast<double>(v->x[i]) * v->x[i];
    return s;
}

// Cosine distance in double from float sums: 1 - a.b / (|a| |b|), in [0, 2], NaN for a zero norm.
double cosine_distance_double(const Vector *a, const Vector *b) {
    double dot = dist::inner_product(a->x, b->x, a->dim);
    double norms = static_cast<double>(dist::norm_squared(a->x, a->dim)) * dist::norm_squared(b->x, b->dim);
    double similarity = dot / std::sqrt(norms);
    if (std::isnan(similarity))
        return std::nan("");
    if (similarity > 1.0)
        similarity = 1.0;
    else if (similarity < -1.0)
        similarity = -1.0;
    return 1.0 - similarity;
}

// Three-way comparison: element by element over the common prefix, then the shorter first.
int compare(const Vector *a, const Vector *b) {
    int n = a->dim < b->dim ? a->dim : b->dim;
    for (int i = 0; i < n; i++) {
        if (a->x[i] < b->x[i])
            return -1;
        if (a->x[i] > b->x[i])
            return 1;
    }
    return (a->dim > b->dim) - (a->dim < b->dim);
}

// The result of an element-wise operation: the transition value itself when this is an aggregate's
// transition (or combine) call and the value is not a detoasted copy, else a new vector.
Vector *elementwise_result(FunctionCallInfo fcinfo, const Vector *a) {
    if (AggCheckCallContext(fcinfo, nullptr) && reinterpret_cast<const void *>(a) == DatumGetPointer(PG_GETARG_DATUM(0)))
        return const_cast<Vector *>(a);
    return new_vector(a->dim);
}

int compare_args(FunctionCallInfo fcinfo) {
    return compare(arg_vector(fcinfo, 0), arg_vector(fcinfo, 1));
}

}  // namespace

// ----------------------------------------------------------------------------------- distances

MERIDIAN_SQL_FUNCTION(l2_distance) {
    return pg::guarded([&] {
        const Vector *a = arg_vector(fcinfo, 0), *b = arg_vector(fcinfo, 1);
        check_same_dim(a, b);
        return Float8GetDatum(std::sqrt(static_cast<double>(dist::l2_squared(a->x, b->x, a->dim))));
    });
}

MERIDIAN_SQL_FUNCTION(vector_l2_squared_distance) {
    return pg::guarded([&] {
        const Vector *a = arg_vector(fcinfo, 0), *b = arg_vector(fcinfo, 1);
        check_same_dim(a, b);
        return Float8GetDatum(static_cast<double>(dist::l2_squared(a->x, b->x, a->dim)));
    });
}

MERIDIAN_SQL_FUNCTION(inner_product) {
    return pg::guarded([&] {
        const Vector *a = arg_vector(fcinfo, 0), *b = arg_vector(fcinfo, 1);
        check_same_dim(a, b);
        return Float8GetDatum(static_cast<double>(dist::inner_product(a->x, b->x, a->dim)));
    });
}

MERIDIAN_SQL_FUNCTION(vector_negative_inner_product) {
    return pg::guarded([&] {
        const Vector *a = arg_vector(fcinfo, 0), *b = arg_vector(fcinfo, 1);
        check_same_dim(a, b);
        return Float8GetDatum(-static_cast<double>(dist::inner_product(a->x, b->x, a->dim)));
    });
}

MERIDIAN_SQL_FUNCTION(cosine_distance) {
    return pg::guarded([&] {
        const Vector *a = arg_vector(fcinfo, 0), *b = arg_vector(fcinfo, 1);
        check_same_dim(a, b);
        return Float8GetDatum(cosine_distance_double(a, b));
    });
}

MERIDIAN_SQL_FUNCTION(l1_distance) {
    return pg::guarded([&] {
        const Vector *a = arg_vector(fcinfo, 0), *b = arg_vector(fcinfo, 1);
        check_same_dim(a, b);
        return Float8GetDatum(static_cast<double>(dist::l1(a->x, b->x, a->dim)));
    });
}

// ------------------------------------------------------------------------- functions of one vector

MERIDIAN_SQL_FUNCTION(vector_dims) {
    return pg::guarded([&] { return Int32GetDatum(datum_dim(PG_GETARG_DATUM(0))); });
}

MERIDIAN_SQL_FUNCTION(vector_norm) {
    return pg::guarded([&] { return Float8GetDatum(std::sqrt(norm_squared_double(arg_vector(fcinfo, 0)))); });
}

// The vector scaled to norm 1; the zero vector stays zero.
MERIDIAN_SQL_FUNCTION(l2_normalize) {
    return pg::guarded([&] {
        const Vector *a = arg_vector(fcinfo, 0);
        Vector *r = new_vector(a->dim);
        double norm = std::sqrt(norm_squared_double(a));
        if (norm > 0.0) {
            for (int i = 0; i < a->dim; i++)
                r->x[i] = static_cast<float>(a->x[i] / norm);
            for (int i = 0; i < a->dim; i++)
                if (std::isinf(r->x[i]))
                    overflow();
        }
        return PointerGetDatum(r);
    });
}

// subvector(vector, start, count): the elements at 1-based positions start .. start+count-1 that
// exist, like substring(); an empty result is an error.
MERIDIAN_SQL_FUNCTION(subvector) {
    return pg::guarded([&] {
        const Vector *a = arg_vector(fcinfo, 0);
        int64 start = PG_GETARG_INT32(1);
        int64 count = PG_GETARG_INT32(2);
        if (count < 1)
            check_dim(0);
        int64 end = start + count;  // exclusive; no overflow in 64 bits
        if (start < 1)
            start = 1;
        if (end > a->dim + 1)
            end = a->dim + 1;
        check_dim(end - start);
        Vector *r = new_vector(static_cast<int>(end - start));
        std::memcpy(r->x, a->x + (start - 1), sizeof(float) * static_cast<std::size_t>(r->dim));
        return PointerGetDatum(r);
    });
}

// --------------------------------------------------------------------------- arithmetic

MERIDIAN_SQL_FUNCTION(vector_add) {
    return pg::guarded([&] {
        const Vector *a = arg_vector(fcinfo, 0), *b = arg_vector(fcinfo, 1);
        check_same_dim(a, b);
        Vector *r = elementwise_result(fcinfo, a);
        bool inf = false;
        for (int i = 0; i < a->dim; i++) {
            r->x[i] = a->x[i] + b->x[i];
            inf |= std::isinf(r->x[i]);
        }
        if (inf)
            overflow();
        return PointerGetDatum(r);
    });
}

MERIDIAN_SQL_FUNCTION(vector_sub) {
    return pg::guarded([&] {
        const Vector *a = arg_vector(fcinfo, 0), *b = arg_vector(fcinfo, 1);
        check_same_dim(a, b);
        Vector *r = new_vector(a->dim);
        bool inf = false;
        for (int i = 0; i < a->dim; i++) {
            r->x[i] = a->x[i] - b->x[i];
            inf |= std::isinf(r->x[i]);
        }
        if (inf)
            overflow();
        return PointerGetDatum(r);
    });
}

MERIDIAN_SQL_FUNCTION(vector_mul) {
    return pg::guarded([&] {
        const Vector *a = arg_vector(fcinfo, 0), *b = arg_vector(fcinfo, 1);
        check_same_dim(a, b);
        Vector *r = new_vector(a->dim);
        bool inf = false, under = false;
        for (int i = 0; i < a->dim; i++) {
            r->x[i] = a->x[i] * b->x[i];
            inf |= std::isinf(r->x[i]);
            under |= r->x[i] == 0.0f && a->x[i] != 0.0f && b->x[i] != 0.0f;
        }
        if (inf)
            overflow();
        if (under)
            underflow();
        return PointerGetDatum(r);
    });
}

MERIDIAN_SQL_FUNCTION(vector_concat) {
    return pg::guarded([&] {
        const Vector *a = arg_vector(fcinfo, 0), *b = arg_vector(fcinfo, 1);
        check_dim(static_cast<long>(a->dim) + b->dim);
        Vector *r = new_vector(a->dim + b->dim);
        std::memcpy(r->x, a->x, sizeof(float) * static_cast<std::size_t>(a->dim));
        std::memcpy(r->x + a->dim, b->x, sizeof(float) * static_cast<std::size_t>(b->dim));
        return PointerGetDatum(r);
    });
}

// --------------------------------------------------------------------------- comparison

MERIDIAN_SQL_FUNCTION(vector_cmp) {
    return pg::guarded([&] { return Int32GetDatum(compare_args(fcinfo)); });
}
MERIDIAN_SQL_FUNCTION(vector_lt) {
    return pg::guarded([&] { return BoolGetDatum(compare_args(fcinfo) < 0); });
}
MERIDIAN_SQL_FUNCTION(vector_le) {
    return pg::guarded([&] { return BoolGetDatum(compare_args(fcinfo) <= 0); });
}
MERIDIAN_SQL_FUNCTION(vector_eq) {
    return pg::guarded([&] { return BoolGetDatum(compare_args(fcinfo) == 0); });
}
MERIDIAN_SQL_FUNCTION(vector_ne) {
    return pg::guarded([&] { return BoolGetDatum(compare_args(fcinfo) != 0); });
}
MERIDIAN_SQL_FUNCTION(vector_ge) {
    return pg::guarded([&] { return BoolGetDatum(compare_args(fcinfo) >= 0); });
}
MERIDIAN_SQL_FUNCTION(vector_gt) {
    return pg::guarded([&] { return BoolGetDatum(compare_args(fcinfo) > 0); });
}

// --------------------------------------------------------------------------- inspection

// meridian.distance_isa() -> text: the distance kernel set this backend uses ("avx512", "avx2" or
// "scalar"; MERIDIAN_SIMD in the server's environment may force a lower one).
MERIDIAN_SQL_FUNCTION(meridian_distance_isa) {
    return pg::guarded([&] { return PointerGetDatum(cstring_to_text(dist::active.isa)); });
}
