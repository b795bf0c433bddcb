// The one way C++ in src/ includes PostgreSQL headers. Only glue files (src/vector, src/hnsw,
// src/pg) include this; files in src/core must not (see docs/architecture.md).
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

#ifdef MERIDIAN_PURE_CORE
#error "src/core is pure C++: it must not include PostgreSQL headers"
#endif
