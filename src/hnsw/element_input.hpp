// A vector Datum as the index sees it: detoasted, checked against the index's dimensions and,
// for cosine, scaled to unit length (zero vectors have no direction and are not indexed).
#pragma once

#include "core/distance.hpp"
#include "hnsw/hnsw.hpp"
#include "pg/guard.hpp"
#include "vector/vector.hpp"

#include <cmath>
#include <string>
#include <vector>

namespace meridian::hnsw {

class element_input {
public:
    element_input(Datum d, const index_shape &shape)
        : element_input(pg::call([&] { return vec::datum_get_vector(d); }), shape) {}

    // From a vector already detoasted by the caller.
    element_input(const vec::Vector *v, const index_shape &shape) {
        const std::uint32_t dims = shape.layout.dims;
        if (static_cast<std::uint32_t>(v->dim) != dims)
            throw meridian::error(sqlstate::data_exception, "expected " + std::to_string(dims) + " dimensions, not " +
                                                                std::to_string(v->dim));
        data_ = v->x;
        if (shape.kind == metric::cosine) {
            float norm2 = distance::norm_squared(v->x, dims);
            if (!(norm2 > 0.0f) || !std::isfinite(norm2)) {
                indexable_ = false;
                return;
            }
            float inv = 1.0f / std::sqrt(norm2);
            normalized_.resize(dims);
            for (std::uint32_t i = 0; i < dims; i++)
                normalized_[i] = v->x[i] * inv;
            data_ = normalized_.data();
        }
    }
    bool indexable() const { return indexable_; }
    const float *data() const { return data_; }

private:
    const float *data_ = nullptr;
    bool indexable_ = true;
    std::vector<float> normalized_;
};

}  // namespace meridian::hnsw
