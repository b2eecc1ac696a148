// The largest and smallest values and where they are: max and min along a dim (values and
// indices, as torch.max(x, dim)), of the whole tensor, argmax and argmin (along a dim, or the flat
// index of the whole tensor, as PyTorch's), and topk. NaN wins both ways, as in PyTorch: max, min,
// argmax and argmin all find the first NaN. Ties go to the first index.
// A dim op sees its input as (outer, n, inner) around the dim, one index per output (outer, inner).
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>

#include "checks.hpp"
#include "reduce.hpp"

namespace minigrad {
namespace kernels {

// Whether a beats b for the largest (or the smallest) value: NaN beats every number either way
// (max and min propagate NaN, as in PyTorch); equal values do not beat, so the first one stays.
template <class T>
MINIGRAD_HD inline bool beats(T a, T b, bool largest) {
    if (a != a) return b == b;
    return largest ? a > b : a < b;
}

// x is (outer, n, inner) with n >= 1; values (may be null) and indices are (outer, inner): the
// largest (smallest) value along n and where it first occurs. o over outer * inner
template <class T, class L>
struct MaxDim {
    const T* x;
    T* values;
    L* indices;
    index_t n, inner;
    bool largest = true;
    MINIGRAD_HD index_t work_per_index() const { return n; }
    MINIGRAD_HD void operator()(index_t o) const {
        const T* base = x + (o / inner) * n * inner + o % inner;
        index_t best = 0;
        for (index_t k = 1; k < n; ++k)
            if (beats(base[k * inner], base[best * inner], largest)) best = k;
        if (values) values[o] = base[best * inner];
        indices[o] = static_cast<L>(best);
    }
};

// dy and indices are (outer, inner), dx is (outer, n, inner): dy goes to the indexed element, zero
// elsewhere, written or added; i over outer * n * inner
template <class T, class L>
struct MaxDimBackward {
    const T* dy;
    const L* indices;
    T* dx;
    index_t n, inner;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t o = (i / (n * inner)) * inner + i % inner;
        const index_t k = (i / inner) % n;
        dx[i] = write(dx[i], static_cast<index_t>(indices[o]) == k ? dy[o] : T(0), overwrite);
    }
};

// x is (n), y is () its extreme; count is () = how many elements equal y (NaN equals NaN here).
// One index: the whole tensor's max or min has a gradient shared evenly by its ties, as PyTorch's.
template <class T>
struct TieCount {
    const T* x;
    const T* y;
    T* count;
    index_t n;
    MINIGRAD_HD index_t work_per_index() const { return n; }
    MINIGRAD_HD void operator()(index_t) const {
        const T best = *y;
        T ties = 0;
        for (index_t i = 0; i < n; ++i) ties += (x[i] == best || (x[i] != x[i] && best != best)) ? T(1) : T(0);
        *count = ties;
    }
};

// x and dx are (n), y, dy and count are (): dx = dy / count where x ties y, else 0, written or
// added; i over n
template <class T>
struct TieGrad {
    const T* x;
    const T* y;
    const T* dy;
    const T* count;
    T* dx;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const {
        const T best = *y;
        const bool tie = x[i] == best || (x[i] != x[i] && best != best);
        dx[i] = write(dx[i], tie ? *dy / *count : T(0), overwrite);
    }
};

// Whether a comes before b in topk's order: NaN is the largest value, as in PyTorch's sort, so it
// comes first among the largest and last among the smallest.
template <class T>
MINIGRAD_HD inline bool ranks_before(T a, T b, bool largest) {
    const T& hi = largest ? a : b;
    const T& lo = largest ? b : a;
    return hi > lo || (hi != hi && lo == lo);
}

// x is (outer, n, inner), values and indices are (outer, k, inner): the k best along n, best first,
// ties in index order. Each row keeps its k best so far sorted, inserting after equal ones.
// o over outer * inner
template <class T, class L>
struct Topk {
    const T* x;
    T* values;
    L* indices;
    index_t n, k, inner;
    bool largest;
    MINIGRAD_HD index_t work_per_index() const { return n * (k < 8 ? k : 8); }
    MINIGRAD_HD void operator()(index_t o) const {
        const index_t outer = o / inner, in = o % inner;
        const T* row = x + outer * n * inner + in;
        T* v = values + outer * k * inner + in;
        L* at = indices + outer * k * inner + in;
        index_t filled = 0;
        for (index_t j = 0; j < n; ++j) {
            const T value = row[j * inner];
            if (filled == k && !ranks_before(value, v[(k - 1) * inner], largest)) continue;
            index_t p = filled < k ? filled++ : k - 1;  // the slot it may take, moved up past the ones it beats
            while (p > 0 && ranks_before(value, v[(p - 1) * inner], largest)) {
                v[p * inner] = v[(p - 1) * inner];
                at[p * inner] = at[(p - 1) * inner];
                --p;
            }
            v[p * inner] = value;
            at[p * inner] = static_cast<L>(j);
        }
    }
};

// dy and indices are (outer, k, inner), dx is (outer, n, inner): each row's dy goes to its k
// (distinct) indices, zero elsewhere; the row is zeroed first when overwriting. o over outer * inner
template <class T, class L>
struct TopkBackward {
    const T* dy;
    const L* indices;
    T* dx;
    index_t n, k, inner;
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return n + k; }
    MINIGRAD_HD void operator()(index_t o) const {
        const index_t outer = o / inner, in = o % inner;
        T* row = dx + outer * n * inner + in;
        if (overwrite)
            for (index_t j = 0; j < n; ++j) row[j * inner] = T(0);
        for (index_t j = 0; j < k; ++j) {
            const index_t at = outer * k * inner + j * inner + in;
            row[static_cast<index_t>(indices[at]) * inner] += dy[at];
        }
    }
};

// The functors this file's ops launch, for compiled steps; those that write indices, with indices of
// type L (kernels::Functors, backend/kernels.hpp).
template <class T>
using ExtremaFunctors = Functors<TieCount<T>, TieGrad<T>>;
template <class T, class L>
using ExtremaIndexFunctors = Functors<MaxDim<T, L>, MaxDimBackward<T, L>, Topk<T, L>, TopkBackward<T, L>>;

}  // namespace kernels

// What max(x, dim), min(x, dim) and topk give: the values, whose gradient goes to the input
// elements they came from, and where those are along the dim (int64, no gradient). A plain
// aggregate, so `auto [values, indices] = mg::max(x, 1);` works.
template <class B, class T>
struct ValuesIndices {
    Tensor<B, T> values;
    Tensor<B, std::int64_t> indices;
};

namespace detail {

// x is (outer, n, inner); indices is (outer, inner), where each value was taken along n
template <class B, class T>
struct MaxDimNode : Node<B, T> {
    DimSplit split;
    Tensor<B, std::int64_t> indices;
    const char* name;
    const char* op_name() const override { return name; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch(x.numel(),
                  kernels::MaxDimBackward<T, std::int64_t>{out.grad->data, indices.data(), dx.data, split.size, split.inner, dx.overwrite},
                  x.device);
    }
};

template <class B, class T>
ValuesIndices<B, T> extreme_dim(const char* op, const Tensor<B, T>& x, std::int64_t dim, bool keepdim, bool largest) {
    check_defined(op, x, 1, "input");
    const int d = normalize_dim(op, x.shape(), dim, 2);
    check_reducible(op, x, d);
    const auto split = split_at(x.shape(), d);
    const Shape out_shape = with_dim(x.shape(), d, keepdim ? 1 : -1);
    ValuesIndices<B, T> out{Tensor<B, T>::empty(out_shape, x.device()), Tensor<B, std::int64_t>::empty(out_shape, x.device())};
    B::launch(split.outer * split.inner,
              kernels::MaxDim<T, std::int64_t>{x.data(), out.values.data(), out.indices.data(), split.size, split.inner, largest}, x.device());
    if (wants_grad(x)) {
        auto node = std::make_shared<MaxDimNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        node->split = split;
        node->indices = out.indices;
        node->name = op;
        attach(out.values.impl(), std::move(node));
    }
    return out;
}

// x is (n), y is (); count is (), the number of ties
template <class B, class T>
struct ExtremeNode : Node<B, T> {
    Tensor<B, T> count;
    const char* name;
    unsigned saved_inputs() const override { return 1u; }
    const char* op_name() const override { return name; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch(1, kernels::TieCount<T>{x.data, out.data, count.data(), x.numel()}, x.device);
        B::launch(x.numel(), kernels::TieGrad<T>{x.data, out.data, out.grad->data, count.data(), dx.data, dx.overwrite}, x.device);
    }
};

template <class B, class T>
Tensor<B, T> extreme(const char* op, const Tensor<B, T>& x, bool largest) {
    check_defined(op, x, 1, "input");
    if (x.numel() == 0) fail<ShapeError>("{}: argument #1 'input' has shape {}, which holds no elements: there is no value to take", op, x.shape());
    auto y = Tensor<B, T>::empty(Shape{}, x.device());
    auto index = Tensor<B, std::int64_t>::empty(Shape{}, x.device());
    B::launch(1, kernels::MaxDim<T, std::int64_t>{x.data(), y.data(), index.data(), x.numel(), 1, largest}, x.device());
    if (wants_grad(x)) {
        auto node = std::make_shared<ExtremeNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        node->count = Tensor<B, T>::empty(Shape{}, x.device());
        node->name = op;
        attach(y.impl(), std::move(node));
    }
    return y;
}

template <class L, class B, class T>
Tensor<B, L> arg_extreme(const char* op, const Tensor<B, T>& x, std::int64_t dim, bool keepdim, bool largest) {
    check_defined(op, x, 1, "input");
    const int d = normalize_dim(op, x.shape(), dim, 2);
    check_reducible(op, x, d);
    const auto split = split_at(x.shape(), d);
    check_index_type<L>(op, x.shape(), d, split.size);
    auto out = Tensor<B, L>::empty(with_dim(x.shape(), d, keepdim ? 1 : -1), x.device());
    B::launch(split.outer * split.inner, kernels::MaxDim<T, L>{x.data(), nullptr, out.data(), split.size, split.inner, largest}, x.device());
    return out;
}

template <class L, class B, class T>
Tensor<B, L> arg_extreme_flat(const char* op, const Tensor<B, T>& x, bool largest) {
    check_defined(op, x, 1, "input");
    if (x.numel() == 0) fail<ShapeError>("{}: argument #1 'input' has shape {}, which holds no elements: there is no index to take", op, x.shape());
    check_index_type<L>(op, Shape{x.numel()}, 0, x.numel());
    auto out = Tensor<B, L>::empty(Shape{}, x.device());
    B::launch(1, kernels::MaxDim<T, L>{x.data(), nullptr, out.data(), x.numel(), 1, largest}, x.device());
    return out;
}

// values and indices are (outer, k, inner)
template <class B, class T>
struct TopkNode : Node<B, T> {
    DimSplit split;
    std::int64_t k;
    Tensor<B, std::int64_t> indices;
    const char* op_name() const override { return "topk"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch(split.outer * split.inner,
                  kernels::TopkBackward<T, std::int64_t>{out.grad->data, indices.data(), dx.data, split.size, k, split.inner, dx.overwrite},
                  x.device);
    }
};

}  // namespace detail

// The largest (smallest) value along a dim and where it first occurs, as torch.max(x, dim); the
// gradient goes to that element.
template <class B, class T>
ValuesIndices<B, T> max(const Tensor<B, T>& x, std::int64_t dim, bool keepdim = false) {
    return detail::extreme_dim("max", x, dim, keepdim, true);
}
template <class B, class T>
ValuesIndices<B, T> min(const Tensor<B, T>& x, std::int64_t dim, bool keepdim = false) {
    return detail::extreme_dim("min", x, dim, keepdim, false);
}

// The largest (smallest) element of the whole tensor, shape []; its gradient is shared evenly by
// the elements equal to it, as PyTorch's.
template <class B, class T>
Tensor<B, T> max(const Tensor<B, T>& x) {
    return detail::extreme("max", x, true);
}
template <class B, class T>
Tensor<B, T> min(const Tensor<B, T>& x) {
    return detail::extreme("min", x, false);
}

// Index of the first largest (smallest) value along a dim, of type L (int64 as in PyTorch); no gradient.
template <std::integral L = std::int64_t, class B, class T>
Tensor<B, L> argmax(const Tensor<B, T>& x, std::int64_t dim, bool keepdim = false) {
    return detail::arg_extreme<L>("argmax", x, dim, keepdim, true);
}
template <std::integral L = std::int64_t, class B, class T>
Tensor<B, L> argmin(const Tensor<B, T>& x, std::int64_t dim, bool keepdim = false) {
    return detail::arg_extreme<L>("argmin", x, dim, keepdim, false);
}

// The flat index (in row-major order) of the first largest (smallest) element, shape [], as
// torch.argmax(x). For each row of a matrix, use argmax(x, 1).
template <std::integral L = std::int64_t, class B, class T>
Tensor<B, L> argmax(const Tensor<B, T>& x) {
    return detail::arg_extreme_flat<L>("argmax", x, true);
}
template <std::integral L = std::int64_t, class B, class T>
Tensor<B, L> argmin(const Tensor<B, T>& x) {
    return detail::arg_extreme_flat<L>("argmin", x, false);
}

// The k largest (smallest, when !largest) values along dim, best first, and their indices, as
// torch.topk(x, k, dim, largest, sorted=True): equal values come in index order. The gradient goes
// to the elements taken.
template <class B, class T>
ValuesIndices<B, T> topk(const Tensor<B, T>& x, std::int64_t k, std::int64_t dim = -1, bool largest = true) {
    detail::check_defined("topk", x, 1, "input");
    const int d = detail::normalize_dim("topk", x.shape(), dim, 3);
    const auto split = detail::split_at(x.shape(), d);
    if (k < 0 || k > split.size) {
        detail::fail<ValueError>("topk: argument #2 'k' is {}, out of range for dim {} of size {} (input shape {}); expected 0 <= k <= {}", k, d,
                                 split.size, x.shape(), split.size);
    }
    const Shape out_shape = x.ndim() == 0 ? Shape{} : detail::with_dim(x.shape(), d, k);
    ValuesIndices<B, T> out{Tensor<B, T>::empty(out_shape, x.device()), Tensor<B, std::int64_t>::empty(out_shape, x.device())};
    if (k > 0)
        B::launch(split.outer * split.inner,
                  kernels::Topk<T, std::int64_t>{x.data(), out.values.data(), out.indices.data(), split.size, k, split.inner, largest}, x.device());
    if (detail::wants_grad(x)) {
        auto node = std::make_shared<detail::TopkNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        node->split = split;
        node->k = k;
        node->indices = out.indices;
        detail::attach(out.values.impl(), std::move(node));
    }
    return out;
}

}  // namespace minigrad
