// Distance kernels: every kernel set this CPU can run against a double-precision oracle and the
// scalar reference, over many lengths (every tail), random data and unaligned pointers; the
// piecewise property of distance.hpp; cosine edge cases.
#include "core/distance.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace d = meridian::distance;

namespace {

std::vector<std::size_t> test_lengths() {
    std::vector<std::size_t> lengths;
    for (std::size_t n = 0; n <= 70; n++)
        lengths.push_back(n);
    for (std::size_t n : {127u, 128u, 129u, 784u, 1536u, 16000u})
        lengths.push_back(n);
    return lengths;
}

// Random floats with a few extra pad elements so the kernels can be fed unaligned pointers.
std::vector<float> random_floats(std::mt19937 &rng, std::size_t n, float lo = -2.0f, float hi = 2.0f) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n + 4);
    for (float &x : v)
        x = dist(rng);
    return v;
}

// Exact-ish oracle values in double, and the magnitude a float sum of the terms may err by.
struct oracle {
    double value;
    double magnitude;  // sum of |term|: float summation error is bounded by ~n * eps * magnitude
};

oracle oracle_l2(const float *a, const float *b, std::size_t n) {
    double s = 0;
    for (std::size_t i = 0; i < n; i++) {
        double dd = static_cast<double>(a[i]) - b[i];
        s += dd * dd;
    }
    return {s, s};
}

oracle oracle_ip(const float *a, const float *b, std::size_t n) {
    double s = 0, m = 0;
    for (std::size_t i = 0; i < n; i++) {
        double t = static_cast<double>(a[i]) * b[i];
        s += t;
        m += std::fabs(t);
    }
    return {s, m};
}

oracle oracle_l1(const float *a, const float *b, std::size_t n) {
    double s = 0;
    for (std::size_t i = 0; i < n; i++)
        s += std::fabs(static_cast<double>(a[i]) - b[i]);
    return {s, s};
}

oracle oracle_norm(const float *a, std::size_t n) {
    double s = 0;
    for (std::size_t i = 0; i < n; i++)
        s += static_cast<double>(a[i]) * a[i];
    return {s, s};
}

// Tolerance for a float result of n terms: relative to the magnitude of the terms.
double tolerance(const oracle &o, std::size_t n) {
    return 4e-7 * (std::sqrt(static_cast<double>(n)) + 8.0) * o.magnitude + 1e-30;
}

}  // namespace

TEST(Distance, ScalarIsAlwaysAvailableAndFirst) {
    std::size_t count = 0;
    const d::kernels *sets = d::available(&count);
    ASSERT_GE(count, 1u);
    EXPECT_STREQ(sets[0].isa, "scalar");
    EXPECT_EQ(sets[0].l2_squared, &d::scalar::l2_squared);
    // The active set is one of the available ones.
    bool found = false;
    for (std::size_t i = 0; i < count; i++)
        found = found || std::string(sets[i].isa) == d::active.isa;
    EXPECT_TRUE(found) << d::active.isa;
}

TEST(Distance, ActiveHonoursForcedIsa) {
    // MERIDIAN_SIMD is read once at load; if it names (in any case) a runnable ISA, that one is used.
    const char *want = std::getenv("MERIDIAN_SIMD");
    std::size_t count = 0;
    const d::kernels *sets = d::available(&count);
    bool runnable = false;
    for (std::size_t i = 0; want && i < count; i++)
        runnable = runnable || strcasecmp(sets[i].isa, want) == 0;
    if (runnable)
        EXPECT_STRCASEEQ(d::active.isa, want);
    else
        EXPECT_STREQ(d::active.isa, sets[count - 1].isa);  // the best one
}

TEST(Distance, EveryKernelSetMatchesOracleAndScalar) {
    std::mt19937 rng(12345);
    std::size_t count = 0;
    const d::kernels *sets = d::available(&count);
    for (std::size_t n : test_lengths()) {
        for (std::size_t offset : {0u, 1u, 3u}) {  // unaligned starts
            std::vector<float> va = random_floats(rng, n), vb = random_floats(rng, n);
            const float *a = va.data() + offset, *b = vb.data() + offset;
            oracle l2 = oracle_l2(a, b, n), ip = oracle_ip(a, b, n), l1 = oracle_l1(a, b, n), nrm = oracle_norm(a, n);
            float ref_l2 = d::scalar::l2_squared(a, b, n), ref_ip = d::scalar::inner_product(a, b, n);
            float ref_l1 = d::scalar::l1(a, b, n), ref_nrm = d::scalar::norm_squared(a, n);
            for (std::size_t s = 0; s < count; s++) {
                const d::kernels &k = sets[s];
                SCOPED_TRACE(std::string(k.isa) + " n=" + std::to_string(n) + " offset=" + std::to_string(offset));
                float r_l2 = k.l2_squared(a, b, n), r_ip = k.inner_product(a, b, n);
                float r_l1 = k.l1(a, b, n), r_nrm = k.norm_squared(a, n);
                EXPECT_NEAR(r_l2, l2.value, tolerance(l2, n));
                EXPECT_NEAR(r_ip, ip.value, tolerance(ip, n));
                EXPECT_NEAR(r_l1, l1.value, tolerance(l1, n));
                EXPECT_NEAR(r_nrm, nrm.value, tolerance(nrm, n));
                // Against the scalar reference: both err by at most the tolerance from the oracle.
                EXPECT_NEAR(r_l2, ref_l2, 2 * tolerance(l2, n));
                EXPECT_NEAR(r_ip, ref_ip, 2 * tolerance(ip, n));
                EXPECT_NEAR(r_l1, ref_l1, 2 * tolerance(l1, n));
                EXPECT_NEAR(r_nrm, ref_nrm, 2 * tolerance(nrm, n));
                if (n == 0) {
                    EXPECT_EQ(r_l2, 0.0f);
                    EXPECT_EQ(r_ip, 0.0f);
                    EXPECT_EQ(r_l1, 0.0f);
                    EXPECT_EQ(r_nrm, 0.0f);
                }
            }
        }
    }
}

TEST(Distance, SmallIntegersAreExactInEverySet) {
    // Sums of small integers are exact in float whatever the order of summation.
    std::size_t count = 0;
    const d::kernels *sets = d::available(&count);
    for (std::size_t n : test_lengths()) {
        std::vector<float> a(n), b(n);
        double l2 = 0, ip = 0, l1 = 0, nrm = 0;
        for (std::size_t i = 0; i < n; i++) {
            a[i] = static_cast<float>(static_cast<int>(i % 7) - 3);
            b[i] = static_cast<float>(static_cast<int>(i % 5) - 2);
            l2 += (a[i] - b[i]) * (a[i] - b[i]);
            ip += a[i] * b[i];
            l1 += std::fabs(a[i] - b[i]);
            nrm += a[i] * a[i];
        }
        for (std::size_t s = 0; s < count; s++) {
            SCOPED_TRACE(std::string(sets[s].isa) + " n=" + std::to_string(n));
            EXPECT_EQ(sets[s].l2_squared(a.data(), b.data(), n), l2);
            EXPECT_EQ(sets[s].inner_product(a.data(), b.data(), n), ip);
            EXPECT_EQ(sets[s].l1(a.data(), b.data(), n), l1);
            EXPECT_EQ(sets[s].norm_squared(a.data(), n), nrm);
        }
    }
}

TEST(Distance, TailsReadNothingPastTheEnd) {
    // Elements past n are NaN: any kernel that reads them returns NaN.
    std::size_t count = 0;
    const d::kernels *sets = d::available(&count);
    for (std::size_t n = 0; n <= 70; n++) {
        std::vector<float> a(n + 64, std::nanf("")), b(n + 64, std::nanf(""));
        for (std::size_t i = 0; i < n; i++) {
            a[i] = 1.0f;
            b[i] = 2.0f;
        }
        for (std::size_t s = 0; s < count; s++) {
            SCOPED_TRACE(std::string(sets[s].isa) + " n=" + std::to_string(n));
            EXPECT_EQ(sets[s].l2_squared(a.data(), b.data(), n), static_cast<float>(n));
            EXPECT_EQ(sets[s].inner_product(a.data(), b.data(), n), 2.0f * n);
            EXPECT_EQ(sets[s].l1(a.data(), b.data(), n), static_cast<float>(n));
            EXPECT_EQ(sets[s].norm_squared(a.data(), n), static_cast<float>(n));
        }
    }
}

TEST(Distance, TailsNeverTouchTheNextPage) {
    // Vectors that end exactly where an inaccessible page begins: a kernel that loads past a + n
    // (or b + n) faults.
    long page = sysconf(_SC_PAGESIZE);
    ASSERT_GT(page, 0);
    std::size_t bytes = 2 * static_cast<std::size_t>(page);
    void *mem = mmap(nullptr, 2 * bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mem, MAP_FAILED);
    char *base = static_cast<char *>(mem);
    ASSERT_EQ(mprotect(base + page, page, PROT_NONE), 0);
    ASSERT_EQ(mprotect(base + bytes + page, page, PROT_NONE), 0);
    float *a_end = reinterpret_cast<float *>(base + page);
    float *b_end = reinterpret_cast<float *>(base + bytes + page);
    std::size_t count = 0;
    const d::kernels *sets = d::available(&count);
    for (std::size_t n = 0; n <= 70; n++) {
        float *a = a_end - n, *b = b_end - n;
        for (std::size_t i = 0; i < n; i++) {
            a[i] = 1.0f;
            b[i] = 3.0f;
        }
        for (std::size_t s = 0; s < count; s++) {
            SCOPED_TRACE(std::string(sets[s].isa) + " n=" + std::to_string(n));
            EXPECT_EQ(sets[s].l2_squared(a, b, n), 4.0f * n);
            EXPECT_EQ(sets[s].inner_product(a, b, n), 3.0f * n);
            EXPECT_EQ(sets[s].l1(a, b, n), 2.0f * n);
            EXPECT_EQ(sets[s].norm_squared(b, n), 9.0f * n);
        }
    }
    munmap(mem, 2 * bytes);
}

TEST(Distance, PiecewiseSumsMatchWhole) {
    std::mt19937 rng(777);
    std::size_t count = 0;
    const d::kernels *sets = d::available(&count);
    for (std::size_t n : {1u, 17u, 63u, 784u, 1536u}) {
        std::vector<float> va = random_floats(rng, n), vb = random_floats(rng, n);
        const float *a = va.data(), *b = vb.data();
        oracle l2 = oracle_l2(a, b, n), ip = oracle_ip(a, b, n), l1 = oracle_l1(a, b, n), nrm = oracle_norm(a, n);
        for (std::size_t k : {std::size_t{0}, std::size_t{1}, n / 3, n / 2, n - 1, n}) {
            for (std::size_t s = 0; s < count; s++) {
                const d::kernels &f = sets[s];
                SCOPED_TRACE(std::string(f.isa) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
                EXPECT_NEAR(f.l2_squared(a, b, k) + f.l2_squared(a + k, b + k, n - k), f.l2_squared(a, b, n), 2 * tolerance(l2, n));
                EXPECT_NEAR(f.inner_product(a, b, k) + f.inner_product(a + k, b + k, n - k), f.inner_product(a, b, n),
                            2 * tolerance(ip, n));
                EXPECT_NEAR(f.l1(a, b, k) + f.l1(a + k, b + k, n - k), f.l1(a, b, n), 2 * tolerance(l1, n));
                EXPECT_NEAR(f.norm_squared(a, k) + f.norm_squared(a + k, n - k), f.norm_squared(a, n), 2 * tolerance(nrm, n));
            }
        }
    }
}

TEST(Distance, DispatchedWrappersUseActiveSet) {
    std::mt19937 rng(99);
    std::vector<float> a = random_floats(rng, 784), b = random_floats(rng, 784);
    EXPECT_EQ(d::l2_squared(a.data(), b.data(), 784), d::active.l2_squared(a.data(), b.data(), 784));
    EXPECT_EQ(d::inner_product(a.data(), b.data(), 784), d::active.inner_product(a.data(), b.data(), 784));
    EXPECT_EQ(d::l1(a.data(), b.data(), 784), d::active.l1(a.data(), b.data(), 784));
    EXPECT_EQ(d::norm_squared(a.data(), 784), d::active.norm_squared(a.data(), 784));
}

TEST(Distance, CosineMatchesOracle) {
    std::mt19937 rng(4242);
    for (std::size_t n : {1u, 3u, 16u, 33u, 784u, 1536u, 16000u}) {
        std::vector<float> va = random_floats(rng, n), vb = random_floats(rng, n);
        const float *a = va.data(), *b = vb.data();
        double dot = oracle_ip(a, b, n).value, na = oracle_norm(a, n).value, nb = oracle_norm(b, n).value;
        double expected = 1.0 - dot / std::sqrt(na * nb);
        EXPECT_NEAR(d::cosine_distance(a, b, n), expected, 1e-5) << "n=" << n;
    }
}

TEST(Distance, CosineEdgeCases) {
    const float x[] = {1.0f, 2.0f, 3.0f};
    const float neg[] = {-1.0f, -2.0f, -3.0f};
    const float scaled[] = {2.0f, 4.0f, 6.0f};
    const float ortho[] = {3.0f, 0.0f, -1.0f};
    const float zero[] = {0.0f, 0.0f, 0.0f};
    EXPECT_EQ(d::cosine_distance(x, x, 3), 0.0f);       // identical: exactly 0 (clamped)
    EXPECT_EQ(d::cosine_distance(x, scaled, 3), 0.0f);  // parallel
    EXPECT_EQ(d::cosine_distance(x, neg, 3), 2.0f);     // opposite: exactly 2 (clamped)
    EXPECT_FLOAT_EQ(d::cosine_distance(x, ortho, 3), 1.0f);
    EXPECT_TRUE(std::isnan(d::cosine_distance(x, zero, 3)));
    EXPECT_TRUE(std::isnan(d::cosine_distance(zero, x, 3)));
    EXPECT_TRUE(std::isnan(d::cosine_distance(zero, zero, 3)));
    EXPECT_TRUE(std::isnan(d::cosine_distance(x, x, 0)));  // empty: both norms zero
    // Never outside [0, 2], even with rounding on long nearly-parallel vectors.
    std::mt19937 rng(5);
    for (int t = 0; t < 200; t++) {
        std::vector<float> a = random_floats(rng, 1000);
        std::vector<float> b(a);
        for (float &v : b)
            v *= 3.0f;
        float c = d::cosine_distance(a.data(), b.data(), 1000);
        EXPECT_GE(c, 0.0f);
        EXPECT_LE(c, 2.0f);
        for (float &v : b)
            v = -v;
        c = d::cosine_distance(a.data(), b.data(), 1000);
        EXPECT_GE(c, 0.0f);
        EXPECT_LE(c, 2.0f);
    }
}
