// UUIDv5 (RFC 9562 section 5.5) and the canonical vector encoding behind meridian.vector_id.
#include "core/uuid.hpp"

#include "core/sha1.hpp"

#include <cstring>

namespace meridian::uuid {

namespace {

bytes finish_v5(sha1::hasher &h) noexcept {
    sha1::digest d = h.finish();
    bytes u;
    std::memcpy(u.data(), d.data(), u.size());
    u[6] = static_cast<std::uint8_t>((u[6] & 0x0f) | 0x50);  // version 5
    u[8] = static_cast<std::uint8_t>((u[8] & 0x3f) | 0x80);  // variant 10xx (RFC 4122 / 9562)
    return u;
}

inline void put_le32(std::uint8_t *p, std::uint32_t v) noexcept {
    p[0] = std::uint8_t(v);
    p[1] = std::uint8_t(v >> 8);
    p[2] = std::uint8_t(v >> 16);
    p[3] = std::uint8_t(v >> 24);
}

// The IEEE 754 binary32 bit pattern of an element, -0.0 replaced by +0.0.
inline std::uint32_t canonical_bits(float f) noexcept {
    static_assert(sizeof(float) == 4, "float must be IEEE 754 binary32");
    std::uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    return bits == 0x80000000u ? 0u : bits;
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

}  // namespace

bytes v5(const bytes &ns, const void *name, std::size_t len) noexcept {
    sha1::hasher h;
    h.update(ns.data(), ns.size());
    h.update(name, len);
    return finish_v5(h);
}

std::vector<std::uint8_t> canonical_vector_bytes(const float *x, std::uint32_t dim) {
    std::vector<std::uint8_t> out(4 + 4 * static_cast<std::size_t>(dim));
    put_le32(out.data(), dim);
    for (std::uint32_t i = 0; i < dim; i++)
        put_le32(out.data() + 4 + 4 * static_cast<std::size_t>(i), canonical_bits(x[i]));
    return out;
}

bytes vector_id(const bytes &ns, const float *x, std::uint32_t dim) noexcept {
    sha1::hasher h;
    h.update(ns.data(), ns.size());
    std::uint8_t buf[256];  // 64 elements per update
    put_le32(buf, dim);
    h.update(buf, 4);
    std::uint32_t i = 0;
    while (i < dim) {
        std::uint32_t n = dim - i < 64 ? dim - i : 64;
        for (std::uint32_t j = 0; j < n; j++)
            put_le32(buf + 4 * j, canonical_bits(x[i + j]));
        h.update(buf, 4 * static_cast<std::size_t>(n));
        i += n;
    }
    return finish_v5(h);
}

std::string to_string(const bytes &u) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(36);
    for (std::size_t i = 0; i < u.size(); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            s.push_back('-');
        s.push_back(digits[u[i] >> 4]);
        s.push_back(digits[u[i] & 0x0f]);
    }
    return s;
}

std::optional<bytes> parse(std::string_view text) noexcept {
    if (text.size() != 36)
        return std::nullopt;
    bytes u;
    std::size_t pos = 0;
    for (std::size_t i = 0; i < u.size(); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            if (text[pos] != '-')
                return std::nullopt;
            pos++;
        }
        int hi = hex_value(text[pos]), lo = hex_value(text[pos + 1]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        u[i] = static_cast<std::uint8_t>(hi << 4 | lo);
        pos += 2;
    }
    return u;
}

}  // namespace meridian::uuid
