// meridian.flush_wal() RETURNS pg_lsn (docs/apply.md, "Group flush"): flushes the WAL up to the
// current insert position and returns that position. meridian-replicator applies with
// synchronous_commit = off and calls it before reporting applied transactions as flushed to
// the peer: every transaction this session committed before the call is durable when it returns.
//
// The function owns no C++ resources, so PostgreSQL errors may longjmp through it; it still
// runs inside meridian::pg::guarded like every SQL-callable function.
#include "pg/guard.hpp"

extern "C" {
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "utils/pg_lsn.h"

PG_FUNCTION_INFO_V1(meridian_flush_wal);
}

namespace {

// The end of the WAL inserted so far. GetXLogInsertRecPtr() names where the next record's data
// would start, which is past a page header when the insert position is at a page boundary; the
// flush request must not pass the end of the WAL actually reserved (XLogFlush would log
// "request to flush past end of generated WAL"), so such a position is moved back to the
// boundary, as xlog.c does for the end of a record.
XLogRecPtr inserted_end() {
    XLogRecPtr p = GetXLogInsertRecPtr();
    if (XLogSegmentOffset(p, wal_segment_size) == SizeOfXLogLongPHD)
        return p - SizeOfXLogLongPHD;
    if (p % XLOG_BLCKSZ == SizeOfXLogShortPHD)
        return p - SizeOfXLogShortPHD;
    return p;
}

}  // namespace

extern "C" Datum meridian_flush_wal(PG_FUNCTION_ARGS) {
    return meridian::pg::guarded([&] {
        if (RecoveryInProgress())
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("meridian.flush_wal cannot run during recovery"),
                            errdetail("A server in recovery writes no WAL of its own.")));
        XLogRecPtr upto = inserted_end();
        XLogFlush(upto);
        return LSNGetDatum(upto);
    });
}
