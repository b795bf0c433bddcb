// The region catalog as the replicator reads it from its local database (meridian.regions).
#pragma once

#include "core/signing.hpp"
#include "pq.hpp"

#include <optional>
#include <string>
#include <vector>

namespace meridian::replicator {

struct peer_region {
    std::string name;
    std::string conninfo;
    std::optional<signing::public_key> key;  // none registered: the stream cannot be verified
    bool operator==(const peer_region &o) const { return name == o.name && conninfo == o.conninfo && key == o.key; }
};

struct region_catalog {
    std::string local;               // this database's region
    std::vector<peer_region> peers;  // every other region, by name
};

// Throws pq_error (database) or meridian::error (no local region, extension missing).
region_catalog load_catalog(connection &local);

}  // namespace meridian::replicator
