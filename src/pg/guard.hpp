// The two guards between C++ and PostgreSQL. Rules (docs/architecture.md, "Error handling"):
//
//  1. PostgreSQL -> C++: every SQL-callable function, AM callback and decoding callback is a C
//     shim whose body runs inside meridian::pg::guarded(). A C++ exception never leaves it: it is
//     caught, its text copied into palloc'd memory, and only after every C++ frame of the body is
//     gone does the shim raise ereport(ERROR).
//  2. C++ -> PostgreSQL: a PostgreSQL call that may ereport(ERROR) and is made from a C++ frame
//     that owns resources (std::vector, RAII guards, ...) goes through meridian::pg::call(). The
//     ERROR is caught with PG_TRY, turned into meridian::pg::pg_exception, and unwinds C++
//     normally; guarded() re-raises the original ErrorData unchanged (same SQLSTATE, message).
#pragma once

#include "pg/postgres.hpp"
#include "core/error.hpp"

#include <exception>
#include <new>
#include <type_traits>
#include <utility>

namespace meridian::pg {

// A PostgreSQL ERROR travelling through C++ frames. Owns a copy of the ErrorData (palloc'd in the
// memory context that was current when the error was caught).
class pg_exception final : public std::exception {
public:
    explicit pg_exception(ErrorData *edata) noexcept : edata_(edata) {}
    const char *what() const noexcept override { return edata_ && edata_->message ? edata_->message : "PostgreSQL error"; }
    ErrorData *release() noexcept { ErrorData *e = edata_; edata_ = nullptr; return e; }
private:
    ErrorData *edata_;
};

// What the shim needs to raise after the C++ frames are gone. Plain data only.
struct failure {
    ErrorData *pg_error = nullptr;   // re-thrown as is
    int sqlstate = 0;                // otherwise: ereport with these
    char *message = nullptr;
    char *detail = nullptr;
    char *hint = nullptr;
};

[[noreturn]] void raise(const failure &f);
void capture_current(failure &f) noexcept;   // fill f from the exception being handled

// Rule 1. Usage in a shim:   PG_FUNCTION_INFO_V1(x); Datum x(PG_FUNCTION_ARGS) {
//                                return meridian::pg::guarded([&] { ...; return datum; }); }
template <typename F>
inline auto guarded(F &&body) -> decltype(body()) {
    using result_t = decltype(body());
    failure f;
    if constexpr (std::is_void_v<result_t>) {
        try {
            body();
            return;
        } catch (...) {
            capture_current(f);
        }
        raise(f);
    } else {
        static_assert(std::is_trivially_copyable_v<result_t>, "shim results must be plain data");
        result_t result{};
        bool ok = false;
        try {
            result = body();
            ok = true;
        } catch (...) {
            capture_current(f);
        }
        if (!ok)
            raise(f);
        return result;
    }
}

// Rule 2. Runs fn(); a PostgreSQL ERROR raised inside becomes pg_exception.
// fn must itself own nothing that needs destruction (it is typically one PostgreSQL call).
template <typename F>
inline auto call(F &&fn) -> decltype(fn()) {
    using result_t = decltype(fn());
    MemoryContext caller_cxt = CurrentMemoryContext;
    ErrorData *volatile edata = nullptr;
    if constexpr (std::is_void_v<result_t>) {
        PG_TRY();
        {
            fn();
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(caller_cxt);
            edata = CopyErrorData();
            FlushErrorState();
        }
        PG_END_TRY();
        if (edata)
            throw pg_exception(edata);
    } else {
        static_assert(std::is_trivially_copyable_v<result_t>, "wrap one PostgreSQL call returning plain data");
        // Read only when no ERROR was raised, so it needs no volatile across the longjmp.
        result_t result{};
        PG_TRY();
        {
            result = fn();
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(caller_cxt);
            edata = CopyErrorData();
            FlushErrorState();
        }
        PG_END_TRY();
        if (edata)
            throw pg_exception(edata);
        return result;
    }
}

// CHECK_FOR_INTERRUPTS() for C++ frames: cheap test first, the guarded call only when needed.
inline void check_for_interrupts() {
    if (unlikely(INTERRUPTS_PENDING_CONDITION()))
        call([] { ProcessInterrupts(); });
}

}  // namespace meridian::pg
