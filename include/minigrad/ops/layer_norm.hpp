// layer_norm(x, weight, bias, eps): torch.nn.functional.layer_norm over the last dimension. Each
// row of x (its last dimension) is normalised by its mean and biased variance, then scaled by
// weight and shifted by bias: y = (x - mean) / sqrt(var + eps) * weight + bias. The forward pass
// keeps each row's mean and rstd = 1 / sqrt(var + eps) for the backward rule.
#pragma once

#include <cmath>
#include <memory>

#include "checks.hpp"

namespace minigrad {
namespace kernels {

// x, y are (rows, cols), weight and bias (cols), mean and rstd (rows); r over rows
template <class T>
struct LayerNormForward {
    const T* x;
    const T* weight;
    const T* bias;
    T* y;
    T* mean;
    T* rstd;
    index_t cols;
    T eps;
    MINIGRAD_HD index_t work_per_index() const { return cols; }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team& team) const {
        const T* xr = x + r * cols;
        T sum = 0;
        for (index_t c = lane; c < cols; c += Lanes) sum += xr[c];
        const T m = team.sum(sum) / static_cast<T>(cols);
        T squares = 0;  // around the mean, not E[x^2] - m^2, which cancels badly
        for (index_t c = lane; c < cols; c += Lanes) squares += (xr[c] - m) * (xr[c] - m);
        const T s = T(1) / std::sqrt(team.sum(squares) / static_cast<T>(cols) + eps);
        for (index_t c = lane; c < cols; c += Lanes) y[r * cols + c] = (xr[c] - m) * s * weight[c] + bias[c];
        if (lane == 0) {
            mean[r] = m;
            rstd[r] = s;
        }
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

// x, dy, dx are (rows, cols), weight (cols), mean and rstd (rows); r over rows. With
// xhat = (x - mean) rstd and g = dy weight:  dx = rstd (g - mean(g) - xhat mean(g xhat)).
template <class T>
struct LayerNormBackward {
    const T* x;
    const T* weight;
    const T* mean;
    const T* rstd;
    const T* dy;
    T* dx;
    index_t cols;
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return cols; }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team& team) const {
        const T m = mean[r], s = rstd[r];
        T g_sum = 0, g_xhat_sum = 0;
        for (index_t c = lane; c < cols; c += Lanes) {
            const T g = dy[r * cols + c] * weight[c];
            g_sum += g;
            g_xhat_sum += g * (x[r * cols + c] - m) * s;
        }
        const T g_mean = team.sum(g_sum) / static_cast<T>(cols);
        const T g_xhat_mean = team.sum(g_xhat_sum) / static_cast<T>(cols);
        for (index_t c = lane; c < cols; c += Lanes) {
            const index_t i = r * cols + c;
            const T xhat = (x[i] - m) * s;
            dx[i] = write(dx[i], s * (dy[i] * weight[c] - g_mean - xhat * g_xhat_mean), overwrite);
        }
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

// x, dy are (rows, cols), mean and rstd (rows); out is (chunks, cols): out[c, j] = the sum over the
// rows of chunk c (chunk_rows rows each, the last fewer) of dy_rj xhat_rj, in row order
// (deterministic, no atomics), written or added; i over chunks * cols, neighbouring threads on
// neighbouring columns. With one chunk out is dweight; with more (a GPU, which needs more threads
// than a small model has columns: B::column_chunks) a partial whose rows sum_rows adds.
template <class T>
struct LayerNormWeightBackward {
    const T* x;
    const T* mean;
    const T* rstd;
    const T* dy;
    T* out;
    index_t rows, cols, chunk_rows;
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return chunk_rows; }
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t j = i % cols, begin = i / cols * chunk_rows;
        const index_t end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
        T sum = 0;
        for (index_t r = begin; r < end; ++r) sum += dy[r * cols + j] * (x[r * cols + j] - mean[r]) * rstd[r];
        out[i] = write(out[i], sum, overwrite);
    }
};

// The functors this file's ops launch, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using LayerNormFunctors = Functors<LayerNormForward<T>, LayerNormBackward<T>, LayerNormWeightBackward<T>>;

}  // namespace kernels

namespace detail {

template <class B, class T>
struct LayerNormNode : Node<B, T> {
    Tensor<B, T> mean, rstd;  // (rows), from the forward pass
    unsigned saved_inputs() const override { return 0b011; }  // x and weight; the bias is not read
    const char* op_name() const override { return "layer_norm"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto& weight = *this->inputs[1];
        auto& bias = *this->inputs[2];
        const auto cols = weight.numel(), rows = x.numel() / cols;
        const T* dy = out.grad->data;
        if (x.requires_grad) {
            auto dx = grad_slot(x);
            B::launch_rows(rows, cols, kernels::LayerNormBackward<T>{x.data, weight.data, mean.data(), rstd.data(), dy, dx.data, cols, dx.overwrite},
                           x.device);
        }
        if (weight.requires_grad) {  // dweight = sum over rows of dy xhat, in chunks of rows where the device wants more threads
            auto dweight = grad_slot(weight);
            const std::int64_t chunks = B::column_chunks(rows, cols, x.device);
            if (chunks < 2) {
                B::launch(cols, kernels::LayerNormWeightBackward<T>{x.data, mean.data(), rstd.data(), dy, dweight.data, rows, cols, rows, dweight.overwrite},
                          x.device);
            } else {
                const std::int64_t chunk_rows = (rows + chunks - 1) / chunks;
                const std::int64_t used = (rows + chunk_rows - 1) / chunk_rows;
                auto partial = Tensor<B, T>::empty(Shape{used, cols}, x.device);
                B::launch(used * cols, kernels::LayerNormWeightBackward<T>{x.data, mean.data(), rstd.data(), dy, partial.data(), rows, cols, chunk_rows, true},
                          x.device);
                B::sum_rows(partial.data(), used, cols, dweight.data, dweight.overwrite, x.device);
            }
        }
        if (bias.requires_grad) {  // dbias = sum over rows of dy
            auto dbias = grad_slot(bias);
            B::sum_rows(dy, rows, cols, dbias.data, dbias.overwrite, x.device);
        }
    }
};

}  // namespace detail

// x is (..., cols) with at least one dimension, weight and bias are (cols), y has x's shape
template <class B, class T>
Tensor<B, T> layer_norm(const Tensor<B, T>& x, const Tensor<B, T>& weight, const Tensor<B, T>& bias, double eps = 1e-5) {
    detail::require_floating<T>();
    detail::check_defined("layer_norm", x, 1, "input");
    detail::check_defined("layer_norm", weight, 2, "weight");
    detail::check_defined("layer_norm", bias, 3, "bias");
    detail::check_same_device("layer_norm", x, "input", weight, 2, "weight");
    detail::check_same_device("layer_norm", x, "input", bias, 3, "bias");
    if (x.ndim() == 0) detail::fail<ShapeError>("layer_norm: argument #1 'input' has shape {}, expected at least one dimension", x.shape());
    const auto cols = x.size(-1);
    if (weight.shape() != Shape{cols}) {
        detail::fail<ShapeError>("layer_norm: argument #2 'weight' has shape {}, expected [{}] (the last dimension of argument #1 'input', shape {})",
                                 weight.shape(), cols, x.shape());
    }
    if (bias.shape() != Shape{cols}) {
        detail::fail<ShapeError>("layer_norm: argument #3 'bias' has shape {}, expected [{}] (the last dimension of argument #1 'input', shape {})",
                                 bias.shape(), cols, x.shape());
    }
    detail::check_positive<T>("layer_norm", "eps", eps);
    const auto rows = cols == 0 ? 0 : x.numel() / cols;
    auto y = Tensor<B, T>::empty(x.shape(), x.device());
    auto mean = Tensor<B, T>::empty(Shape{rows}, x.device());
    auto rstd = Tensor<B, T>::empty(Shape{rows}, x.device());
    if (rows == 0 || cols == 0) return y;
    B::launch_rows(rows, cols,
                   kernels::LayerNormForward<T>{x.data(), weight.data(), bias.data(), y.data(), mean.data(), rstd.data(), cols, static_cast<T>(eps)},
                   x.device());
    if (detail::wants_grad(x, weight, bias)) {
        auto node = std::make_shared<detail::LayerNormNode<B, T>>();
        node->inputs = {x.impl_ptr(), weight.impl_ptr(), bias.impl_ptr()};
        node->mean = std::move(mean);
        node->rstd = std::move(rstd);
        detail::attach(y.impl(), std::move(node));
    }
    return y;
}
template <class BA, class TA, class BB, class TB, class BC, class TC>
    requires(detail::Mixed<BA, TA, BB, TB> || detail::Mixed<BA, TA, BC, TC>)
Tensor<BA, TA> layer_norm(const Tensor<BA, TA>&, const Tensor<BB, TB>&, const Tensor<BC, TC>&, double = 1e-5) {
    if constexpr (detail::Mixed<BA, TA, BB, TB>)
        detail::reject_mix<BA, TA, BB, TB, 2>();
    else
        detail::reject_mix<BA, TA, BC, TC, 3>();
    return {};
}

}  // namespace minigrad
