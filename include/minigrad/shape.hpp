// Shape: up to eight dimensions held inline, so creating a tensor never allocates for its shape.
#pragma once

#include "config.hpp"

#include <array>
#include <cstdint>
#include <climits>
#include <initializer_list>
#include <span>

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "error.hpp"

namespace minigrad {

class Shape {
  public:
    static constexpr int max_dims = 8;

    // The most elements a shape may hold: its bytes must fit in a signed 64-bit size for every
    // element type minigrad stores (8 bytes at most), so no size computation downstream overflows.
    static constexpr std::int64_t max_numel = INT64_MAX / 8;

    Shape() = default;
    Shape(std::initializer_list<std::int64_t> dims) { assign(dims.begin(), dims.size()); }
    // A shape built at run time: Shape(std::vector<std::int64_t>{...}), Shape(std::span(dims, n)).
    explicit Shape(std::span<const std::int64_t> dims) { assign(dims.data(), dims.size()); }

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
    void assign(const std::int64_t* dims, std::size_t count) {
        if (count > max_dims) detail::fail<ShapeError>("Shape: {} dimensions given, at most {} are supported", count, max_dims);
        for (std::size_t i = 0; i < count; ++i) {
            if (dims[i] < 0) detail::fail<ShapeError>("Shape: dimension {} is negative", dims[i]);
            dims_[ndim_++] = dims[i];
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
            const auto text = detail::join(std::span<const std::int64_t>(dims, count));
            if (empty) {
                detail::fail<ShapeError>("Shape: [{}] holds no elements, but its other dimensions multiply to more than can be "
                                         "addressed (at most {})",
                                         text, max_numel);
            }
            detail::fail<ShapeError>("Shape: [{}] holds more elements than can be addressed (at most {})", text, max_numel);
        }
    }

    std::array<std::int64_t, max_dims> dims_{};
    int ndim_ = 0;
};

namespace detail {
// A shape from the first `ndim` entries of `dims` (ndim <= Shape::max_dims).
inline Shape make_shape(const std::int64_t* dims, int ndim) { return Shape(std::span<const std::int64_t>(dims, static_cast<std::size_t>(ndim))); }
}  // namespace detail

// A shape in a message (detail::fail, detail::format): [120, 4], as PyTorch writes it.
inline std::string message_text(const Shape& s) { return detail::bracketed(s); }
}  // namespace minigrad

// Prints as PyTorch does in its messages: [120, 4]. The text is made by detail::join and copied
// out, not written with fmt::format_to (see join: that would cost every file seconds to compile).
template <>
struct fmt::formatter<minigrad::Shape> {
    constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
    template <class Ctx>
    auto format(const minigrad::Shape& s, Ctx& ctx) const {
        const std::string text = minigrad::message_text(s);
        return std::copy(text.begin(), text.end(), ctx.out());
    }
};
