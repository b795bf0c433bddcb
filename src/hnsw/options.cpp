// GUCs of the hnsw access method (stub: filled in with the access method).
#include "pg/postgres.hpp"

namespace meridian::hnsw {
void register_gucs() {}
}  // namespace meridian::hnsw
