// SHA-1 (FIPS 180-4, section 6.1), written from the standard. Used for name-based UUIDs
// (RFC 9562 UUIDv5), where the algorithm is fixed by the RFC; it is not used for security.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace meridian::sha1 {

using digest = std::array<std::uint8_t, 20>;

// Incremental hashing: update() any number of times, then finish() once.
class hasher {
public:
    hasher() noexcept;
    void update(const void *data, std::size_t len) noexcept;
    digest finish() noexcept;

private:
    void compress(const std::uint8_t *block) noexcept;

    std::uint32_t h_[5];
    std::uint8_t block_[64];
    std::size_t used_ = 0;        // bytes in block_
    std::uint64_t total_ = 0;     // message length in bytes
};

// SHA-1 of one buffer.
digest hash(const void *data, std::size_t len) noexcept;

}  // namespace meridian::sha1
