// The class-index losses, as torch.nn.functional has them: cross_entropy (ignore_index,
// label_smoothing) and nll_loss (ignore_index), each with reduction mean | sum | none. This file
// holds their per-row functors (both backends launch them), forwards, backward rules and argument
// checks; the per-element losses and the shared Reduction are in ops/loss.hpp.
//
// A mean over class-index targets divides by the rows whose target is not ignore_index. That count
// is made where the labels are checked (ops/labels.hpp writes 1 / count on the device), and the
// row functors scale each row by it, so no value comes back to the host.
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "checks.hpp"
#include "index.hpp"
#include "labels.hpp"
#include "loss.hpp"
#include "mask.hpp"
#include "reduce.hpp"
#include "shape.hpp"
#include "softmax.hpp"

namespace minigrad::kernels {

// A class-index target's row: ignored (target == ignore_index) rows add nothing to a loss.
template <class L>
MINIGRAD_HD inline bool ignored_label(L target, index_t ignore_index) {
    return static_cast<index_t>(target) == ignore_index;
}

// v is neither infinite nor NaN, read from its exponent bits: unlike std::isfinite, a build with
// -ffast-math (-ffinite-math-only) cannot fold it to true.
template <class T>
MINIGRAD_HD_INLINE bool finite_bits(T v) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
    using Bits = std::conditional_t<std::is_same_v<T, float>, std::uint32_t, std::uint64_t>;
    constexpr Bits exponent = static_cast<Bits>(std::is_same_v<T, float> ? 0x7f800000ull : 0x7ff0000000000000ull);
    Bits bits;
    std::memcpy(&bits, &v, sizeof bits);
    return (bits & exponent) != exponent;
}

// logits and grad are (rows, cols), target and row_loss are (rows); r over rows.
// row_loss = logsumexp(logits_r) - logits_r[t] with t = target_r; with label smoothing e (Smoothed),
// PyTorch's (1 - e) * that + e * (logsumexp(logits_r) - mean_c logits_r[c]). 0 for an ignored row.
// For the backward rule it keeps the row loss's gradient, grad = softmax - (1 - e) onehot(t) - e / cols
// (0 for an ignored row), so that the backward pass is a product by the upstream gradient: one
// pass, no label or softmax to look at again (the hand-fused reference does the same). Smoothing is
// a template flag so that the default costs only the ignore_index test per row.
template <class T, class L, bool Smoothed = false>
struct CrossEntropyForward {
    const T* logits;
    const L* target;
    T* row_loss;
    T* grad;
    index_t cols;
    index_t ignore_index = -100;
    T smoothing = 0;
    MINIGRAD_HD index_t work_per_index() const { return cols; }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team& team) const {
        const T* xr = logits + r * cols;
        T* er = grad + r * cols;  // e^(x - max) first, then the gradient
        T max = xr[lane < cols ? lane : 0];
        for (index_t c = lane + Lanes; c < cols; c += Lanes) max = xr[c] > max ? xr[c] : max;
        max = team.max(max);
        T sum = 0;
        for (index_t c = lane; c < cols; c += Lanes) {
            er[c] = kernels::exp(xr[c] - max);
            sum += er[c];
        }
        sum = team.sum(sum);
        T total = 0;  // of the row's logits, for the smoothing term
        if constexpr (Smoothed) {
            for (index_t c = lane; c < cols; c += Lanes) total += xr[c];
            total = team.sum(total);
        }
        const L label = target[r];
        const bool ignored = ignored_label(label, ignore_index);
        // A label outside [0, cols) is reported by the backend's check; it matches no column here.
        const index_t t = static_cast<index_t>(label);
        const T inv = T(1) / sum, on = Smoothed ? T(1) - smoothing : T(1);
        for (index_t c = lane; c < cols; c += Lanes) {  // this lane's own columns: no wait needed
            T d = er[c] * inv - (c == t ? on : T(0));
            if constexpr (Smoothed) d -= smoothing / static_cast<T>(cols);
            er[c] = ignored ? T(0) : d;
        }
        if (lane != 0) return;
        T loss = 0;
        if (!ignored) {
            const T lse = max + std::log(sum);
            loss = lse - (t >= 0 && t < cols ? xr[t] : T(0));
            if constexpr (Smoothed) loss = (T(1) - smoothing) * loss + smoothing * (lse - total / static_cast<T>(cols));
        }
        row_loss[r] = loss;
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
#if defined(MINIGRAD_ROWS8)
    // Rows r..r+7 as row() computes them, one per vector lane (kernels::rows8; the Cpu backend's
    // launch_rows calls it for rows of at most rows8::max_cols where the CPU has AVX2).
    [[gnu::target("avx2,fma")]] void rows8(index_t r) const
        requires std::is_same_v<T, float>
    {
        using rows8::f32x8;
        using rows8::i32x8;
        const T* x0 = logits + r * cols;
        i32x8 t, ignored;  // a label outside [0, cols) matches no column and leaves 0, as row() does
        for (int i = 0; i < 8; ++i) {
            const L label = target[r + i];
            const index_t ti = static_cast<index_t>(label);
            t[i] = ti >= 0 && ti < cols ? static_cast<std::int32_t>(ti) : -1;
            ignored[i] = ignored_label(label, ignore_index) ? -1 : 0;
        }
        // column c of the eight rows, gathered once; then its e^(x - max), kept until the sum is known
        f32x8 e[rows8::max_cols];
        f32x8 max = e[0] = rows8::column(x0, cols);  // cols >= 1: the op refuses an input without columns
        for (index_t c = 1; c < cols; ++c) {
            e[c] = rows8::column(x0 + c, cols);
            max = e[c] > max ? e[c] : max;
        }
        f32x8 sum{}, xt{}, total{};
        for (index_t c = 0; c < cols; ++c) {
            const f32x8 v = e[c];
            e[c] = rows8::exp(v - max);
            sum += e[c];
            xt = t == static_cast<std::int32_t>(c) ? v : xt;
            if constexpr (Smoothed) total += v;
        }
        // sum >= e^-87 (exp's clamp): a normal float, as rows8::log needs
        const f32x8 inv = 1.0f / sum, lse = max + rows8::log(sum);
        const float on = Smoothed ? 1.0f - smoothing : 1.0f;
        T* g0 = grad + r * cols;
        for (index_t c = 0; c < cols; ++c) {
            f32x8 d = e[c] * inv - (t == static_cast<std::int32_t>(c) ? f32x8{} + on : f32x8{});
            if constexpr (Smoothed) d -= smoothing / static_cast<T>(cols);
            d = ignored != 0 ? f32x8{} : d;
            for (int i = 0; i < 8; ++i) g0[i * cols + c] = d[i];
        }
        f32x8 loss = lse - xt;
        if constexpr (Smoothed) loss = (1.0f - smoothing) * loss + smoothing * (lse - total / static_cast<T>(cols));
        loss = ignored != 0 ? f32x8{} : loss;
        std::memcpy(row_loss + r, &loss, sizeof loss);
    }
#endif
};

// The whole forward pass of a reduced cross-entropy as one block functor (capture/tape.hpp), for
// the small losses where launches cost more than the arithmetic: the label check (a label outside
// [0, cols) is reported through the team), every row as CrossEntropyForward computes it, and the
// sum or mean of the rows, summed as BlockSum sums. inv_count (the rows not ignored, inverted) is
// written for a mean, where the backward pass reads it.
template <class T, class L, bool Smoothed = false>
struct CrossEntropyBlock {
    CrossEntropyForward<T, L, Smoothed> rows;
    index_t n;  // rows
    T* out;     // (1)
    T* inv_count;  // (1) for a mean, else null
    LabelSite site;
    template <class Team>
    MINIGRAD_HD void block(const Team& team) const {
        long long counted = 0;
        T partial = 0;
        for (index_t r = team.thread(); r < n; r += team.threads()) {
            const long long t = static_cast<long long>(rows.target[r]);
            if (t != rows.ignore_index) {
                ++counted;
                if (t < 0 || t >= rows.cols) team.report_label(r, t, rows.cols, site);
            }
            rows(r);
            partial += rows.row_loss[r];
        }
        const T total = team.sum(partial);
        if (inv_count) {
            const long long kept = team.sum(counted);
            if (team.thread() == 0) {
                const T inv = T(1) / static_cast<T>(kept);
                *inv_count = inv;
                out[0] = total * T(1) * inv;  // as BlockSum's mean: total * scale * device_scale
            }
        } else if (team.thread() == 0) {
            out[0] = total * T(1);
        }
    }
};

// grad, dlogits are (rows, cols), target is (rows), dloss is (1), or (rows) for reduction none, or
// null where the loss is the root of backward() (its gradient is 1); r over rows (a row per index
// keeps integer division out of the loop: it costs more than the arithmetic on a CPU).
// dlogits = grad * dloss (* scale[0] for a mean), grad being CrossEntropyForward's; 0 for an ignored
// row, whatever dloss is (as PyTorch, also where every row is ignored and a mean's scale is 1/0).
template <class T, class L, Reduction R = Reduction::Mean>
struct CrossEntropyBackward {
    const T* grad;
    const L* target;
    const T* dloss;
    T* dlogits;
    index_t cols;
    const T* scale;  // (1), read for a mean only
    bool overwrite;
    index_t ignore_index;
    MINIGRAD_HD index_t work_per_index() const { return cols; }
    // the upstream gradient of row r, before the ignored test
    MINIGRAD_HD T upstream(index_t r) const {
        T g = dloss ? dloss[R == Reduction::None ? r : 0] : T(1);
        if constexpr (R == Reduction::Mean) g *= scale[0];
        return g;
    }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team&) const {
        const T g = ignored_label(target[r], ignore_index) ? T(0) : upstream(r);
        for (index_t c = lane; c < cols; c += Lanes) {
            const index_t i = r * cols + c;
            dlogits[i] = write(dlogits[i], grad[i] * g, overwrite);
        }
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
    // The host's loop over rows begin..end (Cpu::launch calls it). A reduced loss has one upstream
    // gradient for every row, so the rows are one flat loop, which vectorises: an ignored row's
    // grad is 0, and 0 * g is 0 where g is finite. Where it is not, row by row. (Inlined, so that
    // Cpu's AVX2 loop compiles it for AVX2.)
    MINIGRAD_HD_INLINE void range(index_t begin, index_t end) const
        requires(R != Reduction::None)
    {
        const T g = upstream(0);
        if (!finite_bits(g)) {
            for (index_t r = begin; r < end; ++r) (*this)(r);
            return;
        }
        const T* __restrict from = grad + begin * cols;
        T* __restrict to = dlogits + begin * cols;
        const index_t n = (end - begin) * cols;
        if (overwrite)
            for (index_t i = 0; i < n; ++i) to[i] = from[i] * g;
        else
            for (index_t i = 0; i < n; ++i) to[i] += from[i] * g;
    }
};

// logp is (rows, cols), target and row_loss are (rows); r over rows.
// row_loss = -logp[r, target_r] (0 for an ignored row).
template <class T, class L>
struct NllForward {
    const T* logp;
    const L* target;
    T* row_loss;
    index_t cols;
    index_t ignore_index;
    MINIGRAD_HD void operator()(index_t r) const {
        const L label = target[r];
        const index_t t = static_cast<index_t>(label);
        // A label outside [0, cols) is reported by the backend's check; never read out of the row.
        row_loss[r] = ignored_label(label, ignore_index) || t < 0 || t >= cols ? T(0) : -logp[r * cols + t];
    }
};

// target is (rows), dloss is (1) or (rows) when per_row, dlogp is (rows, cols); r over rows.
// dlogp[r] = -dloss * scale[0] at the target's column, 0 elsewhere and in ignored rows.
template <class T, class L>
struct NllBackward {
    const L* target;
    const T* dloss;
    T* dlogp;
    index_t cols;
    index_t ignore_index;
    const T* scale;  // (1), or null for 1
    bool per_row;
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return cols; }
    MINIGRAD_HD void operator()(index_t r) const {
        const L label = target[r];
        const T g = ignored_label(label, ignore_index) ? T(0) : -dloss[per_row ? r : 0] * (scale ? scale[0] : T(1));
        const index_t t = static_cast<index_t>(label);
        for (index_t c = 0; c < cols; ++c) dlogp[r * cols + c] = write(dlogp[r * cols + c], c == t ? g : T(0), overwrite);
    }
};

// The functors this file's ops launch, for compiled steps, with labels of type L (kernels::Functors,
// backend/kernels.hpp).
template <class T, class L>
using CrossEntropyFunctors =
    Functors<CrossEntropyForward<T, L, false>, CrossEntropyForward<T, L, true>, CrossEntropyBlock<T, L, false>,
             CrossEntropyBlock<T, L, true>, CrossEntropyBackward<T, L, Reduction::Mean>, CrossEntropyBackward<T, L, Reduction::Sum>,
             CrossEntropyBackward<T, L, Reduction::None>, NllForward<T, L>, NllBackward<T, L>>;

}  // namespace minigrad::kernels

namespace minigrad {

// cross_entropy's options, as torch.nn.functional.cross_entropy's keyword arguments.
struct CrossEntropyOptions {
    std::int64_t ignore_index = -100;
    double label_smoothing = 0.0;  // in [0, 1]
    Reduction reduction = Reduction::Mean;
};

struct NllLossOptions {
    std::int64_t ignore_index = -100;
    Reduction reduction = Reduction::Mean;
};

namespace detail {

// Calls f(reduced) with the reduction as a compile-time constant (std::integral_constant), for the
// cross-entropy backward functor's template flag.
template <class F>
void with_reduction(Reduction reduction, F&& f) {
    switch (reduction) {
        case Reduction::Mean: return f(std::integral_constant<Reduction, Reduction::Mean>{});
        case Reduction::Sum: return f(std::integral_constant<Reduction, Reduction::Sum>{});
        case Reduction::None: return f(std::integral_constant<Reduction, Reduction::None>{});
    }
}

// (N, C, d...) logits as (N * d..., C) rows, and (N, d...) targets as (N * d...): checks the shapes.
template <class B, class T, class L>
std::pair<Tensor<B, T>, Tensor<B, L>> class_dim_rows(std::string_view op, const Tensor<B, T>& input, const Tensor<B, L>& target) {
    const Shape expected = with_dim(input.shape(), 1, -1);
    if (target.shape() != expected) {
        fail<ShapeError>("{}: argument #2 'target' has shape {}, expected {} (argument #1 'input' of shape {} without its class dim 1)", op,
                         target.shape(), expected, input.shape());
    }
    std::vector<std::int64_t> order{0};
    for (int d = 2; d < input.ndim(); ++d) order.push_back(d);
    order.push_back(1);
    auto rows = permute(input, std::span<const std::int64_t>(order)).reshape({-1, input.size(1)});
    return {std::move(rows), target.reshape({-1})};
}

// cross_entropy of (N, C, d...) logits: defined after cross_entropy, which calls it
template <class B, class T, class L>
Tensor<B, T> cross_entropy_over_dims(const Tensor<B, T>& logits, const Tensor<B, L>& target, const CrossEntropyOptions& options);


// input is (rows, classes), target is (rows) of class indices
template <class B, class T, class L>
void check_class_target(std::string_view op, const Tensor<B, T>& input, const Tensor<B, L>& target) {
    check_defined(op, input, 1, "input");
    check_defined(op, target, 2, "target");
    check_ndim(op, input, 1, "input", 2, "a matrix [rows, classes]");
    check_same_device(op, input, "input", target, 2, "target");
    const auto rows = input.size(0);
    if (target.shape() != Shape{rows}) {
        fail<ShapeError>("{}: argument #2 'target' has shape {}, expected [{}] (one class index per row of argument #1 'input', shape {})",
                         op, target.shape(), rows, input.shape());
    }
    if (rows == 0 || input.size(1) == 0) {
        fail<ShapeError>("{}: argument #1 'input' has shape {}, expected at least one row and one class", op, input.shape());
    }
}

// logits and grad are (rows, cols), target is (rows), inv_count is (1): 1 / the rows not ignored (a
// mean's scale; undefined for the others), y is () or (rows) for reduction none
template <class B, class T, class L>
struct CrossEntropyNode : Node<B, T> {
    std::shared_ptr<TensorImpl<B, L>> target;
    Tensor<B, T> grad, inv_count;  // the forward pass's: d row_loss / d logits, and a mean's scale
    std::int64_t ignore_index;
    Reduction reduction;
    void backward(TensorImpl<B, T>& out) override { backward_with(out.grad->data); }
    // The loss as backward()'s root: its gradient, 1, is put in here instead of a launch of its own.
    bool backward_from_one(TensorImpl<B, T>&) override {
        if (reduction == Reduction::None) return false;
        backward_with(nullptr);
        return true;
    }
    void backward_with(const T* dloss) {
        auto& logits = *this->inputs[0];
        auto dlogits = grad_slot(logits);
        const auto rows = logits.shape[0], cols = logits.shape[1];
        const T* scale = reduction == Reduction::Mean ? inv_count.data() : nullptr;
        with_reduction(reduction, [&](auto reduced) {
            B::launch_rows(rows, cols,
                           kernels::CrossEntropyBackward<T, L, decltype(reduced)::value>{grad.data(), target->data, dloss, dlogits.data, cols,
                                                                                         scale, dlogits.overwrite, ignore_index},
                           logits.device);
        });
    }
};

// input is (rows, cols) log-probabilities, target is (rows), y is () or (rows)
template <class B, class T, class L>
struct NllNode : Node<B, T> {
    std::shared_ptr<TensorImpl<B, L>> target;
    Tensor<B, T> inv_count;  // (1): 1 / the rows not ignored, for a mean
    std::int64_t ignore_index;
    Reduction reduction;
    void backward(TensorImpl<B, T>& out) override {
        auto& input = *this->inputs[0];
        auto dinput = grad_slot(input);
        const auto rows = input.shape[0], cols = input.shape[1];
        B::launch(rows,
                  kernels::NllBackward<T, L>{target->data, out.grad->data, dinput.data, cols, ignore_index,
                                             reduction == Reduction::Mean ? inv_count.data() : nullptr, reduction == Reduction::None,
                                             dinput.overwrite},
                  input.device);
    }
};

}  // namespace detail

// As torch.nn.functional.cross_entropy with class-index targets: logits is (rows, classes), target
// is (rows) with values in [0, classes) or ignore_index; the result is () (mean over the rows not
// ignored, or sum) or (rows) for Reduction::None (0 in ignored rows).
// Over (N, C, d1, ..., dk) logits and (N, d1, ..., dk) targets, as PyTorch's: the classes along dim
// 1, every other position a row (a copy puts the classes last); None gives (N, d1, ..., dk).
template <class B, class T, std::integral L>
Tensor<B, T> cross_entropy(const Tensor<B, T>& logits, const Tensor<B, L>& target, const CrossEntropyOptions& options = {}) {
    detail::require_floating<T>();
    if (logits.defined() && target.defined() && logits.ndim() > 2) return detail::cross_entropy_over_dims(logits, target, options);
    detail::check_class_target("cross_entropy", logits, target);
    detail::check_unit_interval<T>("cross_entropy", "label_smoothing", options.label_smoothing);
    const auto rows = logits.size(0), cols = logits.size(1);
    const T smoothing = static_cast<T>(options.label_smoothing);
    auto grad = Tensor<B, T>::empty(logits.shape(), logits.device());
    Tensor<B, T> inv_count;  // 1 / the rows not ignored, for a mean
    if (options.reduction == Reduction::Mean) inv_count = Tensor<B, T>::empty(Shape{1}, logits.device());
    T* scale = inv_count.defined() ? inv_count.data() : nullptr;
    auto row_loss = Tensor<B, T>::empty(Shape{rows}, logits.device());
    Tensor<B, T> loss;
    const auto run = [&](auto smoothed) {
        const kernels::CrossEntropyForward<T, L, decltype(smoothed)::value> forward{
            logits.data(), target.data(), row_loss.data(), grad.data(), cols, options.ignore_index, smoothing};
        if (options.reduction != Reduction::None && rows * cols <= B::one_block_max_work) {
            // small: the label check, the rows and their sum or mean in one launch
            loss = Tensor<B, T>::empty(Shape{}, logits.device());
            B::launch_block(kernels::CrossEntropyBlock<T, L, decltype(smoothed)::value>{forward, rows, loss.data(), scale, detail::target_site<L>("cross_entropy")},
                            logits.device());
        } else {
            detail::check_labels<B>(target.data(), rows, cols, detail::target_site<L>("cross_entropy"), target.device(), options.ignore_index, scale);
            B::launch_rows(rows, cols, forward, logits.device());
            loss = detail::reduce_loss(std::move(row_loss), options.reduction, T(1), scale);
        }
    };
    if (smoothing != T(0))
        run(std::true_type{});
    else
        run(std::false_type{});
    if (detail::wants_grad(logits)) {
        auto node = std::make_shared<detail::CrossEntropyNode<B, T, L>>();
        node->inputs = {logits.impl_ptr(), nullptr, nullptr};
        node->target = target.impl_ptr();
        node->grad = std::move(grad);
        node->inv_count = std::move(inv_count);
        node->ignore_index = options.ignore_index;
        node->reduction = options.reduction;
        detail::attach(loss.impl(), std::move(node));
    }
    return loss;
}
template <class BA, class TA, class BB, class L>
    requires(!std::is_same_v<BA, BB>)
Tensor<BA, TA> cross_entropy(const Tensor<BA, TA>&, const Tensor<BB, L>&, const CrossEntropyOptions& = {}) {
    detail::reject_mix<BA, TA, BB, TA, 2>();
    return {};
}

namespace detail {
template <class B, class T, class L>
Tensor<B, T> cross_entropy_over_dims(const Tensor<B, T>& logits, const Tensor<B, L>& target, const CrossEntropyOptions& options) {
    const auto [rows, target_rows] = class_dim_rows("cross_entropy", logits, target);
    auto loss = cross_entropy(rows, target_rows, options);
    return options.reduction == Reduction::None ? reshape(loss, std::span<const std::int64_t>(target.shape().begin(), target.shape().end())) : loss;
}
}  // namespace detail

namespace detail {
// Whether each row is kept (its target is not ignore_index; every row, where L cannot hold it).
template <class B, class L>
Tensor<B, bool> kept_rows(const Tensor<B, L>& target, std::int64_t ignore_index) {
    if (!can_hold<L>(ignore_index)) return full_like(target, L(1)) != L(0);
    return target != static_cast<L>(ignore_index);
}
// A class weight's checks, and each row's weight: weight[target_r], 0 where the row is ignored.
template <class B, class T, class L>
Tensor<B, T> class_row_weights(const char* op, const Tensor<B, T>& input, const Tensor<B, L>& target, const Tensor<B, T>& weight,
                               std::int64_t ignore_index) {
    check_defined(op, input, 1, "input");
    check_defined(op, target, 2, "target");
    check_same_device(op, input, "input", weight, 3, "weight");
    const std::int64_t classes = input.ndim() >= 2 ? input.size(1) : 0;
    if (weight.shape() != Shape{classes}) {
        fail<ShapeError>("{}: argument #3 'weight' has shape {}, expected [{}] (one weight per class of argument #1 'input', shape {})", op,
                         weight.shape(), classes, input.shape());
    }
    if (input.ndim() > 2) return {};  // the caller moves the classes last first
    const auto kept = kept_rows(target, ignore_index);
    const auto safe = where(kept, target, Tensor<B, L>::zeros(Shape{}, target.device()));  // ignored rows read class 0, then weigh 0
    return masked_fill(index_select(weight, 0, safe), logical_not(kept), T(0));
}
// row_loss (rows) reduced as a weighted loss is: the mean divides by the sum of the rows' weights.
template <class B, class T>
Tensor<B, T> reduce_weighted(const Tensor<B, T>& row_loss, const Tensor<B, T>& row_weight, Reduction reduction) {
    if (reduction == Reduction::None) return row_loss;
    if (reduction == Reduction::Sum) return sum(row_loss);
    return sum(row_loss) / sum(row_weight);
}
}  // namespace detail

// With a weight per class, as torch.nn.functional.cross_entropy(input, target, weight): row r's
// loss is scaled by weight[target_r], and the mean divides by the sum of those weights over the
// rows not ignored. With label_smoothing e, as PyTorch 1.13: (1 - e) times that plus e / classes
// times each row's -sum_c weight[c] log_softmax(input)[r, c] (0 where ignored), the mean over the
// same sum of weights. Written with the ops above (so its gradient is theirs); an undefined weight
// is the plain form.
template <class B, class T, std::integral L>
Tensor<B, T> cross_entropy(const Tensor<B, T>& logits, const Tensor<B, L>& target, const Tensor<B, T>& weight,
                           const CrossEntropyOptions& options = {}) {
    if (!weight.defined()) return cross_entropy(logits, target, options);
    const auto row_weight = detail::class_row_weights("cross_entropy", logits, target, weight, options.ignore_index);
    detail::check_unit_interval<T>("cross_entropy", "label_smoothing", options.label_smoothing);
    if (logits.ndim() > 2) {
        const auto [rows, target_rows] = detail::class_dim_rows("cross_entropy", logits, target);
        auto loss = cross_entropy(rows, target_rows, weight, options);
        return options.reduction == Reduction::None ? reshape(loss, std::span<const std::int64_t>(target.shape().begin(), target.shape().end())) : loss;
    }
    auto per_row = cross_entropy(logits, target, {.ignore_index = options.ignore_index, .reduction = Reduction::None});  // 0 where ignored
    auto weighted = per_row * row_weight;
    if (options.label_smoothing != 0.0) {
        const T e = static_cast<T>(options.label_smoothing);
        const auto smooth = neg(sum(log_softmax(logits, 1) * weight, 1));
        const auto ignored = logical_not(detail::kept_rows(target, options.ignore_index));
        weighted = weighted * (T(1) - e) + masked_fill(smooth, ignored, T(0)) * (e / static_cast<T>(logits.size(1)));
    }
    return detail::reduce_weighted(weighted, row_weight, options.reduction);
}

// As torch.nn.functional.nll_loss: input is (rows, classes) log-probabilities (log_softmax's
// output), target is (rows) with values in [0, classes) or ignore_index; the result is () or (rows)
// for Reduction::None. loss_r = -input[r, target_r].
template <class B, class T, std::integral L>
Tensor<B, T> nll_loss(const Tensor<B, T>& input, const Tensor<B, L>& target, const NllLossOptions& options = {}) {
    detail::require_floating<T>();
    detail::check_class_target("nll_loss", input, target);
    const auto rows = input.size(0), cols = input.size(1);
    Tensor<B, T> inv_count;
    if (options.reduction == Reduction::Mean) inv_count = Tensor<B, T>::empty(Shape{1}, input.device());
    T* scale = inv_count.defined() ? inv_count.data() : nullptr;
    detail::check_labels<B>(target.data(), rows, cols, detail::target_site<L>("nll_loss"), target.device(), options.ignore_index, scale);
    auto row_loss = Tensor<B, T>::empty(Shape{rows}, input.device());
    B::launch(rows, kernels::NllForward<T, L>{input.data(), target.data(), row_loss.data(), cols, options.ignore_index}, input.device());
    auto loss = detail::reduce_loss(std::move(row_loss), options.reduction, T(1), scale);
    if (detail::wants_grad(input)) {
        auto node = std::make_shared<detail::NllNode<B, T, L>>();
        node->inputs = {input.impl_ptr(), nullptr, nullptr};
        node->target = target.impl_ptr();
        node->inv_count = std::move(inv_count);
        node->ignore_index = options.ignore_index;
        node->reduction = options.reduction;
        detail::attach(loss.impl(), std::move(node));
    }
    return loss;
}
template <class BA, class TA, class BB, class L>
    requires(!std::is_same_v<BA, BB>)
Tensor<BA, TA> nll_loss(const Tensor<BA, TA>&, const Tensor<BB, L>&, const NllLossOptions& = {}) {
    detail::reject_mix<BA, TA, BB, TA, 2>();
    return {};
}
// With a weight per class, as torch.nn.functional.nll_loss(input, target, weight): row r's loss is
// -weight[target_r] input[r, target_r], and the mean divides by the sum of those weights over the
// rows not ignored. Written with the ops above; an undefined weight is the plain form.
template <class B, class T, std::integral L>
Tensor<B, T> nll_loss(const Tensor<B, T>& input, const Tensor<B, L>& target, const Tensor<B, T>& weight, const NllLossOptions& options = {}) {
    if (!weight.defined()) return nll_loss(input, target, options);
    const auto row_weight = detail::class_row_weights("nll_loss", input, target, weight, options.ignore_index);
    if (input.ndim() != 2) detail::check_class_target("nll_loss", input, target);  // its message for other ranks
    auto per_row = nll_loss(input, target, {.ignore_index = options.ignore_index, .reduction = Reduction::None});  // 0 where ignored
    return detail::reduce_weighted(per_row * row_weight, row_weight, options.reduction);
}

}  // namespace minigrad
