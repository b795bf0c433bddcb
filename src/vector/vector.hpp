// The on-disk and in-memory form of the `vector` type, identical to pgvector's so that dumps,
// binary COPY and drivers interoperate: varlena header, int16 dimension count, int16 unused (0),
// then dim float4 values.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "port/pg_bswap.h"
}

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace meridian::vec {

constexpr int max_dim = 16000;

struct Vector {
    int32 vl_len_;  // varlena header (do not touch directly)
    int16 dim;      // number of dimensions
    int16 unused;   // always 0
    float x[FLEXIBLE_ARRAY_MEMBER];
};

inline std::size_t vector_size(int dim) { return offsetof(Vector, x) + sizeof(float) * static_cast<std::size_t>(dim); }

// Detoasted vector from a Datum (may palloc in the current memory context).
inline Vector *datum_get_vector(Datum d) { return reinterpret_cast<Vector *>(PG_DETOAST_DATUM(d)); }

// A zeroed vector of dim dimensions, palloc'd in the current memory context.
inline Vector *new_vector(int dim) {
    std::size_t size = vector_size(dim);
    Vector *v = static_cast<Vector *>(palloc0(size));
    SET_VARSIZE(v, size);
    v->dim = static_cast<int16>(dim);
    return v;
}

// The binary (send/recv) form: int16 dim, int16 unused, then each float4, all in network byte
// order; binary_size(dim) bytes written to out in one pass (vector_send, and the output plugin,
// which writes vectors without a send-function call per value).
inline std::size_t binary_size(int dim) { return 4 + sizeof(float) * static_cast<std::size_t>(dim < 0 ? 0 : dim); }
inline void write_binary(const Vector *v, std::uint8_t *out) {
    std::uint16_t head[2] = {pg_hton16(static_cast<std::uint16_t>(v->dim)), pg_hton16(static_cast<std::uint16_t>(v->unused))};
    std::memcpy(out, head, sizeof head);
    for (int i = 0; i < v->dim; i++) {
        std::uint32_t bits;
        std::memcpy(&bits, &v->x[i], sizeof bits);
        bits = pg_hton32(bits);
        std::memcpy(out + 4 + sizeof(float) * static_cast<std::size_t>(i), &bits, sizeof bits);
    }
}

}  // namespace meridian::vec
