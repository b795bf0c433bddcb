// SHA-1 following FIPS 180-4: padding (5.1.1), initial hash value (5.3.1), the functions and
// constants of 4.1.1 / 4.2.1 and the hash computation of 6.1.2. Byte order is explicit (the
// message is big-endian 32-bit words), so the result does not depend on the host.
#include "core/sha1.hpp"

#include <cstring>

namespace meridian::sha1 {

namespace {

inline std::uint32_t rotl(std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

inline std::uint32_t load_be32(const std::uint8_t *p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | std::uint32_t(p[3]);
}

inline void store_be32(std::uint8_t *p, std::uint32_t v) {
    p[0] = std::uint8_t(v >> 24);
    p[1] = std::uint8_t(v >> 16);
    p[2] = std::uint8_t(v >> 8);
    p[3] = std::uint8_t(v);
}

}  // namespace

hasher::hasher() noexcept : h_{0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u} {}

void hasher::compress(const std::uint8_t *block) noexcept {
    // Message schedule W_0..W_79.
    std::uint32_t w[80];
    for (int t = 0; t < 16; t++)
        w[t] = load_be32(block + 4 * t);
    for (int t = 16; t < 80; t++)
        w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);

    std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4];
    for (int t = 0; t < 80; t++) {
        std::uint32_t f, k;
        if (t < 20) {
            f = (b & c) ^ (~b & d);           // Ch
            k = 0x5a827999u;
        } else if (t < 40) {
            f = b ^ c ^ d;                    // Parity
            k = 0x6ed9eba1u;
        } else if (t < 60) {
            f = (b & c) ^ (b & d) ^ (c & d);  // Maj
            k = 0x8f1bbcdcu;
        } else {
            f = b ^ c ^ d;                    // Parity
            k = 0xca62c1d6u;
        }
        std::uint32_t temp = rotl(a, 5) + f + e + k + w[t];
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = temp;
    }
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
}

void hasher::update(const void *data, std::size_t len) noexcept {
    const std::uint8_t *p = static_cast<const std::uint8_t *>(data);
    total_ += len;
    if (used_ > 0) {
        std::size_t take = len < 64 - used_ ? len : 64 - used_;
        std::memcpy(block_ + used_, p, take);
        used_ += take;
        p += take;
        len -= take;
        if (used_ < 64)
            return;
        compress(block_);
        used_ = 0;
    }
    while (len >= 64) {
        compress(p);
        p += 64;
        len -= 64;
    }
    if (len > 0) {
        std::memcpy(block_, p, len);
        used_ = len;
    }
}

digest hasher::finish() noexcept {
    // Padding: a 1 bit, zeros up to 56 mod 64 bytes, then the length in bits as a 64-bit
    // big-endian integer.
    std::uint64_t bits = total_ * 8;
    block_[used_++] = 0x80;
    if (used_ > 56) {
        std::memset(block_ + used_, 0, 64 - used_);
        compress(block_);
        used_ = 0;
    }
    std::memset(block_ + used_, 0, 56 - used_);
    store_be32(block_ + 56, std::uint32_t(bits >> 32));
    store_be32(block_ + 60, std::uint32_t(bits));
    compress(block_);
    used_ = 0;

    digest out;
    for (int i = 0; i < 5; i++)
        store_be32(out.data() + 4 * i, h_[i]);
    return out;
}

digest hash(const void *data, std::size_t len) noexcept {
    hasher h;
    h.update(data, len);
    return h.finish();
}

}  // namespace meridian::sha1
