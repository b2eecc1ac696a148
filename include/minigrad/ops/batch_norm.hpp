// batch_norm(x, running_mean, running_var, weight, bias, {training, momentum, eps}): as
// torch.nn.functional.batch_norm. x is (N, C, *): each channel is normalised by statistics over
// every other dim. In training, the batch's mean and biased variance, and the running statistics
// (where given) move toward the batch's mean and unbiased variance by `momentum`; in eval, the
// running statistics. y = (x - mean) / sqrt(var + eps) * weight + bias, weight and bias optional.
//
// Launches: training forward is a per-channel statistics row (which also moves the running
// statistics) and a per-plane apply; backward a per-channel sums row (which writes dweight and
// dbias) and a per-plane dx. The module's step count (num_batches_tracked) is counted on the
// device, so a captured or compiled step replays it.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>

#include "checks.hpp"

namespace minigrad {

struct BatchNormOptions {
    bool training = false;  // as F.batch_norm's default; the modules pass their mode
    double momentum = 0.1;  // the running statistics' step; negative: a cumulative average (momentum=None)
    double eps = 1e-5;
};

namespace kernels {

// x seen as (n, c, s): channel ch's elements are x[(k * c + ch) * s + j] for k < n, j < s.
struct BatchNormLayout {
    index_t n, c, s;
    MINIGRAD_HD index_t count() const { return n * s; }
    // the e-th element of channel ch, e in [0, n s)
    MINIGRAD_HD index_t at(index_t ch, index_t e) const { return (e / s * c + ch) * s + e % s; }
    // fn(offset) for each of channel ch's elements that lane `lane` of Lanes takes
    template <int Lanes, class F>
    MINIGRAD_HD void for_each(index_t ch, int lane, F&& fn) const {
        if constexpr (Lanes == 1) {
            for (index_t k = 0; k < n; ++k)
                for (index_t j = 0; j < s; ++j) fn((k * c + ch) * s + j);
        } else {
            for (index_t e = lane; e < n * s; e += Lanes) fn(at(ch, e));
        }
    }
    // One thread over channel ch's elements: full(i) for each run of eight, i to i + 7, and
    // tail(i, width) for the rest of each plane. For sums kept in eight partial sums, which
    // vectorise where one running sum is a chain of dependent additions (its order is fixed, so
    // the compiler may not split it).
    template <class Full, class Tail>
    MINIGRAD_HD_INLINE void for_each_run8(index_t ch, Full&& full, Tail&& tail) const {
        for (index_t k = 0; k < n; ++k) {
            const index_t base = (k * c + ch) * s;
            index_t j = 0;
            for (; j + 8 <= s; j += 8) full(base + j);
            if (j < s) tail(base + j, s - j);
        }
    }
};

// part[0] + ... + part[7], pairwise
template <class T>
MINIGRAD_HD_INLINE T sum8(const T (&part)[8]) {
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

// Per channel (a row of n s elements): mean and rstd = 1 / sqrt(biased var + eps) of the batch,
// and, where running_mean is set, running = (1 - f) running + f batch (the variance unbiased),
// f = momentum, or 1 / tracked where momentum < 0. ch over channels.
template <class T>
struct BatchNormStats {
    const T* x;
    T* mean;
    T* rstd;
    T* running_mean;  // null: no running statistics
    T* running_var;
    const std::int64_t* tracked;  // read where momentum < 0
    BatchNormLayout l;
    T eps, momentum;
    MINIGRAD_HD index_t work_per_index() const { return l.count(); }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t ch, int lane, const Team& team) const {
        const T count = static_cast<T>(l.count());
        T sum = 0, squares = 0;  // squares around the mean, as layer_norm
        if constexpr (Lanes == 1) {
            T part[8] = {};
            l.for_each_run8(
                ch, [&](index_t i) { for (int u = 0; u < 8; ++u) part[u] += x[i + u]; },
                [&](index_t i, index_t width) { for (index_t u = 0; u < width; ++u) part[u] += x[i + u]; });
            sum = sum8(part);
        } else {
            l.template for_each<Lanes>(ch, lane, [&](index_t i) { sum += x[i]; });
        }
        const T m = team.sum(sum) / count;
        if constexpr (Lanes == 1) {
            T part[8] = {};
            l.for_each_run8(
                ch, [&](index_t i) { for (int u = 0; u < 8; ++u) part[u] += (x[i + u] - m) * (x[i + u] - m); },
                [&](index_t i, index_t width) { for (index_t u = 0; u < width; ++u) part[u] += (x[i + u] - m) * (x[i + u] - m); });
            squares = sum8(part);
        } else {
            l.template for_each<Lanes>(ch, lane, [&](index_t i) { squares += (x[i] - m) * (x[i] - m); });
        }
        const T var = team.sum(squares) / count;
        if (lane != 0) return;
        mean[ch] = m;
        rstd[ch] = T(1) / std::sqrt(var + eps);
        if (running_mean) {
            const T f = momentum < 0 ? T(1) / static_cast<T>(tracked[0]) : momentum;
            running_mean[ch] = (1 - f) * running_mean[ch] + f * m;
            running_var[ch] = (1 - f) * running_var[ch] + f * var * count / (count - 1);
        }
    }
    MINIGRAD_HD void operator()(index_t ch) const { row<1>(ch, 0, SoloTeam{}); }
};

// num_batches_tracked += 1 (one index), before the statistics that may read it
struct BatchNormCount {
    std::int64_t* tracked;
    MINIGRAD_HD void operator()(index_t) const { tracked[0] += 1; }
};

// In eval: mean and rstd from the running statistics; ch over channels
template <class T>
struct BatchNormRunning {
    const T* running_mean;
    const T* running_var;
    T* mean;
    T* rstd;
    T eps;
    MINIGRAD_HD void operator()(index_t ch) const {
        mean[ch] = running_mean[ch];
        rstd[ch] = T(1) / std::sqrt(running_var[ch] + eps);
    }
};

// The elementwise passes run as rows: a plane of s elements (one channel of one sample) per row,
// or, where s is 1 ((N, C) input), a sample's c channels per row. The channel of (row r, column j):
MINIGRAD_HD inline index_t batch_norm_channel(const BatchNormLayout& l, index_t r, index_t j) { return l.s == 1 ? j : r % l.c; }

// y = (x - mean) rstd weight + bias; weight and bias may be null (1 and 0)
template <class T>
struct BatchNormApply {
    const T* x;
    const T* mean;
    const T* rstd;
    const T* weight;
    const T* bias;
    T* y;
    BatchNormLayout l;
    index_t cols;
    MINIGRAD_HD index_t work_per_index() const { return cols; }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team&) const {
        if (l.s != 1) {  // one channel per row: its numbers read once, and a loop that vectorises
            const index_t ch = r % l.c;
            const T m = mean[ch], scale = rstd[ch] * (weight ? weight[ch] : T(1)), shift = bias ? bias[ch] : T(0);
            for (index_t j = lane; j < cols; j += Lanes) y[r * cols + j] = (x[r * cols + j] - m) * scale + shift;
            return;
        }
        for (index_t j = lane; j < cols; j += Lanes) {
            const index_t ch = batch_norm_channel(l, r, j), i = r * cols + j;
            const T scale = rstd[ch] * (weight ? weight[ch] : T(1));
            y[i] = (x[i] - mean[ch]) * scale + (bias ? bias[ch] : T(0));
        }
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

// Per channel: sums[ch] = the sum of dy, sums[c + ch] = the sum of dy xhat, and dweight and
// dbias (where set) take them, written or added. ch over channels.
template <class T>
struct BatchNormGradSums {
    const T* x;
    const T* dy;
    const T* mean;
    const T* rstd;
    T* sums;  // (2, c)
    T* dweight;
    T* dbias;
    BatchNormLayout l;
    bool dweight_overwrite, dbias_overwrite;
    MINIGRAD_HD index_t work_per_index() const { return l.count(); }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t ch, int lane, const Team& team) const {
        const T m = mean[ch];
        T dy_sum = 0, dy_xc_sum = 0;
        if constexpr (Lanes == 1) {
            T part[8] = {}, part_xc[8] = {};
            const auto add = [&](index_t i, index_t u) {
                part[u] += dy[i + u];
                part_xc[u] += dy[i + u] * (x[i + u] - m);
            };
            l.for_each_run8(
                ch, [&](index_t i) { for (int u = 0; u < 8; ++u) add(i, u); },
                [&](index_t i, index_t width) { for (index_t u = 0; u < width; ++u) add(i, u); });
            dy_sum = sum8(part);
            dy_xc_sum = sum8(part_xc);
        } else {
            l.template for_each<Lanes>(ch, lane, [&](index_t i) {
                dy_sum += dy[i];
                dy_xc_sum += dy[i] * (x[i] - m);
            });
        }
        dy_sum = team.sum(dy_sum);
        const T dy_xhat_sum = team.sum(dy_xc_sum) * rstd[ch];
        if (lane != 0) return;
        sums[ch] = dy_sum;
        sums[l.c + ch] = dy_xhat_sum;
        if (dweight) dweight[ch] = write(dweight[ch], dy_xhat_sum, dweight_overwrite);
        if (dbias) dbias[ch] = write(dbias[ch], dy_sum, dbias_overwrite);
    }
    MINIGRAD_HD void operator()(index_t ch) const { row<1>(ch, 0, SoloTeam{}); }
};

// dx = rstd weight (dy - mean(dy) - xhat mean(dy xhat)) with the batch's statistics (training),
// or rstd weight dy with fixed ones (eval); rows as BatchNormApply
template <class T>
struct BatchNormBackward {
    const T* x;
    const T* dy;
    const T* mean;
    const T* rstd;
    const T* weight;
    const T* sums;
    T* dx;
    BatchNormLayout l;
    index_t cols;
    bool batch_stats, overwrite;
    MINIGRAD_HD index_t work_per_index() const { return cols; }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team&) const {
        const T inv_count = T(1) / static_cast<T>(l.count());
        if (l.s != 1) {  // one channel per row: its numbers read once, one loop per case, each vectorises
            const index_t ch = r % l.c;
            const T s = rstd[ch], g = s * (weight ? weight[ch] : T(1)), m = mean[ch];
            const T shift = batch_stats ? sums[ch] * inv_count : T(0), slope = batch_stats ? s * sums[l.c + ch] * inv_count : T(0);
            const T* dyr = dy + r * cols;
            const T* xr = x + r * cols;
            T* dxr = dx + r * cols;
            if (batch_stats && overwrite) {
                for (index_t j = lane; j < cols; j += Lanes) dxr[j] = g * (dyr[j] - (shift + (xr[j] - m) * slope));
            } else if (batch_stats) {
                for (index_t j = lane; j < cols; j += Lanes) dxr[j] += g * (dyr[j] - (shift + (xr[j] - m) * slope));
            } else if (overwrite) {
                for (index_t j = lane; j < cols; j += Lanes) dxr[j] = g * dyr[j];
            } else {
                for (index_t j = lane; j < cols; j += Lanes) dxr[j] += g * dyr[j];
            }
            return;
        }
        for (index_t j = lane; j < cols; j += Lanes) {
            const index_t ch = batch_norm_channel(l, r, j), i = r * cols + j;
            const T s = rstd[ch], g = s * (weight ? weight[ch] : T(1));
            T v = dy[i];
            if (batch_stats) v -= sums[ch] * inv_count + (x[i] - mean[ch]) * s * sums[l.c + ch] * inv_count;
            dx[i] = write(dx[i], g * v, overwrite);
        }
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

// The functors this file's ops launch, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using BatchNormFunctors =
    Functors<BatchNormStats<T>, BatchNormCount, BatchNormRunning<T>, BatchNormApply<T>, BatchNormGradSums<T>, BatchNormBackward<T>>;

}  // namespace kernels

namespace detail {

inline kernels::BatchNormLayout batch_norm_layout(const Shape& shape) {
    kernels::BatchNormLayout l{shape[0], shape[1], 1};
    for (int d = 2; d < shape.ndim(); ++d) l.s *= shape[d];
    return l;
}
// The rows of the elementwise passes (kernels::batch_norm_channel)
inline std::int64_t batch_norm_rows(const kernels::BatchNormLayout& l) { return l.s == 1 ? l.n : l.n * l.c; }
inline std::int64_t batch_norm_cols(const kernels::BatchNormLayout& l) { return l.s == 1 ? l.c : l.s; }

template <class B, class T>
struct BatchNormNode : Node<B, T> {
    Tensor<B, T> mean, rstd;  // (C): the statistics the forward pass used
    bool batch_stats = true;
    unsigned saved_inputs() const override { return 0b011; }  // x and weight; the bias is not read
    const char* op_name() const override { return "batch_norm"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        TensorImpl<B, T>* weight = this->inputs[1].get();
        TensorImpl<B, T>* bias = this->inputs[2].get();
        const auto l = batch_norm_layout(x.shape);
        const T* dy = out.grad->data;
        const bool weight_grad = weight && weight->requires_grad, bias_grad = bias && bias->requires_grad;
        GradSlot<B, T> dweight{nullptr, false}, dbias{nullptr, false};
        if (weight_grad) dweight = grad_slot(*weight);
        if (bias_grad) dbias = grad_slot(*bias);
        Tensor<B, T> sums;
        if (weight_grad || bias_grad || (x.requires_grad && batch_stats)) {
            sums = Tensor<B, T>::empty(Shape{2, l.c}, x.device);
            B::launch_rows(l.c, l.count(),
                           kernels::BatchNormGradSums<T>{x.data, dy, mean.data(), rstd.data(), sums.data(), weight_grad ? dweight.data : nullptr,
                                                         bias_grad ? dbias.data : nullptr, l, dweight.overwrite, dbias.overwrite},
                           x.device);
        }
        if (x.requires_grad) {
            auto dx = grad_slot(x);
            const auto cols = batch_norm_cols(l);
            B::launch_rows(batch_norm_rows(l), cols,
                           kernels::BatchNormBackward<T>{x.data, dy, mean.data(), rstd.data(), weight ? weight->data : nullptr,
                                                         sums.defined() ? sums.data() : nullptr, dx.data, l, cols, batch_stats, dx.overwrite},
                           x.device);
        }
    }
};

// batch_norm's body; num_batches_tracked (the modules') is counted before the statistics read it.
template <class B, class T>
Tensor<B, T> batch_norm(const Tensor<B, T>& x, Tensor<B, T> running_mean, Tensor<B, T> running_var, const Tensor<B, T>& weight,
                        const Tensor<B, T>& bias, const BatchNormOptions& options, Tensor<B, std::int64_t> num_batches_tracked) {
    // (running_mean, running_var and num_batches_tracked are handles taken by value: the op writes them)
    constexpr const char* op = "batch_norm";
    require_floating<T>();
    check_defined(op, x, 1, "input");
    if (x.ndim() < 2) fail<ShapeError>("batch_norm: argument #1 'input' has shape {}, expected (N, C, *) with at least 2 dims", x.shape());
    const auto channels = x.size(1);
    const Shape per_channel{channels};
    auto check_channel_vector = [&](const Tensor<B, T>& t, int arg, const char* name) {
        if (!t.defined()) return;
        check_same_device(op, x, "input", t, arg, name);
        if (t.shape() != per_channel) {
            fail<ShapeError>("batch_norm: argument #{} '{}' has shape {}, expected [{}] (the channels of argument #1 'input', shape {})", arg, name,
                             t.shape(), channels, x.shape());
        }
    };
    check_channel_vector(running_mean, 2, "running_mean");
    check_channel_vector(running_var, 3, "running_var");
    check_channel_vector(weight, 4, "weight");
    check_channel_vector(bias, 5, "bias");
    if (running_mean.defined() != running_var.defined()) {
        fail<ValueError>("batch_norm: running_mean and running_var must both be given or both be omitted");
    }
    if (!options.training && !running_mean.defined()) {
        fail<ValueError>("batch_norm: in eval (training=false) it normalises by running_mean and running_var, which were not given");
    }
    check_positive<T>(op, "eps", options.eps);
    if (options.training && running_mean.defined() && (!(options.momentum <= 1) || (options.momentum < 0 && !num_batches_tracked.defined()))) {
        fail<ValueError>("batch_norm: momentum={} must be in [0, 1]", options.momentum);
    }
    const auto l = batch_norm_layout(x.shape());
    if (options.training && l.count() <= 1 && x.numel() > 0) {
        fail<ValueError>("batch_norm: expected more than 1 value per channel when training, got input of shape {}", x.shape());
    }
    auto y = Tensor<B, T>::empty(x.shape(), x.device());
    auto mean = Tensor<B, T>::empty(per_channel, x.device());
    auto rstd = Tensor<B, T>::empty(per_channel, x.device());
    if (x.numel() == 0) return y;
    const T eps = static_cast<T>(options.eps);
    if (options.training) {
        if (num_batches_tracked.defined()) B::launch(1, kernels::BatchNormCount{num_batches_tracked.data()}, x.device());
        const bool running = running_mean.defined();
        B::launch_rows(channels, l.count(),
                       kernels::BatchNormStats<T>{x.data(), mean.data(), rstd.data(), running ? running_mean.data() : nullptr,
                                                  running ? running_var.data() : nullptr,
                                                  num_batches_tracked.defined() ? num_batches_tracked.data() : nullptr, l, eps,
                                                  static_cast<T>(options.momentum)},
                       x.device());
        if (running) {
            mark_modified(running_mean.impl());
            mark_modified(running_var.impl());
        }
    } else {
        B::launch(channels, kernels::BatchNormRunning<T>{running_mean.data(), running_var.data(), mean.data(), rstd.data(), eps}, x.device());
    }
    const auto cols = batch_norm_cols(l);
    B::launch_rows(batch_norm_rows(l), cols,
                   kernels::BatchNormApply<T>{x.data(), mean.data(), rstd.data(), weight.defined() ? weight.data() : nullptr,
                                              bias.defined() ? bias.data() : nullptr, y.data(), l, cols},
                   x.device());
    if (wants_grad(x, weight, bias)) {
        auto node = std::make_shared<BatchNormNode<B, T>>();
        node->inputs = {x.impl_ptr(), weight.defined() ? weight.impl_ptr() : nullptr, bias.defined() ? bias.impl_ptr() : nullptr};
        node->mean = std::move(mean);
        node->rstd = std::move(rstd);
        node->batch_stats = options.training;
        attach(y.impl(), std::move(node));
    }
    return y;
}

}  // namespace detail

// x is (N, C, *); running_mean, running_var, weight and bias are (C) or undefined ({}); y has x's
// shape. Training with running statistics moves them (unbiased variance), as PyTorch does.
template <class B, class T>
Tensor<B, T> batch_norm(const Tensor<B, T>& x, const Tensor<B, T>& running_mean, const Tensor<B, T>& running_var, const Tensor<B, T>& weight = {},
                        const Tensor<B, T>& bias = {}, BatchNormOptions options = {}) {
    if (options.momentum < 0) detail::fail<ValueError>("batch_norm: momentum={} must be in [0, 1]", options.momentum);
    return detail::batch_norm(x, running_mean, running_var, weight, bias, options, Tensor<B, std::int64_t>{});
}

}  // namespace minigrad
