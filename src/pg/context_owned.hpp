// Ties a C++ object's lifetime to a PostgreSQL memory context: the object is deleted when the
// context is reset or deleted, including during error cleanup, or earlier by release().
#pragma once

#include "pg/postgres.hpp"

namespace meridian::pg {

template <class T>
class context_owned {
public:
    // Takes ownership of obj; palloc's the holder in `cxt`.
    static context_owned *attach(MemoryContext cxt, T *obj) {
        auto *h = static_cast<context_owned *>(MemoryContextAllocZero(cxt, sizeof(context_owned)));
        h->obj_ = obj;
        h->callback_.func = &context_owned::on_reset;
        h->callback_.arg = h;
        MemoryContextRegisterResetCallback(cxt, &h->callback_);
        return h;
    }
    T *get() const { return obj_; }
    void release() {
        delete obj_;
        obj_ = nullptr;
    }

private:
    static void on_reset(void *arg) { static_cast<context_owned *>(arg)->release(); }
    MemoryContextCallback callback_;
    T *obj_;
};

}  // namespace meridian::pg
