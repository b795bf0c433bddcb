// Entry point of the shared library: the module magic and _PG_init, which registers each
// concern's GUCs. Nothing else lives here.
#include "pg/postgres.hpp"

extern "C" {
PG_MODULE_MAGIC;
void _PG_init(void);
}

namespace meridian::hnsw {
void register_gucs();
}
namespace meridian::regions {
void register_gucs();
}
namespace meridian::apply {
void register_gucs();
}
namespace meridian::consistency {
void register_gucs();  // also its hooks and, while preloading, its shared memory
}

extern "C" void _PG_init(void) {
    meridian::hnsw::register_gucs();
    meridian::regions::register_gucs();
    meridian::apply::register_gucs();
    meridian::consistency::register_gucs();
}
