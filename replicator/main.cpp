// meridian-replicator: one process per region (docs/replication.md).
//   meridian-replicator --local CONNINFO [--heartbeat-interval MS]
//       streams every peer's changes into the local database (supervisor.cpp, peer_stream.cpp)
//   meridian-replicator keygen FILE
//       writes a new Ed25519 signing key to FILE (mode 0600, never overwriting) and prints its
//       public key in hex, for meridian.create_region(..., public_key => '\x<hex>').
#include "core/error.hpp"
#include "core/keyfile.hpp"
#include "core/signing.hpp"
#include "log.hpp"
#include "supervisor.hpp"

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

using namespace meridian;
using meridian::replicator::supervisor_settings;

namespace {

constexpr int exit_usage = 2;

std::atomic<bool> shutdown_requested{false};

extern "C" void on_shutdown_signal(int) { shutdown_requested = true; }

void usage(std::FILE *out) {
    std::fputs("usage: meridian-replicator --local CONNINFO [--heartbeat-interval MS]\n"
               "       meridian-replicator keygen FILE\n"
               "\n"
               "  --local CONNINFO        the local region's database (libpq conninfo). The regions, the\n"
               "                          local one and the peers' keys are read from its meridian.regions.\n"
               "                          Runs in the foreground, one log line per event on stderr, until\n"
               "                          SIGTERM or SIGINT.\n"
               "  --heartbeat-interval MS how often this region writes a heartbeat (default 10)\n"
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
        if (cmd.rfind("--", 0) == 0) {
            supervisor_settings settings;
            for (int i = 1; i < argc; i++) {
                std::string a = argv[i];
                auto take = [&](const char *name) -> std::string {
                    std::string flag = std::string("--") + name;
                    if (a == flag) {
                        if (i + 1 >= argc)
                            throw meridian::error("22023", "option " + flag + " needs a value");
                        return argv[++i];
                    }
                    return a.substr(flag.size() + 1);
                };
                if (a == "--local" || a.rfind("--local=", 0) == 0)
                    settings.local_conninfo = take("local");
                else if (a == "--heartbeat-interval" || a.rfind("--heartbeat-interval=", 0) == 0) {
                    std::string v = take("heartbeat-interval");
                    char *end = nullptr;
                    long ms = std::strtol(v.c_str(), &end, 10);
                    if (v.empty() || *end != '\0' || ms < 1 || ms > 60000)
                        throw meridian::error("22023", "invalid --heartbeat-interval \"" + v + "\"",
                                              "It is a number of milliseconds from 1 to 60000.");
                    settings.heartbeat_interval = std::chrono::milliseconds(ms);
                } else {
                    std::fprintf(stderr, "meridian-replicator: unknown option \"%s\"\n", a.c_str());
                    usage(stderr);
                    return exit_usage;
                }
            }
            if (settings.local_conninfo.empty()) {
                std::fprintf(stderr, "meridian-replicator: --local CONNINFO is required\n");
                usage(stderr);
                return exit_usage;
            }
            struct sigaction sa {};
            sa.sa_handler = on_shutdown_signal;
            sigemptyset(&sa.sa_mask);
            sigaction(SIGTERM, &sa, nullptr);
            sigaction(SIGINT, &sa, nullptr);
            signal(SIGPIPE, SIG_IGN);
            replicator::log_line("starting");
            return replicator::run_supervisor(settings, shutdown_requested);
        }
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
