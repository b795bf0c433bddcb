// meridian-replicator: one process per region (issue 3, docs/regions.md). For now only
//   meridian-replicator keygen FILE
// which writes a new Ed25519 signing key to FILE (mode 0600, never overwriting) and prints its
// public key in hex, for meridian.create_region(..., public_key => '\x<hex>').
#include "core/error.hpp"
#include "core/keyfile.hpp"
#include "core/signing.hpp"

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

using namespace meridian;

namespace {

constexpr int exit_usage = 2;

void usage(std::FILE *out) {
    std::fputs("usage: meridian-replicator keygen FILE\n"
               "\n"
               "  keygen FILE   write a new Ed25519 signing key to FILE (mode 0600; an existing file is\n"
               "                never overwritten) and print its public key in hex on stdout.\n"
               "                Run it as the user the PostgreSQL server runs as, then set\n"
               "                meridian.signing_key_file = 'FILE' in postgresql.conf.\n",
               out);
}

int keygen(const std::string &path) {
    signing::secret_key key = signing::secret_key::generate();
    keyfile::write_new_file(path, key);
    // Read it back: what the server will read is what we announce.
    signing::secret_key back = keyfile::read_file(path);
    signing::public_key pk = back.public_key();
    std::printf("%s\n", keyfile::to_hex(pk.data(), pk.size()).c_str());
    return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return exit_usage;
    }
    std::string cmd = argv[1];
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
        usage(stdout);
        return 0;
    }
    try {
        if (cmd == "keygen") {
            if (argc != 3 || argv[2][0] == '\0') {
                usage(stderr);
                return exit_usage;
            }
            return keygen(argv[2]);
        }
    } catch (const meridian::error &e) {
        std::fprintf(stderr, "meridian-replicator: %s\n", e.what());
        if (!e.detail().empty())
            std::fprintf(stderr, "DETAIL: %s\n", e.detail().c_str());
        if (!e.hint().empty())
            std::fprintf(stderr, "HINT: %s\n", e.hint().c_str());
        return 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "meridian-replicator: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "meridian-replicator: unknown command \"%s\"\n", cmd.c_str());
    usage(stderr);
    return exit_usage;
}
