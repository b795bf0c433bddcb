// One line per event on stderr: "2026-11-24 18:01:02.123 UTC meridian-replicator[us-east]: ...".
// Thread-safe (each line is written whole under a mutex).
#pragma once

#include <exception>
#include <string>

namespace meridian::replicator {

void set_log_region(const std::string &local_region);
void log_line(const std::string &message);
// An exception as one log fragment: its message, and a meridian::error's detail and hint.
std::string describe(const std::exception &e);

}  // namespace meridian::replicator
