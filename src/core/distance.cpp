// Distance kernels: a scalar reference and AVX2+FMA / AVX-512F versions, chosen once at load time.
//
// The SIMD versions are compiled per function with __attribute__((target(...))), so the library
// needs no global -march flag and still runs on CPUs without AVX: a SIMD function is only ever
// called after __builtin_cpu_supports() said the CPU (and OS) can run it.
//
// Every kernel keeps four independent accumulators so that consecutive fused multiply-adds do not
// wait on each other's latency, loads unaligned data, and finishes the tail (n not a multiple of
// the vector width) with masked loads, which never touch memory past a + n.
#include "core/distance.hpp"

#include <immintrin.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <strings.h>

namespace meridian::distance {

// ---------------------------------------------------------------------------------------------
// Scalar reference. Four accumulators as well: it is the fallback on CPUs without AVX2, and the
// separate partial sums let the compiler overlap the additions.
namespace scalar {

float l2_squared(const float *a, const float *b, std::size_t n) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1], d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

float inner_product(const float *a, const float *b, std::size_t n) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

float l1(const float *a, const float *b, std::size_t n) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += std::fabs(a[i] - b[i]);
        s1 += std::fabs(a[i + 1] - b[i + 1]);
        s2 += std::fabs(a[i + 2] - b[i + 2]);
        s3 += std::fabs(a[i + 3] - b[i + 3]);
    }
    for (; i < n; i++)
        s0 += std::fabs(a[i] - b[i]);
    return (s0 + s1) + (s2 + s3);
}

float norm_squared(const float *a, std::size_t n) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * a[i];
        s1 += a[i + 1] * a[i + 1];
        s2 += a[i + 2] * a[i + 2];
        s3 += a[i + 3] * a[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * a[i];
    return (s0 + s1) + (s2 + s3);
}

}  // namespace scalar

namespace {

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA: 8 floats per register, 32 per iteration of the main loop.
#define MERIDIAN_AVX2 __attribute__((target("avx2,fma")))

MERIDIAN_AVX2 inline float hsum256(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 hi = _mm_movehl_ps(lo, lo);
    lo = _mm_add_ps(lo, hi);
    hi = _mm_movehdup_ps(lo);
    return _mm_cvtss_f32(_mm_add_ss(lo, hi));
}

// Lane mask selecting the first r (0 < r < 8) lanes, for _mm256_maskload_ps (which does not fault
// on masked-out lanes).
MERIDIAN_AVX2 inline __m256i tail_mask256(std::size_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(r)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

MERIDIAN_AVX2 float l2_squared_avx2(const float *a, const float *b, std::size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __m256i m = tail_mask256(n - i);
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
        s1 = _mm256_fmadd_ps(d, d, s1);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

MERIDIAN_AVX2 float inner_product_avx2(const float *a, const float *b, std::size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) {
        __m256i m = tail_mask256(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

MERIDIAN_AVX2 float l1_avx2(const float *a, const float *b, std::size_t n) {
    // |x| = x with the sign bit cleared.
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_and_ps(abs_mask, _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))));
        s1 = _mm256_add_ps(s1, _mm256_and_ps(abs_mask, _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8))));
        s2 = _mm256_add_ps(s2, _mm256_and_ps(abs_mask, _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16))));
        s3 = _mm256_add_ps(s3, _mm256_and_ps(abs_mask, _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24))));
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_add_ps(s0, _mm256_and_ps(abs_mask, _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))));
    if (i < n) {
        __m256i m = tail_mask256(n - i);
        s1 = _mm256_add_ps(s1, _mm256_and_ps(abs_mask, _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m))));
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

MERIDIAN_AVX2 float norm_squared_avx2(const float *a, std::size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 x0 = _mm256_loadu_ps(a + i), x1 = _mm256_loadu_ps(a + i + 8);
        __m256 x2 = _mm256_loadu_ps(a + i + 16), x3 = _mm256_loadu_ps(a + i + 24);
        s0 = _mm256_fmadd_ps(x0, x0, s0);
        s1 = _mm256_fmadd_ps(x1, x1, s1);
        s2 = _mm256_fmadd_ps(x2, x2, s2);
        s3 = _mm256_fmadd_ps(x3, x3, s3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(a + i);
        s0 = _mm256_fmadd_ps(x, x, s0);
    }
    if (i < n) {
        __m256 x = _mm256_maskload_ps(a + i, tail_mask256(n - i));
        s1 = _mm256_fmadd_ps(x, x, s1);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

#undef MERIDIAN_AVX2

// ---------------------------------------------------------------------------------------------
// AVX-512F: 16 floats per register, 64 per iteration of the main loop. The tail is one masked
// iteration (masked-out lanes are neither loaded nor faulted on).
#define MERIDIAN_AVX512 __attribute__((target("avx512f")))

// Horizontal sum with AVX-512F and SSE only (_mm512_reduce_add_ps trips a GCC 12 false
// "uninitialized" warning).
MERIDIAN_AVX512 inline float hsum512(__m512 v) {
    v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, 0x4e));  // + the other 256-bit half
    v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, 0xb1));  // + the neighbouring 128-bit lane
    __m128 x = _mm512_maskz_extractf32x4_ps(0xf, v, 0);
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

MERIDIAN_AVX512 inline __mmask16 tail_mask512(std::size_t r) {
    return static_cast<__mmask16>((1u << r) - 1u);
}

MERIDIAN_AVX512 float l2_squared_avx512(const float *a, const float *b, std::size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __mmask16 m = tail_mask512(n - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return hsum512(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

MERIDIAN_AVX512 float inner_product_avx512(const float *a, const float *b, std::size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = tail_mask512(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return hsum512(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

MERIDIAN_AVX512 inline __m512 abs512(__m512 x) {
    // AVX512F has no _mm512_abs_ps without AVX512DQ-style and_ps; clear the sign bit on integers.
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}

MERIDIAN_AVX512 float l1_avx512(const float *a, const float *b, std::size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_add_ps(s0, abs512(_mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))));
        s1 = _mm512_add_ps(s1, abs512(_mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16))));
        s2 = _mm512_add_ps(s2, abs512(_mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32))));
        s3 = _mm512_add_ps(s3, abs512(_mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48))));
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_add_ps(s0, abs512(_mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))));
    if (i < n) {
        __mmask16 m = tail_mask512(n - i);
        s1 = _mm512_add_ps(s1, abs512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i))));
    }
    return hsum512(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

MERIDIAN_AVX512 float norm_squared_avx512(const float *a, std::size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 x0 = _mm512_loadu_ps(a + i), x1 = _mm512_loadu_ps(a + i + 16);
        __m512 x2 = _mm512_loadu_ps(a + i + 32), x3 = _mm512_loadu_ps(a + i + 48);
        s0 = _mm512_fmadd_ps(x0, x0, s0);
        s1 = _mm512_fmadd_ps(x1, x1, s1);
        s2 = _mm512_fmadd_ps(x2, x2, s2);
        s3 = _mm512_fmadd_ps(x3, x3, s3);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(a + i);
        s0 = _mm512_fmadd_ps(x, x, s0);
    }
    if (i < n) {
        __m512 x = _mm512_maskz_loadu_ps(tail_mask512(n - i), a + i);
        s1 = _mm512_fmadd_ps(x, x, s1);
    }
    return hsum512(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

#undef MERIDIAN_AVX512

// ---------------------------------------------------------------------------------------------
// Dispatch.

constexpr kernels scalar_set{scalar::l2_squared, scalar::inner_product, scalar::l1, scalar::norm_squared, "scalar"};
constexpr kernels avx2_set{l2_squared_avx2, inner_product_avx2, l1_avx2, norm_squared_avx2, "avx2"};
constexpr kernels avx512_set{l2_squared_avx512, inner_product_avx512, l1_avx512, norm_squared_avx512, "avx512"};

bool cpu_has_avx2() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

bool cpu_has_avx512() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

// The kernel sets this CPU can run, scalar first, best last.
struct catalog {
    kernels sets[3];
    std::size_t count;
};

catalog make_catalog() {
    catalog c{{scalar_set, scalar_set, scalar_set}, 1};
    if (cpu_has_avx2())
        c.sets[c.count++] = avx2_set;
    if (cpu_has_avx512())
        c.sets[c.count++] = avx512_set;
    return c;
}

const catalog &the_catalog() {
    static const catalog c = make_catalog();
    return c;
}

// The best set, or the one MERIDIAN_SIMD names (any case) if this CPU can run it; an unknown or
// unrunnable request is ignored.
kernels choose() {
    const catalog &c = the_catalog();
    const char *want = std::getenv("MERIDIAN_SIMD");
    if (want != nullptr && *want != '\0') {
        for (std::size_t i = 0; i < c.count; i++)
            if (strcasecmp(c.sets[i].isa, want) == 0)
                return c.sets[i];
    }
    return c.sets[c.count - 1];
}

// Constant-initialised to the scalar set, so `active` is usable even from another translation
// unit's static initialiser; the dynamic initialiser below then installs the best set.
kernels active_set = scalar_set;

struct installer {
    installer() { active_set = choose(); }
} install_best;

}  // namespace

const kernels &active = active_set;

const kernels *available(std::size_t *count) {
    const catalog &c = the_catalog();
    if (count != nullptr)
        *count = c.count;
    return c.sets;
}

float cosine_distance(const float *a, const float *b, std::size_t n) {
    double dot = active.inner_product(a, b, n);
    double norms = static_cast<double>(active.norm_squared(a, n)) * static_cast<double>(active.norm_squared(b, n));
    double similarity = dot / std::sqrt(norms);  // 0/0 = NaN when a norm is zero
    if (std::isnan(similarity))
        return std::nanf("");
    if (similarity > 1.0)
        similarity = 1.0;
    else if (similarity < -1.0)
        similarity = -1.0;
    return static_cast<float>(1.0 - similarity);
}

}  // namespace meridian::distance
