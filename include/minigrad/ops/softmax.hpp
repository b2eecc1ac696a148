// log_softmax along the last axis of a (rows, classes) matrix (the per-row functors both backends
// launch, the forward, and the backward rule), then softmax and log_softmax along any dim. The
// losses built on a softmax (cross_entropy, nll_loss) are in ops/cross_entropy.hpp; argmax is with
// the other reductions, in ops/reduce.hpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>

#include "checks.hpp"

namespace minigrad::kernels {

// x, y are (rows, cols); r over rows
template <class T>
struct LogSoftmaxForward {
    const T* x;
    T* y;
    index_t cols;
    MINIGRAD_HD index_t work_per_index() const { return cols; }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team& team) const {
        const T* xr = x + r * cols;
        T max = xr[lane < cols ? lane : 0];
        for (index_t c = lane + Lanes; c < cols; c += Lanes) max = xr[c] > max ? xr[c] : max;
        max = team.max(max);
        T sum = 0;
        for (index_t c = lane; c < cols; c += Lanes) sum += kernels::exp(xr[c] - max);
        const T lse = max + std::log(team.sum(sum));
        for (index_t c = lane; c < cols; c += Lanes) y[r * cols + c] = xr[c] - lse;
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

// y (the forward output), dy, dx are (rows, cols); r over rows.
// d/dx_j of sum_k dy_k * (x_k - lse) = dy_j - softmax_j * sum_k dy_k
template <class T>
struct LogSoftmaxBackward {
    const T* y;
    const T* dy;
    T* dx;
    index_t cols;
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return cols; }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team& team) const {
        T total = 0;
        for (index_t c = lane; c < cols; c += Lanes) total += dy[r * cols + c];
        total = team.sum(total);
        for (index_t c = lane; c < cols; c += Lanes) {
            const index_t i = r * cols + c;
            dx[i] = write(dx[i], dy[i] - kernels::exp(y[i]) * total, overwrite);
        }
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

}  // namespace minigrad::kernels

namespace minigrad {
namespace detail {

// x, y are (rows, cols)
template <class B, class T>
struct LogSoftmaxNode : Node<B, T> {
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        const auto rows = x.shape[0], cols = x.shape[1];
        B::launch_rows(rows, cols, kernels::LogSoftmaxBackward<T>{out.data, out.grad->data, dx.data, cols, dx.overwrite}, x.device);
    }
};

}  // namespace detail

// y[r] = x[r] - logsumexp(x[r]); x is (rows, cols)
template <class B, class T>
Tensor<B, T> log_softmax(const Tensor<B, T>& x) {
    detail::require_floating<T>();
    detail::check_defined("log_softmax", x, 1, "input");
    detail::check_ndim("log_softmax", x, 1, "input", 2, "a matrix [rows, classes]");
    if (x.size(1) == 0) detail::fail<ShapeError>("log_softmax: argument #1 'input' has shape {}, expected at least one column", x.shape());
    auto y = Tensor<B, T>::empty(x.shape(), x.device());
    B::launch_rows(x.size(0), x.size(1), kernels::LogSoftmaxForward<T>{x.data(), y.data(), x.size(1)}, x.device());
    if (detail::wants_grad(x)) {
        auto node = std::make_shared<detail::LogSoftmaxNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        detail::attach(y.impl(), std::move(node));
    }
    return y;
}

}  // namespace minigrad

// ---- along any dim ----------------------------------------------------------------------------
// softmax(x, dim) and log_softmax(x, dim), as PyTorch's. The input is seen as (outer, n, inner)
// around the dim; one index per (outer, inner) column does the n values of its column. log_softmax
// of a matrix along its last dim goes to log_softmax(x) above, whose row kernels are the fast path
// the existing models use.

namespace minigrad {
namespace kernels {

// x, y are (outer, n, inner) with n >= 1; y = softmax (or log-softmax when `log`) along n.
// o over outer * inner
template <class T>
struct SoftmaxDimForward {
    const T* x;
    T* y;
    index_t n, inner;
    bool log;
    MINIGRAD_HD index_t work_per_index() const { return n; }
    MINIGRAD_HD void operator()(index_t o) const {
        const index_t base = (o / inner) * n * inner + o % inner;
        T max = x[base];
        for (index_t k = 1; k < n; ++k) max = x[base + k * inner] > max ? x[base + k * inner] : max;
        T sum = 0;
        for (index_t k = 0; k < n; ++k) sum += kernels::exp(x[base + k * inner] - max);
        if (log) {
            const T lse = max + std::log(sum);
            for (index_t k = 0; k < n; ++k) y[base + k * inner] = x[base + k * inner] - lse;
        } else {
            const T inv = T(1) / sum;
            for (index_t k = 0; k < n; ++k) y[base + k * inner] = kernels::exp(x[base + k * inner] - max) * inv;
        }
    }
};

// y (the forward output), dy, dx are (outer, n, inner); o over outer * inner.
// softmax: dx_k = y_k (dy_k - sum_j dy_j y_j); log-softmax: dx_k = dy_k - e^(y_k) sum_j dy_j
template <class T>
struct SoftmaxDimBackward {
    const T* y;
    const T* dy;
    T* dx;
    index_t n, inner;
    bool log;
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return n; }
    MINIGRAD_HD void operator()(index_t o) const {
        const index_t base = (o / inner) * n * inner + o % inner;
        T total = 0;
        for (index_t k = 0; k < n; ++k) total += log ? dy[base + k * inner] : dy[base + k * inner] * y[base + k * inner];
        for (index_t k = 0; k < n; ++k) {
            const index_t i = base + k * inner;
            const T g = log ? dy[i] - kernels::exp(y[i]) * total : y[i] * (dy[i] - total);
            dx[i] = write(dx[i], g, overwrite);
        }
    }
};

// The functors this file's ops launch, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using SoftmaxFunctors = Functors<LogSoftmaxForward<T>, LogSoftmaxBackward<T>, SoftmaxDimForward<T>, SoftmaxDimBackward<T>>;

}  // namespace kernels

namespace detail {

template <class B, class T>
struct SoftmaxDimNode : Node<B, T> {
    DimSplit split;
    bool log;
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch(split.outer * split.inner,
                  kernels::SoftmaxDimBackward<T>{out.data, out.grad->data, dx.data, split.size, split.inner, log, dx.overwrite}, x.device);
    }
};

template <class B, class T>
Tensor<B, T> softmax_along(const char* op, const Tensor<B, T>& x, std::int64_t dim, bool log) {
    require_floating<T>();
    check_defined(op, x, 1, "input");
    const int d = normalize_dim(op, x.shape(), dim, 2);
    if (log && x.ndim() == 2 && d == 1 && x.size(1) > 0) return log_softmax(x);
    const auto split = split_at(x.shape(), d);
    auto y = Tensor<B, T>::empty(x.shape(), x.device());
    if (split.size > 0) B::launch(split.outer * split.inner, kernels::SoftmaxDimForward<T>{x.data(), y.data(), split.size, split.inner, log}, x.device());
    if (wants_grad(x)) {
        auto node = std::make_shared<SoftmaxDimNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        node->split = split;
        node->log = log;
        attach(y.impl(), std::move(node));
    }
    return y;
}

}  // namespace detail

// e^x / sum(e^x) along dim (negative counts from the end)
template <class B, class T>
Tensor<B, T> softmax(const Tensor<B, T>& x, std::int64_t dim) {
    return detail::softmax_along("softmax", x, dim, false);
}

// x - logsumexp(x) along dim; log_softmax(x) above is the matrix, last-dim form
template <class B, class T>
Tensor<B, T> log_softmax(const Tensor<B, T>& x, std::int64_t dim) {
    return detail::softmax_along("log_softmax", x, dim, true);
}

}  // namespace minigrad
