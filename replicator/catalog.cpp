#include "catalog.hpp"

#include "core/error.hpp"

#include <cstdlib>

namespace meridian::replicator {

region_catalog load_catalog(connection &local) {
    result ext = local.exec("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'meridian'");
    if (PQntuples(ext.get()) == 0)
        throw meridian::error(sqlstate::object_not_in_prerequisite_state,
                              "extension \"meridian\" is not installed in the local database",
                              "", "Run CREATE EXTENSION meridian, then register the regions.");
    result r = local.exec("SELECT name, conninfo, encode(public_key, 'hex'), is_local "
                          "FROM meridian.regions ORDER BY name");
    region_catalog c;
    for (int i = 0; i < PQntuples(r.get()); i++) {
        std::string name = value(r, i, 0);
        if (value(r, i, 3) == "t") {
            c.local = name;
            continue;
        }
        peer_region p;
        p.name = name;
        p.conninfo = value(r, i, 1);
        if (!is_null(r, i, 2)) {
            std::string hex = value(r, i, 2);
            signing::public_key k{};
            for (std::size_t b = 0; b < k.size() && 2 * b + 1 < hex.size(); b++)
                k[b] = static_cast<std::uint8_t>(std::strtoul(hex.substr(2 * b, 2).c_str(), nullptr, 16));
            p.key = k;
        }
        c.peers.push_back(std::move(p));
    }
    if (c.local.empty())
        throw meridian::error(sqlstate::object_not_in_prerequisite_state, "no local region is set in the local database",
                              "", "Run SELECT meridian.set_local_region('<name>') in this region's database.");
    return c;
}

}  // namespace meridian::replicator
