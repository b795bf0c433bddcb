// Deterministic HNSW levels: an element's level is a function of its vector's bytes, so every
// region holding the same row gives it the same level (no random generator anywhere).
#pragma once

#include <cstddef>
#include <cstdint>

namespace meridian::hnsw {

// u = xxHash64(bytes) mapped to (0, 1]; level = floor(-ln(u) / ln(m)), capped at max_level.
int level_for_vector(const float *v, std::size_t dims, int m, int max_level);

// The same from a precomputed 64-bit hash (exposed for tests).
int level_for_hash(std::uint64_t hash, int m, int max_level);

}  // namespace meridian::hnsw
