// The signing key file: a region's 64-byte libsodium Ed25519 secret key (seed || public key) as
// 128 lowercase hex characters followed by one newline, nothing else. Written by
// `meridian-replicator keygen`, read by the extension (meridian.signing_key_file). Pure C++ (POSIX
// file calls, no PostgreSQL headers). Format and rules: docs/regions.md.
#pragma once

#include "core/signing.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace meridian::keyfile {

// SQLSTATEs of key file errors (PostgreSQL's names).
namespace state {
inline constexpr const char *undefined_file = "58P01";     // the file does not exist
inline constexpr const char *io_error = "58030";           // open/read/write failed otherwise
inline constexpr const char *config_file_error = "F0000";  // wrong type, mode, owner or content
inline constexpr const char *duplicate_file = "58P02";     // keygen: the file exists already
}  // namespace state

// The exact size of a key file: 128 hex characters and a newline.
inline constexpr std::size_t file_size = 2 * signing::secret_key_size + 1;

// Lowercase hex of n bytes.
std::string to_hex(const std::uint8_t *p, std::size_t n);

// The key file text of a secret key (file_size characters). The caller should wipe it after use.
std::string format(const signing::secret_key &key);

// Parses key file text strictly: exactly 128 lowercase hex characters and one '\n', and the public
// half must belong to the seed (signing::secret_key::from_bytes). Throws meridian::error
// (F0000) naming what is wrong; the message never contains key material. `what` names the source
// in messages (e.g. the file path).
signing::secret_key parse(const char *text, std::size_t len, const std::string &what = "key file");

// Reads and parses a key file. The file must exist (58P01), be a regular file, be owned by the
// effective user of this process and grant no permissions to group or others (mode 0600 or
// stricter), else meridian::error (F0000) with a hint how to fix it.
signing::secret_key read_file(const std::string &path);

// Writes key to a new file at path with mode 0600 (whatever the umask), fsyncs it. Refuses
// (58P02) when path exists already, also as a dangling symlink; never overwrites anything.
// A partial file is removed when writing fails.
void write_new_file(const std::string &path, const signing::secret_key &key);

}  // namespace meridian::keyfile
