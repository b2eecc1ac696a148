// sum and mean of every element, to a scalar (shape []), and along one dim with keepdim as in
// PyTorch; var and std (unbiased or not), whole and along a dim. A dim op sees its input as (outer,
// n, inner) around the dim and runs one index per output element, (outer, inner), looping over the
// n values it reduces. The largest and smallest values and their indices are in ops/extrema.hpp.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>

#include "checks.hpp"
#include "elementwise.hpp"
#include "unary.hpp"

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

// The functors this file's ops launch, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using ReduceFunctors = Functors<SumDim<T>, SumDimBackward<T>>;

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

namespace detail {

// sum((x - mean)^2) / (n - 1 if unbiased else n), whole (dim < 0) or along dim; written with the ops
// above so that its gradient is theirs. n - 1 = 0 gives NaN, as in PyTorch.
template <class B, class T>
Tensor<B, T> variance(const char* op, const Tensor<B, T>& x, int dim, bool unbiased, bool keepdim) {
    const std::int64_t n = dim < 0 ? x.numel() : split_at(x.shape(), dim).size;
    if (n == 0) fail<ShapeError>("{}: argument #1 'input' has shape {}, which holds no elements to take the variance of", op, x.shape());
    const auto centred = dim < 0 ? x - mean(x) : x - mean(x, dim, true);
    const auto squares = centred * centred;
    const T count = static_cast<T>(unbiased ? n - 1 : n);
    return (dim < 0 ? sum(squares) : sum(squares, dim, keepdim)) / count;
}

}  // namespace detail

// The variance of every element, as torch.var(x, unbiased): unbiased divides by n - 1. The
// number-free call var(x) and var(x, false) choose this form; var(x, 1) is the one along dim 1.
template <class B, class T, std::same_as<bool> Unbiased = bool>
Tensor<B, T> var(const Tensor<B, T>& x, Unbiased unbiased = true) {
    detail::require_floating<T>();
    detail::check_defined("var", x, 1, "input");
    return detail::variance("var", x, -1, unbiased, false);
}
template <class B, class T, std::same_as<bool> Unbiased = bool>
Tensor<B, T> std(const Tensor<B, T>& x, Unbiased unbiased = true) {
    detail::require_floating<T>();
    detail::check_defined("std", x, 1, "input");
    return sqrt(detail::variance("std", x, -1, unbiased, false));
}

// Along one dim, as torch.var(x, dim, unbiased, keepdim).
template <class B, class T>
Tensor<B, T> var(const Tensor<B, T>& x, std::int64_t dim, bool unbiased = true, bool keepdim = false) {
    detail::require_floating<T>();
    detail::check_defined("var", x, 1, "input");
    return detail::variance("var", x, detail::normalize_dim("var", x.shape(), dim, 2), unbiased, keepdim);
}
template <class B, class T>
Tensor<B, T> std(const Tensor<B, T>& x, std::int64_t dim, bool unbiased = true, bool keepdim = false) {
    detail::require_floating<T>();
    detail::check_defined("std", x, 1, "input");
    return sqrt(detail::variance("std", x, detail::normalize_dim("std", x.shape(), dim, 2), unbiased, keepdim));
}
}  // namespace minigrad
