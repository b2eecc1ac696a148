// log_softmax and argmax along the last axis of a (rows, classes) matrix: the per-row functors both
// backends launch, the forward, and the backward rule. The losses built on a softmax
// (cross_entropy, nll_loss) are in ops/cross_entropy.hpp.
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

// Index of the largest value in each row (no gradient); x is (rows, cols), result is (rows)
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

}  // namespace minigrad
