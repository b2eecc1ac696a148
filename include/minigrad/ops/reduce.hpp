// sum and mean of every element, to a scalar (shape []); sum, mean, max and argmax along one dim,
// with keepdim as in PyTorch; argmax of each row of a matrix. A dim op sees its input as (outer, n, inner) around the dim and runs
// one index per output element, (outer, inner), looping over the n values it reduces.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>

#include "checks.hpp"

namespace minigrad {
namespace kernels {

// x is (outer, n, inner), y is (outer, inner) = scale * sum over n; o over outer * inner
template <class T>
struct SumDim {
    const T* x;
    T* y;
    index_t n, inner;
    T scale;
    MINIGRAD_HD index_t work_per_index() const { return n; }
    MINIGRAD_HD void operator()(index_t o) const {
        const T* base = x + (o / inner) * n * inner + o % inner;
        T acc = 0;
        for (index_t k = 0; k < n; ++k) acc += base[k * inner];
        y[o] = acc * scale;
    }
};

// dy is (outer, inner), dx is (outer, n, inner): dx = scale * dy along n, written or added;
// i over outer * n * inner
template <class T>
struct SumDimBackward {
    const T* dy;
    T* dx;
    index_t n, inner;
    T scale;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t o = (i / (n * inner)) * inner + i % inner;
        dx[i] = write(dx[i], dy[o] * scale, overwrite);
    }
};

// x is (outer, n, inner) with n >= 1; values (may be null) and indices are (outer, inner): the
// largest value along n and where it first occurs. NaN counts as the largest (the first NaN wins),
// as in PyTorch. o over outer * inner
template <class T, class L>
struct MaxDim {
    const T* x;
    T* values;
    L* indices;
    index_t n, inner;
    MINIGRAD_HD index_t work_per_index() const { return n; }
    MINIGRAD_HD void operator()(index_t o) const {
        const T* base = x + (o / inner) * n * inner + o % inner;
        index_t best = 0;
        for (index_t k = 1; k < n; ++k) {
            const T v = base[k * inner], b = base[best * inner];
            if (v > b || (v != v && b == b)) best = k;
        }
        if (values) values[o] = base[best * inner];
        indices[o] = static_cast<L>(best);
    }
};

// dy and indices are (outer, inner), dx is (outer, n, inner): dy goes to the first maximum, zero
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

// x is (rows, cols), out is (rows); r over rows. Ties go to the first maximum, as in PyTorch.
template <class T, class L>
struct ArgmaxRows {
    const T* x;
    L* out;
    index_t cols;
    MINIGRAD_HD index_t work_per_index() const { return cols; }
    MINIGRAD_HD void operator()(index_t r) const {
        // NaN counts as the largest value, as in PyTorch: the first NaN wins.
        index_t best = 0;
        for (index_t c = 1; c < cols; ++c) {
            const T v = x[r * cols + c], b = x[r * cols + best];
            if (v > b || (v != v && b == b)) best = c;
        }
        out[r] = static_cast<L>(best);
    }
};

// The functors this file's ops launch, for compiled steps; those that write indices, with indices of
// type L (kernels::Functors, backend/kernels.hpp).
template <class T>
using ReduceFunctors = Functors<SumDim<T>, SumDimBackward<T>>;
template <class T, class L>
using ReduceIndexFunctors = Functors<MaxDim<T, L>, MaxDimBackward<T, L>, ArgmaxRows<T, L>>;

}  // namespace kernels

namespace detail {

// x is (n), y is () = scale * sum(x)
template <class B, class T>
struct SumNode : Node<B, T> {
    T scale;
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch(x.numel(), kernels::BroadcastScalarGrad<T>{out.grad->data, dx.data, scale, dx.overwrite}, x.device);
    }
};

template <class B, class T>
Tensor<B, T> scaled_sum(const Tensor<B, T>& x, T scale) {
    auto y = Tensor<B, T>::empty(Shape{}, x.device());
    B::sum(x.data(), x.numel(), y.data(), scale, true, x.device());
    if (wants_grad(x)) {
        auto node = std::make_shared<SumNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        node->scale = scale;
        attach(y.impl(), std::move(node));
    }
    return y;
}

// x is (outer, n, inner), y is (outer, inner) (any keepdim shape of it)
template <class B, class T>
struct SumDimNode : Node<B, T> {
    DimSplit split;
    T scale;
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch(x.numel(), kernels::SumDimBackward<T>{out.grad->data, dx.data, split.size, split.inner, scale, dx.overwrite}, x.device);
    }
};

template <class B, class T>
Tensor<B, T> scaled_sum_dim(const Tensor<B, T>& x, int dim, bool keepdim, T scale) {
    const auto split = split_at(x.shape(), dim);
    auto y = Tensor<B, T>::empty(with_dim(x.shape(), dim, keepdim ? 1 : -1), x.device());
    B::launch(split.outer * split.inner, kernels::SumDim<T>{x.data(), y.data(), split.size, split.inner, scale}, x.device());
    if (wants_grad(x)) {
        auto node = std::make_shared<SumDimNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        node->split = split;
        node->scale = scale;
        attach(y.impl(), std::move(node));
    }
    return y;
}

// x is (outer, n, inner); indices is (outer, inner), the first maximum along n
template <class B, class T>
struct MaxDimNode : Node<B, T> {
    DimSplit split;
    Tensor<B, std::int64_t> indices;
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch(x.numel(),
                  kernels::MaxDimBackward<T, std::int64_t>{out.grad->data, indices.data(), dx.data, split.size, split.inner, dx.overwrite},
                  x.device);
    }
};

template <class B, class T>
void check_reducible(const char* op, const Tensor<B, T>& x, int dim) {
    if (x.ndim() > 0 && x.size(dim) == 0) {
        fail<ShapeError>("{}: argument #1 'input' has shape {}, whose dim {} is empty: there is no value to take", op, x.shape(), dim);
    }
}

}  // namespace detail

template <class B, class T>
Tensor<B, T> sum(const Tensor<B, T>& x) {
    detail::check_defined("sum", x, 1, "input");
    return detail::scaled_sum(x, T(1));
}

template <class B, class T>
Tensor<B, T> mean(const Tensor<B, T>& x) {
    detail::require_floating<T>();
    detail::check_defined("mean", x, 1, "input");
    if (x.numel() == 0) detail::fail<ShapeError>("mean: argument #1 'input' has shape {}, which holds no elements", x.shape());
    return detail::scaled_sum(x, T(1) / static_cast<T>(x.numel()));
}

// Along one dim (negative counts from the end); keepdim keeps it with size 1.
template <class B, class T>
Tensor<B, T> sum(const Tensor<B, T>& x, std::int64_t dim, bool keepdim = false) {
    detail::check_defined("sum", x, 1, "input");
    const int d = detail::normalize_dim("sum", x.shape(), dim, 2);
    return detail::scaled_sum_dim(x, d, keepdim, T(1));
}

template <class B, class T>
Tensor<B, T> mean(const Tensor<B, T>& x, std::int64_t dim, bool keepdim = false) {
    detail::require_floating<T>();
    detail::check_defined("mean", x, 1, "input");
    const int d = detail::normalize_dim("mean", x.shape(), dim, 2);
    detail::check_reducible("mean", x, d);
    const auto n = detail::split_at(x.shape(), d).size;
    return detail::scaled_sum_dim(x, d, keepdim, T(1) / static_cast<T>(n));
}

// The largest value along a dim; its gradient goes to the first maximum, as the values' index.
template <class B, class T>
Tensor<B, T> max(const Tensor<B, T>& x, std::int64_t dim, bool keepdim = false) {
    detail::check_defined("max", x, 1, "input");
    const int d = detail::normalize_dim("max", x.shape(), dim, 2);
    detail::check_reducible("max", x, d);
    const auto split = detail::split_at(x.shape(), d);
    const Shape out_shape = detail::with_dim(x.shape(), d, keepdim ? 1 : -1);
    auto y = Tensor<B, T>::empty(out_shape, x.device());
    auto indices = Tensor<B, std::int64_t>::empty(out_shape, x.device());
    B::launch(split.outer * split.inner, kernels::MaxDim<T, std::int64_t>{x.data(), y.data(), indices.data(), split.size, split.inner},
              x.device());
    if (detail::wants_grad(x)) {
        auto node = std::make_shared<detail::MaxDimNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        node->split = split;
        node->indices = std::move(indices);
        detail::attach(y.impl(), std::move(node));
    }
    return y;
}

// Index of the largest value in each row of a matrix (no gradient); x is (rows, cols), result is (rows)
template <class L = std::int32_t, class B, class T>
Tensor<B, L> argmax(const Tensor<B, T>& x) {
    detail::check_defined("argmax", x, 1, "input");
    detail::check_ndim("argmax", x, 1, "input", 2, "a matrix [rows, classes]");
    if (x.size(1) == 0) detail::fail<ShapeError>("argmax: argument #1 'input' has shape {}, expected at least one column", x.shape());
    detail::check_index_type<L>("argmax", x.shape(), 1, x.size(1));
    auto out = Tensor<B, L>::empty(Shape{x.size(0)}, x.device());
    B::launch(x.size(0), kernels::ArgmaxRows<T, L>{x.data(), out.data(), x.size(1)}, x.device());
    return out;
}

// Index of the first largest value along a dim (no gradient), of type L (int64 as in PyTorch).
template <std::integral L = std::int64_t, class B, class T>
Tensor<B, L> argmax(const Tensor<B, T>& x, std::int64_t dim, bool keepdim = false) {
    detail::check_defined("argmax", x, 1, "input");
    const int d = detail::normalize_dim("argmax", x.shape(), dim, 2);
    detail::check_reducible("argmax", x, d);
    const auto split = detail::split_at(x.shape(), d);
    detail::check_index_type<L>("argmax", x.shape(), d, split.size);
    auto out = Tensor<B, L>::empty(detail::with_dim(x.shape(), d, keepdim ? 1 : -1), x.device());
    B::launch(split.outer * split.inner, kernels::MaxDim<T, L>{x.data(), nullptr, out.data(), split.size, split.inner}, x.device());
    return out;
}

}  // namespace minigrad
