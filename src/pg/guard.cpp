#include "pg/guard.hpp"

#include <cstring>

extern "C" {
#include "utils/errcodes.h"
}

namespace meridian::pg {

namespace {

char *copy_text(const char *s) noexcept {
    if (s == nullptr || *s == '\0')
        return nullptr;
    // palloc in the current context can itself fail; MCXT_ALLOC_NO_OOM keeps this noexcept.
    size_t n = std::strlen(s) + 1;
    char *p = static_cast<char *>(palloc_extended(n, MCXT_ALLOC_NO_OOM));
    if (p != nullptr)
        std::memcpy(p, s, n);
    return p;
}

int parse_sqlstate(const char *code) noexcept {
    return MAKE_SQLSTATE(code[0], code[1], code[2], code[3], code[4]);
}

}  // namespace

void capture_current(failure &f) noexcept {
    try {
        throw;
    } catch (pg_exception &e) {
        f.pg_error = e.release();
    } catch (const meridian::error &e) {
        f.sqlstate = parse_sqlstate(e.sqlstate());
        f.message = copy_text(e.what());
        f.detail = copy_text(e.detail().c_str());
        f.hint = copy_text(e.hint().c_str());
    } catch (const std::bad_alloc &) {
        f.sqlstate = ERRCODE_OUT_OF_MEMORY;
        f.message = copy_text("out of memory");
    } catch (const std::exception &e) {
        f.sqlstate = ERRCODE_INTERNAL_ERROR;
        f.message = copy_text(e.what());
    } catch (...) {
        f.sqlstate = ERRCODE_INTERNAL_ERROR;
        f.message = copy_text("unknown C++ exception");
    }
}

void raise(const failure &f) {
    if (f.pg_error != nullptr)
        ReThrowError(f.pg_error);
    ereport(ERROR,
            (errcode(f.sqlstate), errmsg_internal("%s", f.message ? f.message : "internal error"),
             f.detail ? errdetail_internal("%s", f.detail) : 0, f.hint ? errhint("%s", f.hint) : 0));
    pg_unreachable();
}

}  // namespace meridian::pg
