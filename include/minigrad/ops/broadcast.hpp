// Broadcasting, as NumPy and PyTorch have it: shapes are aligned on the right and a dimension of
// size 1 stretches to the other side's size. Here: the result shape (or the error naming both
// shapes), how an elementwise kernel reads an operand at an index of the result, and the gradient's
// way back, a sum over the stretched dimensions down to the operand's own shape.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "checks.hpp"

namespace minigrad {
namespace kernels {

// How an elementwise kernel reads one operand at index i of the result. Chosen once per launch on
// the host, so the common cases pay no index arithmetic: `same` (the operand has the result's
// elements), `row` (the operand is the result's trailing dims, repeated: a bias row, or one element),
// `scalar` (a number, the tensor-scalar forms), `strided` (any other broadcast).
enum class Read { same, row, scalar, strided };

// out_dims are the result's dims padded on the left with 1s to four; strides are the operand's
// strides over them, 0 along a dim the operand stretches. i over the result's elements.
template <class T, Read K>
struct Operand {
    const T* data = nullptr;
    T value{};  // Read::scalar
    index_t period = 1;  // Read::row
    index_t out_dims[4]{};  // Read::strided
    index_t strides[4]{};
    MINIGRAD_HD T operator()(index_t i) const {
        if constexpr (K == Read::same) {
            return data[i];
        } else if constexpr (K == Read::row) {
            return data[i % period];
        } else if constexpr (K == Read::scalar) {
            return value;
        } else {
            index_t offset = 0;
            for (int d = 3; d >= 0; --d) {
                offset += (i % out_dims[d]) * strides[d];
                i /= out_dims[d];
            }
            return data[offset];
        }
    }
};

// g has the result's shape (out_dims), dx the operand's (in_dims; both padded on the left with 1s
// to four): dx[j] = the sum of g over the positions of the result that read element j, i.e. along
// every dim where in_dims is 1 and out_dims is not. j over the operand's elements.
template <class T>
struct SumBroadcast {
    const T* g;
    T* dx;
    index_t in_dims[4];
    index_t out_dims[4];
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const {
        index_t n = 1;
        for (int d = 0; d < 4; ++d) n *= in_dims[d] == 1 ? out_dims[d] : 1;
        return n;
    }
    MINIGRAD_HD void operator()(index_t j) const {
        index_t stride[4], count[4];
        stride[3] = 1;
        for (int d = 2; d >= 0; --d) stride[d] = stride[d + 1] * out_dims[d + 1];
        index_t base = 0, rest = j;
        for (int d = 3; d >= 0; --d) {
            base += (rest % in_dims[d]) * stride[d];
            rest /= in_dims[d];
            count[d] = in_dims[d] == 1 ? out_dims[d] : 1;
        }
        T acc = 0;
        for (index_t k0 = 0; k0 < count[0]; ++k0)
            for (index_t k1 = 0; k1 < count[1]; ++k1)
                for (index_t k2 = 0; k2 < count[2]; ++k2)
                    for (index_t k3 = 0; k3 < count[3]; ++k3)
                        acc += g[base + k0 * stride[0] + k1 * stride[1] + k2 * stride[2] + k3 * stride[3]];
        dx[j] = write(dx[j], acc, overwrite);
    }
};

// The functors this file's ops launch, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using BroadcastFunctors = Functors<SumBroadcast<T>>;

}  // namespace kernels

namespace detail {

// A shape's dims padded on the left with 1s to four.
inline std::array<std::int64_t, 4> padded_dims(const Shape& s) {
    std::array<std::int64_t, 4> dims{1, 1, 1, 1};
    for (int d = 0; d < s.ndim(); ++d) dims[static_cast<std::size_t>(4 - s.ndim() + d)] = s[d];
    return dims;
}

// The shape of `first op other`, or a ShapeError naming the op, both arguments, their shapes and
// the first dim (counted in the result) where neither size is 1 and the sizes differ.
inline Shape broadcast_shapes(std::string_view op, const Shape& first, std::string_view first_name, const Shape& other,
                              std::string_view other_name) {
    const int ndim = first.ndim() > other.ndim() ? first.ndim() : other.ndim();
    const auto a = padded_dims(first), b = padded_dims(other);
    std::int64_t dims[4];
    for (int d = 4 - ndim; d < 4; ++d) {
        const auto i = static_cast<std::size_t>(d);
        if (a[i] != b[i] && a[i] != 1 && b[i] != 1) {
            fail<ShapeError>("{}: argument #2 '{}' has shape {}, which does not broadcast with argument #1 '{}' of shape {} "
                             "(dimension {}: {} vs {}; sizes must be equal or one of them 1)",
                             op, other_name, other, first_name, first, d - (4 - ndim), b[i], a[i]);
        }
        dims[i] = a[i] == 1 ? b[i] : a[i];
    }
    switch (ndim) {
        case 0: return Shape{};
        case 1: return Shape{dims[3]};
        case 2: return Shape{dims[2], dims[3]};
        case 3: return Shape{dims[1], dims[2], dims[3]};
        default: return Shape{dims[0], dims[1], dims[2], dims[3]};
    }
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
    if constexpr (K == kernels::Read::strided) {
        const auto in = padded_dims(s), dims = padded_dims(out);
        std::int64_t stride = 1;
        for (int d = 3; d >= 0; --d) {
            const auto i = static_cast<std::size_t>(d);
            op.out_dims[d] = dims[i];
            op.strides[d] = in[i] == 1 ? 0 : stride;
            stride *= in[i];
        }
    }
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
        const auto in = padded_dims(s), dims = padded_dims(out);
        kernels::SumBroadcast<T> f{g, dx, {in[0], in[1], in[2], in[3]}, {dims[0], dims[1], dims[2], dims[3]}, overwrite};
        B::launch(s.numel(), f, device);
    }
}

}  // namespace detail
}  // namespace minigrad
