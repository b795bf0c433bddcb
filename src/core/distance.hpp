// Distance kernels over float32 arrays. Pure C++ (no PostgreSQL).
// Each kernel has a scalar reference (namespace scalar) and SIMD versions (AVX2+FMA, AVX-512F)
// selected once at load time from the CPU's features. Pointers need no alignment.
// Kernels are sums over dimensions, so a vector split in two pieces can be measured piecewise:
// f(a, b, n) == f(a, b, k) + f(a + k, b + k, n - k) up to float rounding.
#pragma once

#include <cstddef>

namespace meridian::distance {

using kernel_fn = float (*)(const float *a, const float *b, std::size_t n);
using unary_fn = float (*)(const float *a, std::size_t n);

struct kernels {
    kernel_fn l2_squared;     // sum (a-b)^2
    kernel_fn inner_product;  // sum a*b
    kernel_fn l1;             // sum |a-b|
    unary_fn norm_squared;    // sum a*a
    const char *isa;          // "avx512", "avx2" or "scalar"
};

// The dispatched kernels for this CPU (chosen once; may be forced with MERIDIAN_SIMD=scalar|avx2|avx512
// in the environment, for tests and benchmarks).
extern const kernels &active;

// Every kernel set this CPU can run, for tests: scalar always first.
const kernels *available(std::size_t *count);

namespace scalar {
float l2_squared(const float *a, const float *b, std::size_t n);
float inner_product(const float *a, const float *b, std::size_t n);
float l1(const float *a, const float *b, std::size_t n);
float norm_squared(const float *a, std::size_t n);
}  // namespace scalar

inline float l2_squared(const float *a, const float *b, std::size_t n) { return active.l2_squared(a, b, n); }
inline float inner_product(const float *a, const float *b, std::size_t n) { return active.inner_product(a, b, n); }
inline float l1(const float *a, const float *b, std::size_t n) { return active.l1(a, b, n); }
inline float norm_squared(const float *a, std::size_t n) { return active.norm_squared(a, n); }

// 1 - a.b / (|a| |b|), clamped to [0, 2]; NaN when either norm is zero (as pgvector).
float cosine_distance(const float *a, const float *b, std::size_t n);

}  // namespace meridian::distance
