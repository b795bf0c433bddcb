// Catalog work done as the owner of one of Meridian's tables, whoever the session's user is: an
// application role writes replicated tables and reads at any consistency level without any
// privilege on Meridian's own tables. As PostgreSQL's RI triggers do, it runs as a restricted
// operation (no SET ROLE, no temporary objects).
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "miscadmin.h"
}

namespace meridian::pg {

Oid relation_owner(Oid relid);  // ERROR when the relation is gone

// Runs body() as the owner of relid and restores the session's user on the way out, also when
// body raises an ERROR. body is C-style code (docs/architecture.md): its frames own nothing, since
// an ERROR longjmps through them.
template <typename F>
void as_owner_of(Oid relid, F &&body) {
    Oid saved_user;
    int saved_sec;
    GetUserIdAndSecContext(&saved_user, &saved_sec);
    SetUserIdAndSecContext(relation_owner(relid),
                           saved_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    PG_TRY();
    {
        body();
    }
    PG_FINALLY();
    {
        SetUserIdAndSecContext(saved_user, saved_sec);
    }
    PG_END_TRY();
}

}  // namespace meridian::pg
