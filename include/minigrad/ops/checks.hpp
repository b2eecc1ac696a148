// Argument checks shared by every op. Mixing backends is a compile error (the types say it all);
// what only run time can know (shapes, GPU indices) is a minigrad::Error naming both sides.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

#include "../error.hpp"
#include "../scalar_checks.hpp"
#include "../tensor.hpp"

namespace minigrad {
// The backends by name only, for the readable mixing errors below: an op is generic over its
// backend and needs no concrete one.
struct Cpu;
struct Cuda;
}  // namespace minigrad

namespace minigrad::detail {

template <class...>
inline constexpr bool always_false = false;

// Instantiated only when argument #Arg's backend `Other` differs from argument #1's `First`.
template <class First, class Other, int Arg, class Delay = void>
struct BackendMismatch {
    static_assert(always_false<Delay>,
                  "minigrad: the arguments of this op are on different backends; move one with "
                  ".to<mg::Cpu>() or .to<mg::Cuda>()");
};
template <class D>
struct BackendMismatch<Cpu, Cuda, 2, D> {
    static_assert(always_false<D>,
                  "minigrad: argument #2 is on Cuda but argument #1 is on Cpu; move it with "
                  ".to<mg::Cpu>() (a model: model.to<mg::Cpu>()), or move argument #1 with .to<mg::Cuda>()");
};
template <class D>
struct BackendMismatch<Cuda, Cpu, 2, D> {
    static_assert(always_false<D>,
                  "minigrad: argument #2 is on Cpu but argument #1 is on Cuda; move it with "
                  ".to<mg::Cuda>() (a model: model.to<mg::Cuda>()), or move argument #1 with .to<mg::Cpu>()");
};
template <class D>
struct BackendMismatch<Cpu, Cuda, 3, D> {
    static_assert(always_false<D>,
                  "minigrad: argument #3 is on Cuda but argument #1 is on Cpu; move it with "
                  ".to<mg::Cpu>() (a model: model.to<mg::Cpu>()), or move argument #1 with .to<mg::Cuda>()");
};
template <class D>
struct BackendMismatch<Cuda, Cpu, 3, D> {
    static_assert(always_false<D>,
                  "minigrad: argument #3 is on Cpu but argument #1 is on Cuda; move it with "
                  ".to<mg::Cuda>() (a model: model.to<mg::Cuda>()), or move argument #1 with .to<mg::Cpu>()");
};

template <class First, class Other, int Arg, class Delay = void>
struct DtypeMismatch {
    static_assert(always_false<Delay>,
                  "minigrad: the arguments of this op have different element types (float vs "
                  "double?); make them the same, e.g. build both as Tensor<B, float>");
};

// Used by the mismatch overloads of each op: fires the static_assert that names the problem.
template <class BA, class TA, class BB, class TB, int Arg>
constexpr void reject_mix() {
    if constexpr (!std::is_same_v<BA, BB>)
        (void)BackendMismatch<BA, BB, Arg>{};
    else if constexpr (!std::is_same_v<TA, TB>)
        (void)DtypeMismatch<TA, TB, Arg>{};
}

template <class BA, class TA, class BB, class TB>
concept Mixed = !std::is_same_v<BA, BB> || !std::is_same_v<TA, TB>;

inline std::string device_label(std::string_view backend, int device) {
    return backend == "Cpu" ? std::string("cpu") : minigrad::detail::format("cuda:{}", device);
}

// Tensors of one backend may still sit on different GPUs.
template <class B, class TA, class TB>
void check_same_device(std::string_view op, const Tensor<B, TA>& first, std::string_view first_name,
                       const Tensor<B, TB>& other, int arg, std::string_view other_name) {
    if (first.device() != other.device()) {
        fail<DeviceError>("{}: argument #{} '{}' is on {} but argument #1 '{}' is on {}; move it with .to<mg::{}>({})",
                          op, arg, other_name, device_label(B::name, other.device()), first_name,
                          device_label(B::name, first.device()), B::name, first.device());
    }
}

// An undefined tensor (default-constructed, an absent grad) named as the argument it was passed as.
template <class B, class T>
void check_defined(std::string_view op, const Tensor<B, T>& t, int arg, std::string_view name) {
    if (!t.defined()) {
        fail<Error>("{}: argument #{} '{}' is an undefined tensor (default-constructed, or an absent grad)", op, arg, name);
    }
}

// For ops whose arithmetic only makes sense in floating point (means, logarithms, products).
template <class T>
constexpr void require_floating() {
    static_assert(std::is_floating_point_v<T>, "minigrad: this op needs a floating-point tensor (float or double)");
}

template <class B, class T>
void check_ndim(std::string_view op, const Tensor<B, T>& t, int arg, std::string_view name, int ndim,
                std::string_view expected) {
    if (t.ndim() != ndim) {
        fail<ShapeError>("{}: argument #{} '{}' has shape {}, expected {}", op, arg, name, t.shape(), expected);
    }
}

// A dim argument counted from the end when negative, as PyTorch's; a scalar has one dim to name
// (0 or -1), as in PyTorch. Throws a ShapeError naming the op, the argument and the valid range.
inline int normalize_dim(std::string_view op, const Shape& shape, std::int64_t dim, int arg, std::string_view name = "dim") {
    const int rank = shape.ndim() > 0 ? shape.ndim() : 1;
    if (dim < -rank || dim >= rank) {
        fail<ShapeError>("{}: argument #{} '{}' is {}, out of range for a tensor of shape {} (expected a dim in [{}, {}])", op, arg,
                         name, dim, shape, -rank, rank - 1);
    }
    return static_cast<int>(dim < 0 ? dim + rank : dim);
}

// An op that writes indices along a dim of `size` entries in the integer type L (argmax<L>): L must
// hold the largest, size - 1, or 299 of 300 columns would be written to a uint8 as 43.
template <class L>
void check_index_type(std::string_view op, const Shape& shape, int dim, std::int64_t size) {
    if constexpr (!std::is_integral_v<L>) return;  // only integer index types are checked
    else if (size > 0 && static_cast<std::uint64_t>(size - 1) > static_cast<std::uint64_t>(std::numeric_limits<L>::max())) {
        fail<ValueError>("{}: argument #1 'input' has shape {}, whose index {} along dim {} does not fit the index type {}int{} (at most "
                         "{}); ask for a wider one, such as {}<std::int64_t>",
                         op, shape, size - 1, dim, std::is_signed_v<L> ? "" : "u", 8 * sizeof(L),
                         static_cast<std::uint64_t>(std::numeric_limits<L>::max()), op);
    }
}

// A tensor seen as (outer, size, inner) around one of its dims: what the dim ops index by.
struct DimSplit {
    std::int64_t outer = 1, size = 1, inner = 1;
};
inline DimSplit split_at(const Shape& shape, int dim) {
    DimSplit s;
    for (int d = 0; d < shape.ndim(); ++d) (d < dim ? s.outer : d == dim ? s.size : s.inner) *= shape[d];
    return s;
}

// `shape` with dim `dim` set to `size`, or dropped when size < 0.
inline Shape with_dim(const Shape& shape, int dim, std::int64_t size) {
    std::int64_t dims[Shape::max_dims];
    int n = 0;
    for (int d = 0; d < shape.ndim(); ++d) {
        if (d != dim)
            dims[n++] = shape[d];
        else if (size >= 0)
            dims[n++] = size;
    }
    return make_shape(dims, n);
}

}  // namespace minigrad::detail
