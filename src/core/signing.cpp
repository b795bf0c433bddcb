// Ed25519 over libsodium: see signing.hpp.
#include "core/signing.hpp"

#include "core/error.hpp"

#include <sodium.h>

#include <algorithm>
#include <string>

namespace meridian::signing {

static_assert(public_key_size == crypto_sign_PUBLICKEYBYTES, "public key size");
static_assert(secret_key_size == crypto_sign_SECRETKEYBYTES, "secret key size");
static_assert(seed_size == crypto_sign_SEEDBYTES, "seed size");
static_assert(signature_size == crypto_sign_BYTES, "signature size");

void init() {
    // A function-local static is initialised exactly once, even under concurrent first calls.
    static const int rc = sodium_init();
    if (rc < 0)
        throw meridian::error(sqlstate::internal_error, "could not initialize libsodium");
}

public_key public_key_from_bytes(const std::uint8_t *p, std::size_t len) {
    if (len != public_key_size)
        throw meridian::error(sqlstate::invalid_parameter_value, "invalid Ed25519 public key",
                              "A public key is 32 bytes, not " + std::to_string(len) + ".");
    public_key k;
    std::copy(p, p + len, k.begin());
    return k;
}

secret_key::secret_key() noexcept { sk_.fill(0); }

secret_key::secret_key(secret_key &&other) noexcept : sk_(other.sk_) { other.wipe(); }

secret_key &secret_key::operator=(secret_key &&other) noexcept {
    if (this != &other) {
        sk_ = other.sk_;
        other.wipe();
    }
    return *this;
}

secret_key::~secret_key() { wipe(); }

void secret_key::wipe() noexcept { sodium_memzero(sk_.data(), sk_.size()); }

secret_key secret_key::generate() {
    init();
    secret_key k;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    if (crypto_sign_keypair(pk, k.sk_.data()) != 0)
        throw meridian::error(sqlstate::internal_error, "could not generate an Ed25519 key pair");
    return k;
}

secret_key secret_key::from_seed(const std::uint8_t *seed, std::size_t len) {
    init();
    if (len != seed_size)
        throw meridian::error(sqlstate::invalid_parameter_value, "invalid Ed25519 seed",
                              "A seed is 32 bytes, not " + std::to_string(len) + ".");
    secret_key k;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    if (crypto_sign_seed_keypair(pk, k.sk_.data(), seed) != 0)
        throw meridian::error(sqlstate::internal_error, "could not derive an Ed25519 key pair");
    return k;
}

secret_key secret_key::from_bytes(const std::uint8_t *p, std::size_t len) {
    init();
    if (len != secret_key_size)
        throw meridian::error(sqlstate::invalid_parameter_value, "invalid Ed25519 secret key",
                              "A secret key is 64 bytes, not " + std::to_string(len) + ".");
    // Re-derive the pair from the seed half: a key whose public half does not match would sign
    // with one key while announcing another.
    secret_key k = from_seed(p, seed_size);
    if (sodium_memcmp(k.sk_.data(), p, secret_key_size) != 0)
        throw meridian::error(sqlstate::invalid_parameter_value, "invalid Ed25519 secret key",
                              "The public half of the key does not belong to its seed.");
    return k;
}

public_key secret_key::public_key() const noexcept {
    signing::public_key k;
    crypto_sign_ed25519_sk_to_pk(k.data(), sk_.data());
    return k;
}

namespace {

// What is signed: the keyed BLAKE2b-512 digest of the message, not the message itself. Ed25519
// hashes what it signs with SHA-512, twice when signing; libsodium's SHA-512 runs at about 400
// MB/s here and BLAKE2b at about 800, and a 100-row transaction is ~110 kB, so signing the 64-byte
// digest makes signing ~4x and verifying ~2x cheaper. The key separates this use of Ed25519 from
// any other (a signature of 64 raw bytes elsewhere can never pass as a message signature here).
constexpr unsigned char digest_key[] = "meridian replication message v1";  // 31 bytes
static_assert(sizeof digest_key - 1 >= crypto_generichash_KEYBYTES_MIN && sizeof digest_key - 1 <= crypto_generichash_KEYBYTES_MAX,
              "BLAKE2b key length");
constexpr std::size_t digest_size = 64;

void digest(const std::uint8_t *m, std::size_t n, unsigned char *out) {
    crypto_generichash(out, digest_size, m, n, digest_key, sizeof digest_key - 1);
}

}  // namespace

void secret_key::sign(const std::uint8_t *m, std::size_t n, std::uint8_t *out) const {
    init();
    unsigned char d[digest_size];
    digest(m, n, d);
    if (crypto_sign_detached(out, nullptr, d, digest_size, sk_.data()) != 0)
        throw meridian::error(sqlstate::internal_error, "could not sign a message");
}

signature secret_key::sign(const std::uint8_t *m, std::size_t n) const {
    signature s;
    sign(m, n, s.data());
    return s;
}

bool verify(const public_key &key, const std::uint8_t *m, std::size_t n, const std::uint8_t *sig) noexcept {
    try {
        init();
    } catch (...) {
        return false;
    }
    unsigned char d[digest_size];
    digest(m, n, d);
    return crypto_sign_verify_detached(sig, d, digest_size, key.data()) == 0;
}

}  // namespace meridian::signing
