#include "core/hnsw_level.hpp"

#include <cmath>
#include <xxhash.h>

namespace meridian::hnsw {

int level_for_hash(std::uint64_t hash, int m, int max_level) {
    // 53 high bits give a uniform double in [0, 1); 1 - that is in (0, 1], so the log is finite.
    double u = 1.0 - static_cast<double>(hash >> 11) * (1.0 / 9007199254740992.0);
    double level = -std::log(u) / std::log(static_cast<double>(m));
    int l = static_cast<int>(level);
    return l > max_level ? max_level : l;
}

int level_for_vector(const float *v, std::size_t dims, int m, int max_level) {
    // Hash the canonical little-endian float bytes; -0.0 hashes as 0.0 so equal vectors agree.
    std::uint64_t h;
    bool has_negative_zero = false;
    for (std::size_t i = 0; i < dims; i++)
        if (v[i] == 0.0f && std::signbit(v[i])) {
            has_negative_zero = true;
            break;
        }
    if (!has_negative_zero) {
        h = XXH64(v, dims * sizeof(float), 0);
    } else {
        XXH64_state_t *st = XXH64_createState();
        XXH64_reset(st, 0);
        for (std::size_t i = 0; i < dims; i++) {
            float x = (v[i] == 0.0f) ? 0.0f : v[i];
            XXH64_update(st, &x, sizeof x);
        }
        h = XXH64_digest(st);
        XXH64_freeState(st);
    }
    return level_for_hash(h, m, max_level);
}

}  // namespace meridian::hnsw
