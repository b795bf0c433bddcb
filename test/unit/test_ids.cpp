// Unit tests of src/core/sha1 and src/core/uuid: FIPS 180-4 / NIST SHA-1 vectors, the RFC 9562
// UUIDv5 example, the canonical vector encoding of meridian.vector_id and its fixed namespace.
#include "core/sha1.hpp"
#include "core/uuid.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace meridian;

namespace {

std::string hex(const std::uint8_t *p, std::size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < n; i++) {
        s.push_back(digits[p[i] >> 4]);
        s.push_back(digits[p[i] & 15]);
    }
    return s;
}

std::string sha1_hex(const std::string &m) {
    sha1::digest d = sha1::hash(m.data(), m.size());
    return hex(d.data(), d.size());
}

uuid::bytes must_parse(const char *text) {
    auto u = uuid::parse(text);
    EXPECT_TRUE(u.has_value()) << text;
    return u.value_or(uuid::bytes{});
}

}  // namespace

// ------------------------------------------------------------------------------------- SHA-1

TEST(Sha1, NistShortMessages) {
    EXPECT_EQ(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    EXPECT_EQ(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    // The 448-bit message: its padding needs a second block.
    EXPECT_EQ(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    // The 896-bit message.
    EXPECT_EQ(sha1_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
              "a49b2446a02c645bf419f995b67091253a04a259");
}

TEST(Sha1, OneMillionA) {
    std::string m(1000000, 'a');
    EXPECT_EQ(sha1_hex(m), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    // The same message fed in pieces that straddle block boundaries in every way.
    sha1::hasher h;
    std::size_t pos = 0, step = 1;
    while (pos < m.size()) {
        std::size_t n = std::min(step, m.size() - pos);
        h.update(m.data() + pos, n);
        pos += n;
        step = step % 131 + 7;
    }
    sha1::digest d = h.finish();
    EXPECT_EQ(hex(d.data(), d.size()), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST(Sha1, IncrementalEqualsOneShotAtEveryLength) {
    // Lengths 0..200 cover the padding cases (55, 56, 63, 64, 119, 120 bytes ...).
    std::string m;
    for (int i = 0; i < 200; i++)
        m.push_back(static_cast<char>(i * 37 + 11));
    for (std::size_t len = 0; len <= m.size(); len++) {
        sha1::digest whole = sha1::hash(m.data(), len);
        for (std::size_t split : {std::size_t(0), len / 3, len / 2, len}) {
            sha1::hasher h;
            h.update(m.data(), split);
            h.update(m.data() + split, len - split);
            EXPECT_EQ(h.finish(), whole) << "len " << len << " split " << split;
        }
    }
}

// ---------------------------------------------------------------------------------- UUIDv5

TEST(Uuid, ParseAndFormat) {
    auto u = uuid::parse("6BA7B810-9dad-11d1-80b4-00c04fd430c8");
    ASSERT_TRUE(u);
    EXPECT_EQ(uuid::to_string(*u), "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
    EXPECT_EQ((*u)[0], 0x6b);
    EXPECT_EQ((*u)[15], 0xc8);
    EXPECT_FALSE(uuid::parse("6ba7b810-9dad-11d1-80b4-00c04fd430c"));
    EXPECT_FALSE(uuid::parse("6ba7b810x9dad-11d1-80b4-00c04fd430c8"));
    EXPECT_FALSE(uuid::parse("6ba7b810-9dad-11d1-80b4-00c04fd430cg"));
}

TEST(Uuid, Rfc9562Example) {
    // RFC 9562 appendix A.4: namespace DNS, name "www.example.com".
    uuid::bytes dns = must_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
    EXPECT_EQ(uuid::to_string(uuid::v5(dns, "www.example.com")), "2ed6657d-e927-568b-95e1-2665a8aea6a2");
}

TEST(Uuid, VersionAndVariantBits) {
    uuid::bytes ns = must_parse("6ba7b811-9dad-11d1-80b4-00c04fd430c8");  // URL namespace
    for (int i = 0; i < 500; i++) {
        uuid::bytes u = uuid::v5(ns, "name " + std::to_string(i));
        EXPECT_EQ(u[6] >> 4, 5);
        EXPECT_EQ(u[8] >> 6, 2);
    }
}

TEST(Uuid, IsSha1OfNamespaceThenName) {
    // Byte for byte: the first 16 bytes of SHA-1(ns || name), except the version and variant bits.
    uuid::bytes ns = must_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
    std::string name = "some name";
    std::string all(reinterpret_cast<const char *>(ns.data()), ns.size());
    all += name;
    sha1::digest d = sha1::hash(all.data(), all.size());
    uuid::bytes u = uuid::v5(ns, name);
    for (int i = 0; i < 16; i++) {
        std::uint8_t mask = i == 6 ? 0x0f : i == 8 ? 0x3f : 0xff;
        EXPECT_EQ(u[i] & mask, d[i] & mask) << "byte " << i;
    }
}

TEST(Uuid, BinaryNames) {
    uuid::bytes ns = must_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
    const std::uint8_t name[] = {0x00, 0xff, 0x80, 0x00};
    // A NUL inside the name is part of it.
    EXPECT_NE(uuid::v5(ns, name, 4), uuid::v5(ns, name, 1));
    EXPECT_EQ(uuid::v5(ns, name, 4), uuid::v5(ns, std::string_view(reinterpret_cast<const char *>(name), 4)));
}

// ------------------------------------------------------------------------------- vector ids

TEST(VectorId, FixedNamespace) {
    EXPECT_EQ(uuid::to_string(uuid::meridian_namespace), "f0630310-45a1-4419-af4e-294c5f495dad");
    EXPECT_EQ(uuid::parse("f0630310-45a1-4419-af4e-294c5f495dad"), uuid::meridian_namespace);
}

TEST(VectorId, CanonicalBytesAreLittleEndian) {
    const float x[] = {1.0f, -2.5f, 0.0f};
    std::vector<std::uint8_t> expected = {
        0x03, 0x00, 0x00, 0x00,  // dim 3, uint32 little-endian
        0x00, 0x00, 0x80, 0x3f,  // 1.0f  = 0x3f800000
        0x00, 0x00, 0x20, 0xc0,  // -2.5f = 0xc0200000
        0x00, 0x00, 0x00, 0x00,  // 0.0f
    };
    EXPECT_EQ(uuid::canonical_vector_bytes(x, 3), expected);

    // A dimension count above 255 uses the second byte.
    std::vector<float> big(300, 0.0f);
    std::vector<std::uint8_t> b = uuid::canonical_vector_bytes(big.data(), 300);
    ASSERT_EQ(b.size(), 4u + 4u * 300u);
    EXPECT_EQ(b[0], 0x2c);
    EXPECT_EQ(b[1], 0x01);
    EXPECT_EQ(b[2], 0x00);
    EXPECT_EQ(b[3], 0x00);
}

TEST(VectorId, NegativeZeroIsZero) {
    const float pos[] = {0.0f, 0.0f};
    const float neg[] = {0.0f, -0.0f};
    ASSERT_TRUE(std::signbit(neg[1]));
    EXPECT_EQ(uuid::canonical_vector_bytes(neg, 2), uuid::canonical_vector_bytes(pos, 2));
    EXPECT_EQ(uuid::vector_id(neg, 2), uuid::vector_id(pos, 2));
    // Only -0.0 is normalised: the smallest negative subnormal keeps its sign.
    const float tiny[] = {0.0f, -std::numeric_limits<float>::denorm_min()};
    EXPECT_NE(uuid::vector_id(tiny, 2), uuid::vector_id(pos, 2));
}

TEST(VectorId, IsV5OfCanonicalBytes) {
    // The streaming computation equals UUIDv5 over the materialised bytes, across its 64-element
    // chunks, in both namespaces.
    std::mt19937 rng(42);
    std::normal_distribution<float> normal;
    uuid::bytes other = must_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
    for (std::uint32_t dim : {1u, 2u, 3u, 63u, 64u, 65u, 128u, 129u, 784u, 16000u}) {
        std::vector<float> x(dim);
        for (float &f : x)
            f = normal(rng);
        std::vector<std::uint8_t> b = uuid::canonical_vector_bytes(x.data(), dim);
        EXPECT_EQ(uuid::vector_id(x.data(), dim), uuid::v5(uuid::meridian_namespace, b.data(), b.size())) << dim;
        EXPECT_EQ(uuid::vector_id(other, x.data(), dim), uuid::v5(other, b.data(), b.size())) << dim;
    }
}

TEST(VectorId, KnownValues) {
    // Computed independently (Python hashlib SHA-1 over the documented byte format); also in docs/ids.md.
    const float a[] = {1.0f, 2.0f, 3.0f};
    EXPECT_EQ(uuid::to_string(uuid::vector_id(a, 3)), "4a45d536-ce2c-59e3-b907-ad99bfb0dbb4");
    const float b[] = {0.0f, -0.0f};
    EXPECT_EQ(uuid::to_string(uuid::vector_id(b, 2)), "e1c9da3e-3d6d-597c-86ca-4e38daadaec6");
    const float c[] = {1.5f, -2.25f};
    EXPECT_EQ(uuid::to_string(uuid::vector_id(c, 2)), "f024d431-db56-5100-b00e-8bc60ec72ff6");
}

TEST(VectorId, DependsOnNamespaceDimAndValues) {
    const float a[] = {1.0f, 2.0f, 3.0f};
    const float b[] = {1.0f, 2.0f, 3.0000002f};
    uuid::bytes other = must_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
    EXPECT_NE(uuid::vector_id(a, 3), uuid::vector_id(other, a, 3));
    EXPECT_NE(uuid::vector_id(a, 3), uuid::vector_id(b, 3));
    EXPECT_NE(uuid::vector_id(a, 3), uuid::vector_id(a, 2));
}
