// Broadcasting, as NumPy and PyTorch have it: shapes are aligned on the right and a dimension of
// size 1 stretches to the other side's size. Here: the result shape (or the error naming both
// shapes), how an elementwise kernel reads an operand at an index of the result, and the gradient's
// way back, a sum over the stretched dimensions down to the operand's own shape.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "checks.hpp"

namespace minigrad {
namespace kernels {

// How an elementwise kernel reads one operand at index i of the result. Chosen once per launch on
// the host, so the common cases pay no index arithmetic: `same` (the operand has the result's
// elements), `row` (the operand is the result's trailing dims, repeated: a bias row, or one element),
// `scalar` (a number, the tensor-scalar forms), `strided` (any other broadcast).
enum class Read { same, row, scalar, strided };

struct NoIndex {};

// i over the result's elements. A strided operand reads through `at`, the operand's strides over
// the result's dims (0 along a dim it stretches).
template <class T, Read K>
struct Operand {
    const T* data = nullptr;
    T value{};  // Read::scalar
    index_t period = 1;  // Read::row
    [[no_unique_address]] std::conditional_t<K == Read::strided, StridedIndex, NoIndex> at{};  // Read::strided
    MINIGRAD_HD T operator()(index_t i) const {
        if constexpr (K == Read::same) {
            return data[i];
        } else if constexpr (K == Read::row) {
            return data[i % period];
        } else if constexpr (K == Read::scalar) {
            return value;
        } else {
            return data[at.offset(i)];
        }
    }
};

// g has the result's shape, dx the operand's: dx[j] = the sum of g over the positions of the
// result that read element j, the dims the operand stretches. `kept` reads g at element j's place
// (over the dims the operand keeps), `stretched` walks the `count` positions summed (over the dims
// it stretches), in row-major order. j over the operand's elements.
template <class T>
struct SumBroadcast {
    const T* g;
    T* dx;
    StridedIndex kept, stretched;
    index_t count;
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return count; }
    MINIGRAD_HD void operator()(index_t j) const {
        const index_t base = kept.offset(j);
        T acc = 0;
        for (index_t t = 0; t < count; ++t) acc += g[base + stretched.offset(t)];
        dx[j] = write(dx[j], acc, overwrite);
    }
};

// The functors this file's ops launch, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using BroadcastFunctors = Functors<SumBroadcast<T>>;

}  // namespace kernels

namespace detail {

// A shape's dims padded on the left with 1s to `ndim` (>= its own).
inline std::array<std::int64_t, Shape::max_dims> padded_dims(const Shape& s, int ndim) {
    std::array<std::int64_t, Shape::max_dims> dims{};
    for (int d = 0; d < ndim; ++d) dims[static_cast<std::size_t>(d)] = 1;
    const int offset = ndim - s.ndim();
    if (offset < 0) return dims;  // not reached; said so that g++ 12 sees the writes below stay inside dims
    for (int d = 0; d < s.ndim(); ++d) dims[static_cast<std::size_t>(offset + d)] = s[d];
    return dims;
}

// The shape of `first op other`, or a ShapeError naming the op, both arguments, their shapes and
// the first dim (counted in the result) where neither size is 1 and the sizes differ.
// The arguments are numbered first_arg and other_arg where an op takes others before them (where).
inline Shape broadcast_shapes(std::string_view op, const Shape& first, int first_arg, std::string_view first_name, const Shape& other,
                              int other_arg, std::string_view other_name) {
    const int ndim = first.ndim() > other.ndim() ? first.ndim() : other.ndim();
    const auto a = padded_dims(first, ndim), b = padded_dims(other, ndim);
    std::int64_t dims[Shape::max_dims];
    for (int d = 0; d < ndim; ++d) {
        const auto i = static_cast<std::size_t>(d);
        if (a[i] != b[i] && a[i] != 1 && b[i] != 1) {
            fail<ShapeError>("{}: argument #{} '{}' has shape {}, which does not broadcast with argument #{} '{}' of shape {} "
                             "(dimension {}: {} vs {}; sizes must be equal or one of them 1)",
                             op, other_arg, other_name, other, first_arg, first_name, first, d, b[i], a[i]);
        }
        dims[d] = a[i] == 1 ? b[i] : a[i];
    }
    return make_shape(dims, ndim);
}
inline Shape broadcast_shapes(std::string_view op, const Shape& first, std::string_view first_name, const Shape& other,
                              std::string_view other_name) {
    return broadcast_shapes(op, first, 1, first_name, other, 2, other_name);
}

// s (which broadcasts to out) read at out's indices: its strides over out's dims, 0 where it stretches.
inline kernels::StridedIndex broadcast_read(const Shape& s, const Shape& out) {
    const int nd = out.ndim();
    const auto in = padded_dims(s, nd);
    std::int64_t dims[Shape::max_dims], strides[Shape::max_dims], stride = 1;
    for (int d = nd - 1; d >= 0; --d) {
        const auto i = static_cast<std::size_t>(d);
        dims[d] = out[d];
        strides[d] = in[i] == 1 ? 0 : stride;
        stride *= in[i];
    }
    return kernels::strided_index(dims, strides, nd);
}

// Whether `s` (which broadcasts to `out`) is out's trailing dims once its leading 1s are dropped:
// then element i of out reads element i % numel(s) of it, and its gradient is a column sum.
inline bool is_trailing(const Shape& s, const Shape& out) {
    int first = 0;
    while (first < s.ndim() && s[first] == 1) ++first;
    const int kept = s.ndim() - first;
    for (int d = 0; d < kept; ++d)
        if (s[first + d] != out[out.ndim() - kept + d]) return false;
    return true;
}

inline kernels::Read read_kind(const Shape& s, const Shape& out) {
    if (s.numel() == out.numel()) return kernels::Read::same;
    return is_trailing(s, out) ? kernels::Read::row : kernels::Read::strided;
}

template <kernels::Read K, class T>
kernels::Operand<T, K> operand(const T* data, const Shape& s, const Shape& out) {
    kernels::Operand<T, K> op;
    op.data = data;
    if constexpr (K == kernels::Read::row) op.period = s.numel();
    if constexpr (K == kernels::Read::strided) op.at = broadcast_read(s, out);
    return op;
}

template <class T>
kernels::Operand<T, kernels::Read::scalar> scalar_operand(T value) {
    kernels::Operand<T, kernels::Read::scalar> op;
    op.value = value;
    return op;
}

// Calls f(operand_a, operand_b) with a and b read as cheaply as their shapes allow against the
// result's shape `out`: one of four pairings, so each op instantiates four kernels, not sixteen.
template <class T, class F>
void with_operands(const T* a, const Shape& sa, const T* b, const Shape& sb, const Shape& out, F&& f) {
    using kernels::Read;
    const Read ka = read_kind(sa, out), kb = read_kind(sb, out);
    if (ka == Read::same && kb == Read::same) return f(operand<Read::same>(a, sa, out), operand<Read::same>(b, sb, out));
    if (ka == Read::same && kb == Read::row) return f(operand<Read::same>(a, sa, out), operand<Read::row>(b, sb, out));
    if (ka == Read::row && kb == Read::same) return f(operand<Read::row>(a, sa, out), operand<Read::same>(b, sb, out));
    f(operand<Read::strided>(a, sa, out), operand<Read::strided>(b, sb, out));
}

// dx (shape s, written or added) = g (shape out, which s broadcasts to) summed over the dims s
// stretches: a copy when nothing stretched, else the backend's sum (s has one element), its column
// sum (s is out's trailing dims: a row), or SumBroadcast for any other pattern.
template <class B, class T>
void sum_to_shape(const T* g, const Shape& out, T* dx, const Shape& s, bool overwrite, int device) {
    if (s.numel() == out.numel()) {
        B::launch(s.numel(), kernels::AccumulateGrad<T>{g, dx, overwrite}, device);
    } else if (out.numel() == 0) {  // nothing was read from s: its gradient is zero
        if (overwrite) B::launch(s.numel(), kernels::Fill<T>{dx, T(0)}, device);
    } else if (s.numel() == 1) {
        B::sum(g, out.numel(), dx, T(1), overwrite, device);
    } else if (is_trailing(s, out)) {
        B::sum_rows(g, out.numel() / s.numel(), s.numel(), dx, overwrite, device);
    } else {
        // out's dims split into those s keeps (j's coordinates) and those it stretches (summed)
        const int nd = out.ndim();
        const auto in = padded_dims(s, nd);
        std::int64_t kept_dims[Shape::max_dims], kept_strides[Shape::max_dims], summed_dims[Shape::max_dims],
            summed_strides[Shape::max_dims], stride = 1, count = 1;
        int kept = 0, summed = 0;
        std::int64_t out_strides[Shape::max_dims];
        for (int d = nd - 1; d >= 0; --d) {
            out_strides[d] = stride;
            stride *= out[d];
        }
        for (int d = 0; d < nd; ++d) {
            if (in[static_cast<std::size_t>(d)] == out[d]) {
                kept_dims[kept] = out[d], kept_strides[kept++] = out_strides[d];
            } else {
                summed_dims[summed] = out[d], summed_strides[summed++] = out_strides[d];
                count *= out[d];
            }
        }
        const kernels::SumBroadcast<T> f{g, dx, kernels::strided_index(kept_dims, kept_strides, kept),
                                         kernels::strided_index(summed_dims, summed_strides, summed), count, overwrite};
        B::launch(s.numel(), f, device);
    }
}

}  // namespace detail
}  // namespace minigrad
