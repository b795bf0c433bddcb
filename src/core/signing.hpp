// Ed25519 signatures (libsodium) for the replication protocol: key pairs, detached signing and
// verification. Pure C++ (no PostgreSQL headers). Format and use: docs/protocol.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace meridian::signing {

inline constexpr std::size_t public_key_size = 32;  // crypto_sign_PUBLICKEYBYTES
inline constexpr std::size_t secret_key_size = 64;  // crypto_sign_SECRETKEYBYTES: seed || public key
inline constexpr std::size_t seed_size = 32;        // crypto_sign_SEEDBYTES
inline constexpr std::size_t signature_size = 64;   // crypto_sign_BYTES

using public_key = std::array<std::uint8_t, public_key_size>;
using signature = std::array<std::uint8_t, signature_size>;

// sodium_init(), exactly once per process and thread-safe; every function below calls it.
// Throws meridian::error if libsodium cannot initialise.
void init();

// A public key from exactly 32 bytes; throws meridian::error (22023) for any other length.
public_key public_key_from_bytes(const std::uint8_t *p, std::size_t len);

// An Ed25519 secret key (libsodium's 64-byte form: the 32-byte seed followed by the public key).
// Move-only; its bytes are wiped with sodium_memzero when it is destroyed or moved from.
class secret_key {
public:
    // A new random key pair (crypto_sign_keypair).
    static secret_key generate();
    // The key pair of a 32-byte seed (crypto_sign_seed_keypair): deterministic, for tests and
    // for key files that store only the seed. Throws meridian::error for another length.
    static secret_key from_seed(const std::uint8_t *seed, std::size_t len);
    // A 64-byte secret key as written by generate()/bytes(). Throws meridian::error (22023) when
    // the length is not 64 or the public half does not belong to the seed (a damaged key file).
    static secret_key from_bytes(const std::uint8_t *p, std::size_t len);

    secret_key(const secret_key &) = delete;
    secret_key &operator=(const secret_key &) = delete;
    secret_key(secret_key &&other) noexcept;
    secret_key &operator=(secret_key &&other) noexcept;
    ~secret_key();

    // The 64 secret bytes (for writing a key file). Handle with care.
    const std::array<std::uint8_t, secret_key_size> &bytes() const noexcept { return sk_; }
    signing::public_key public_key() const noexcept;

    // Detached Ed25519 signature (crypto_sign_detached) of the keyed BLAKE2b-512 digest of the n
    // bytes at m (docs/protocol.md, "Signatures").
    signature sign(const std::uint8_t *m, std::size_t n) const;
    void sign(const std::uint8_t *m, std::size_t n, std::uint8_t *out /* signature_size */) const;

private:
    secret_key() noexcept;
    void wipe() noexcept;
    std::array<std::uint8_t, secret_key_size> sk_;
};

// True exactly when sig is key's valid signature (as made by secret_key::sign) of the n bytes at m.
bool verify(const public_key &key, const std::uint8_t *m, std::size_t n, const std::uint8_t *sig /* signature_size */) noexcept;

}  // namespace meridian::signing
