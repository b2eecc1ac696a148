// Shape: up to four dimensions held inline, so creating a tensor never allocates for its shape.
#pragma once

#include "config.hpp"

#include <array>
#include <cstdint>
#include <climits>
#include <initializer_list>

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "error.hpp"

namespace minigrad {

class Shape {
  public:
    static constexpr int max_dims = 4;

    // The most elements a shape may hold: its bytes must fit in a signed 64-bit size for every
    // element type minigrad stores (8 bytes at most), so no size computation downstream overflows.
    static constexpr std::int64_t max_numel = INT64_MAX / 8;

    Shape() = default;
    Shape(std::initializer_list<std::int64_t> dims) {
        if (dims.size() > max_dims) {
            detail::fail<ShapeError>("Shape: {} dimensions given, at most {} are supported",
                                     dims.size(), max_dims);
        }
        for (auto d : dims) {
            if (d < 0) detail::fail<ShapeError>("Shape: dimension {} is negative", d);
            dims_[ndim_++] = d;
        }
        // Checked once here, so numel() and every byte count after it can be computed unchecked.
        // The product leaves the zeros out: a shape that holds no elements still may not have
        // dims whose product overflows, or merging some of them (flatten, cat, the (outer, size,
        // inner) of a dim op) would wrap. [0, 2^40, 2^40] flattened to [0, 0].
        std::int64_t n = 1;
        bool overflow = false, empty = false;
        for (int i = 0; i < ndim_; ++i) {
            if (dims_[i] == 0)
                empty = true;
            else
                overflow = overflow || __builtin_mul_overflow(n, dims_[i], &n);
        }
        if (overflow || n > max_numel) {
            ndim_ = 0;  // never let a caller see the half-built shape
            if (empty) {
                detail::fail<ShapeError>("Shape: [{}] holds no elements, but its other dimensions multiply to more than can be "
                                         "addressed (at most {})",
                                         detail::join(dims), max_numel);
            }
            detail::fail<ShapeError>("Shape: [{}] holds more elements than can be addressed (at most {})",
                                     detail::join(dims), max_numel);
        }
    }

    int ndim() const { return ndim_; }
    std::int64_t operator[](int axis) const {
        MINIGRAD_ASSERT(axis >= 0 && axis < ndim_);
        return dims_[axis];
    }
    std::int64_t numel() const {
        std::int64_t n = 1;
        for (int i = 0; i < ndim_; ++i) n *= dims_[i];
        return n;
    }
    const std::int64_t* begin() const { return dims_.data(); }
    const std::int64_t* end() const { return dims_.data() + ndim_; }

    friend bool operator==(const Shape& a, const Shape& b) {
        if (a.ndim_ != b.ndim_) return false;
        for (int i = 0; i < a.ndim_; ++i)
            if (a.dims_[i] != b.dims_[i]) return false;
        return true;
    }

  private:
    std::array<std::int64_t, max_dims> dims_{};
    int ndim_ = 0;
};

namespace detail {
// A shape from the first `ndim` entries of `dims` (ndim <= Shape::max_dims).
inline Shape make_shape(const std::int64_t* dims, int ndim) {
    switch (ndim) {
        case 0: return Shape{};
        case 1: return Shape{dims[0]};
        case 2: return Shape{dims[0], dims[1]};
        case 3: return Shape{dims[0], dims[1], dims[2]};
        default: return Shape{dims[0], dims[1], dims[2], dims[3]};
    }
}
}  // namespace detail

}  // namespace minigrad

// Prints as PyTorch does in its messages: [120, 4]. The text is made by detail::join and copied
// out, not written with fmt::format_to (see join: that would cost every file seconds to compile).
template <>
struct fmt::formatter<minigrad::Shape> {
    constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
    template <class Ctx>
    auto format(const minigrad::Shape& s, Ctx& ctx) const {
        std::string text(1, '[');  // appended, not "[" + join(s): GCC 12 warns falsely (-Wrestrict) on that
        text += minigrad::detail::join(s);
        text += ']';
        return std::copy(text.begin(), text.end(), ctx.out());
    }
};
