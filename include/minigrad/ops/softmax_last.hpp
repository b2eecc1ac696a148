// softmax along the last dimension, for nn::Softmax: x is viewed as (rows, cols) with cols its last
// dimension. A stand-in until softmax(x, dim) lands (ops/softmax_dim.hpp); then nn::Softmax should
// call that and this file go.
#pragma once

#include <memory>

#include "checks.hpp"

namespace minigrad {
namespace kernels {

// x, y are (rows, cols); r over rows. y = e^(x - max) / sum(e^(x - max)), the max taken out first
// so that no exponential overflows.
template <class T>
struct SoftmaxRowsForward {
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
        const T inv_sum = T(1) / team.sum(sum);
        for (index_t c = lane; c < cols; c += Lanes) y[r * cols + c] = kernels::exp(xr[c] - max) * inv_sum;
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

// y (the forward output), dy, dx are (rows, cols); r over rows.
// d/dx_j of sum_k dy_k y_k = y_j (dy_j - sum_k dy_k y_k)
template <class T>
struct SoftmaxRowsBackward {
    const T* y;
    const T* dy;
    T* dx;
    index_t cols;
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return cols; }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team& team) const {
        T dot = 0;
        for (index_t c = lane; c < cols; c += Lanes) dot += dy[r * cols + c] * y[r * cols + c];
        dot = team.sum(dot);
        for (index_t c = lane; c < cols; c += Lanes) {
            const index_t i = r * cols + c;
            dx[i] = write(dx[i], y[i] * (dy[i] - dot), overwrite);
        }
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

}  // namespace kernels

namespace detail {

template <class B, class T>
struct SoftmaxRowsNode : Node<B, T> {
    const char* op_name() const override { return "softmax"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        const auto cols = x.shape[x.shape.ndim() - 1];
        B::launch_rows(x.numel() / cols, cols, kernels::SoftmaxRowsBackward<T>{out.data, out.grad->data, dx.data, cols, dx.overwrite}, x.device);
    }
};

// x is (..., cols) with at least one dimension, y has x's shape
template <class B, class T>
Tensor<B, T> softmax_rows(const Tensor<B, T>& x) {
    require_floating<T>();
    check_defined("softmax", x, 1, "input");
    if (x.ndim() == 0) fail<ShapeError>("softmax: argument #1 'input' has shape {}, expected at least one dimension", x.shape());
    auto y = Tensor<B, T>::empty(x.shape(), x.device());
    const auto cols = x.size(-1);
    if (cols == 0 || x.numel() == 0) return y;
    B::launch_rows(x.numel() / cols, cols, kernels::SoftmaxRowsForward<T>{x.data(), y.data(), cols}, x.device());
    if (wants_grad(x)) {
        auto node = std::make_shared<SoftmaxRowsNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        attach(y.impl(), std::move(node));
    }
    return y;
}

}  // namespace detail
}  // namespace minigrad
