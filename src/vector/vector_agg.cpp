// avg(vector): the transition state is a double precision[] {count, sum_1, ..., sum_dim}
// (initially {0}), so partial states of parallel workers combine by addition and sums keep double
// precision. sum(vector) needs no state of its own: it is vector_add (vector_ops.cpp).
#include "vector/vector_util.hpp"

#include <cstring>

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
}

using namespace meridian;
using namespace meridian::vec;

namespace {

// The float8 elements of a state array, after checking it is one.
double *state_values(ArrayType *state, int *n) {
    if (ARR_NDIM(state) != 1 || ARR_HASNULL(state) || ARR_ELEMTYPE(state) != FLOAT8OID)
        throw meridian::error(sqlstate::data_exception, "invalid vector aggregate state",
                              "Expected a one-dimensional double precision array without nulls.");
    *n = ARR_DIMS(state)[0];
    if (*n < 1)
        throw meridian::error(sqlstate::data_exception, "invalid vector aggregate state",
                              "The state array is empty.");
    return reinterpret_cast<double *>(ARR_DATA_PTR(state));
}

// A new state array of n zeroes.
ArrayType *new_state(int n) {
    Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * n));
    for (int i = 0; i < n; i++)
        elems[i] = Float8GetDatum(0.0);
    return construct_array(elems, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

// A state array that may be written: the argument itself inside an aggregate (the executor owns
// it), otherwise a copy.
ArrayType *writable_state(FunctionCallInfo fcinfo, int argno) {
    if (AggCheckCallContext(fcinfo, nullptr))
        return PG_GETARG_ARRAYTYPE_P(argno);
    return PG_GETARG_ARRAYTYPE_P_COPY(argno);
}

void check_state_dims(int have, int want) {
    if (have != want)
        throw meridian::error(sqlstate::data_exception,
                              "expected " + std::to_string(want) + " dimensions, not " + std::to_string(have));
}

}  // namespace

// vector_accum(double precision[], vector) -> double precision[]
MERIDIAN_SQL_FUNCTION(vector_accum) {
    return pg::guarded([&] {
        ArrayType *state = writable_state(fcinfo, 0);
        const Vector *v = datum_get_vector(PG_GETARG_DATUM(1));
        int n;
        double *s = state_values(state, &n);
        if (s[0] == 0.0 && n == 1) {
            // The initial {0}: the first vector fixes the dimensions.
            state = new_state(v->dim + 1);
            s = reinterpret_cast<double *>(ARR_DATA_PTR(state));
        } else {
            check_state_dims(v->dim, n - 1);
        }
        s[0] += 1.0;
        for (int i = 0; i < v->dim; i++)
            s[i + 1] += v->x[i];
        return PointerGetDatum(state);
    });
}

// vector_combine(double precision[], double precision[]) -> double precision[]
MERIDIAN_SQL_FUNCTION(vector_combine) {
    return pg::guarded([&] {
        ArrayType *a = writable_state(fcinfo, 0);
        ArrayType *b = PG_GETARG_ARRAYTYPE_P(1);
        int na, nb;
        double *sa = state_values(a, &na);
        const double *sb = state_values(b, &nb);
        if (sb[0] == 0.0)
            return PointerGetDatum(a);
        if (sa[0] == 0.0) {
            ArrayType *copy = new_state(nb);
            std::memcpy(ARR_DATA_PTR(copy), sb, sizeof(double) * nb);
            return PointerGetDatum(copy);
        }
        check_state_dims(nb - 1, na - 1);
        for (int i = 0; i < na; i++)
            sa[i] += sb[i];
        return PointerGetDatum(a);
    });
}

// vector_avg(double precision[]) -> vector; NULL when no row was accumulated.
MERIDIAN_SQL_FUNCTION(vector_avg) {
    return pg::guarded([&] {
        ArrayType *state = PG_GETARG_ARRAYTYPE_P(0);
        int n;
        const double *s = state_values(state, &n);
        if (s[0] == 0.0) {
            fcinfo->isnull = true;
            return Datum(0);
        }
        check_dim(n - 1);
        Vector *v = new_vector(n - 1);
        for (int i = 1; i < n; i++) {
            v->x[i - 1] = static_cast<float>(s[i] / s[0]);
            check_element(v->x[i - 1]);
        }
        return PointerGetDatum(v);
    });
}
