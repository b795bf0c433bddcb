// Name-based UUIDs (RFC 9562 section 5.5, UUIDv5) and Meridian's deterministic vector ids.
// Pure C++ (no PostgreSQL headers); the SQL functions are in src/ids. Byte formats: docs/ids.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meridian::uuid {

// A UUID as its 16 bytes in network (big-endian, RFC) order, the same as PostgreSQL's pg_uuid_t.
using bytes = std::array<std::uint8_t, 16>;

// The namespace of meridian.vector_id(v): f0630310-45a1-4419-af4e-294c5f495dad. Fixed forever:
// changing it changes every id stored in every region.
inline constexpr bytes meridian_namespace = {0xf0, 0x63, 0x03, 0x10, 0x45, 0xa1, 0x44, 0x19,
                                             0xaf, 0x4e, 0x29, 0x4c, 0x5f, 0x49, 0x5d, 0xad};

// RFC 9562 5.5: SHA-1 over namespace bytes || name bytes, the first 16 bytes of the digest, the
// version field (high nibble of byte 6) set to 5, the variant (top two bits of byte 8) to 10.
bytes v5(const bytes &ns, const void *name, std::size_t len) noexcept;
inline bytes v5(const bytes &ns, std::string_view name) noexcept { return v5(ns, name.data(), name.size()); }

// The canonical bytes of a vector that vector_id hashes: dim as a 4-byte little-endian unsigned
// integer, then each element as a little-endian IEEE 754 binary32, -0.0 written as +0.0.
std::vector<std::uint8_t> canonical_vector_bytes(const float *x, std::uint32_t dim);

// v5(ns, canonical_vector_bytes(x, dim)), computed without materialising the bytes.
bytes vector_id(const bytes &ns, const float *x, std::uint32_t dim) noexcept;
inline bytes vector_id(const float *x, std::uint32_t dim) noexcept { return vector_id(meridian_namespace, x, dim); }

// Lower-case 8-4-4-4-12 text form, and its parser (exactly that form, either case).
std::string to_string(const bytes &u);
std::optional<bytes> parse(std::string_view text) noexcept;

}  // namespace meridian::uuid
