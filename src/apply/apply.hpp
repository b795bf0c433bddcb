// The apply side of replication (docs/apply.md): shared between apply.cpp and tombstones.cpp.
#pragma once

namespace meridian::apply {

// meridian.tombstone_retention, seconds (0 = keep tombstones forever).
extern int tombstone_retention;

// Defines the GUCs of src/apply; called from _PG_init.
void register_gucs();

}  // namespace meridian::apply
