// The per-element losses, as torch.nn.functional has them: mse_loss, l1_loss and
// binary_cross_entropy_with_logits (pos_weight), with reduction mean | sum | none (the Reduction
// every loss takes, and reduce_loss, are here too). This file holds their per-element functors (both
// backends launch them), forwards, backward rules and argument checks. The class-index losses,
// cross_entropy and nll_loss, are in ops/cross_entropy.hpp; the nn::XxxLoss modules in nn/loss.hpp.
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>

#include "checks.hpp"

namespace minigrad {

// As PyTorch's reduction='mean' | 'sum' | 'none'. None returns the per-row (class-index losses) or
// per-element (the others) values, differentiable like the reduced forms.
enum class Reduction { Mean, Sum, None };

}  // namespace minigrad

namespace minigrad::kernels {

// The per-element losses: each Rule gives the loss of input x against target y (with weight w, the
// pos_weight of x's column; 1 where there is none) and its derivatives in x, y and w.

// (x - y)^2
struct MseRule {
    template <class T>
    MINIGRAD_HD static T value(T x, T y, T) { return (x - y) * (x - y); }
    template <class T>
    MINIGRAD_HD static T d_input(T x, T y, T) { return T(2) * (x - y); }
    template <class T>
    MINIGRAD_HD static T d_target(T x, T y, T) { return T(2) * (y - x); }
    template <class T>
    MINIGRAD_HD static T d_weight(T, T, T) { return T(0); }
};

// |x - y|; the derivative at x = y is 0, as PyTorch's sign
struct L1Rule {
    template <class T>
    MINIGRAD_HD static T sign(T v) { return v > T(0) ? T(1) : v < T(0) ? T(-1) : T(0); }
    template <class T>
    MINIGRAD_HD static T value(T x, T y, T) { return x > y ? x - y : y - x; }
    template <class T>
    MINIGRAD_HD static T d_input(T x, T y, T) { return sign(x - y); }
    template <class T>
    MINIGRAD_HD static T d_target(T x, T y, T) { return sign(y - x); }
    template <class T>
    MINIGRAD_HD static T d_weight(T, T, T) { return T(0); }
};

// -(w y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))), in PyTorch's stable form
// (1 - y) x + (1 + (w - 1) y) softplus(-x), softplus(-x) = log1p(e^-|x|) + max(-x, 0)
struct BceWithLogitsRule {
    template <class T>
    MINIGRAD_HD static T softplus_neg(T x) { return std::log1p(std::exp(-(x < T(0) ? -x : x))) + (x < T(0) ? -x : T(0)); }
    template <class T>
    MINIGRAD_HD static T sigmoid_neg(T x) {  // sigmoid(-x) = 1 - sigmoid(x), without cancellation
        const T e = std::exp(-(x < T(0) ? -x : x));
        return x >= T(0) ? e / (T(1) + e) : T(1) / (T(1) + e);
    }
    template <class T>
    MINIGRAD_HD static T value(T x, T y, T w) { return (T(1) - y) * x + (T(1) + (w - T(1)) * y) * softplus_neg(x); }
    template <class T>
    MINIGRAD_HD static T d_input(T x, T y, T w) { return (T(1) - y) - (T(1) + (w - T(1)) * y) * sigmoid_neg(x); }
    template <class T>
    MINIGRAD_HD static T d_target(T x, T, T w) { return -x + (w - T(1)) * softplus_neg(x); }
    template <class T>
    MINIGRAD_HD static T d_weight(T x, T y, T) { return y * softplus_neg(x); }
};

// x, y, out are (n); weight (may be null) is (cols), repeated along the last dim of x; i over n
template <class T, class Rule>
struct PointwiseLossForward {
    const T* x;
    const T* y;
    const T* weight;
    T* out;
    index_t cols;
    MINIGRAD_HD void operator()(index_t i) const { out[i] = Rule::value(x[i], y[i], weight ? weight[i % cols] : T(1)); }
};

// Which derivative a PointwiseLossBackward writes.
enum class LossArg { Input, Target, Weight };

// x, y, d are (n), weight (may be null) is (cols) as in the forward, dloss is (n) when per_element
// (reduction none), else (1); i over n. d = dloss * scale * (the Rule's derivative in wrt). For
// wrt = Weight, d is per element; the caller sums it over rows into the weight's gradient.
template <class T, class Rule>
struct PointwiseLossBackward {
    const T* x;
    const T* y;
    const T* weight;
    const T* dloss;
    T* d;
    index_t cols;
    T scale;
    LossArg wrt;
    bool per_element;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const {
        const T w = weight ? weight[i % cols] : T(1);
        const T dv = wrt == LossArg::Input    ? Rule::d_input(x[i], y[i], w)
                     : wrt == LossArg::Target ? Rule::d_target(x[i], y[i], w)
                                              : Rule::d_weight(x[i], y[i], w);
        d[i] = write(d[i], dv * dloss[per_element ? i : 0] * scale, overwrite);
    }
};

// The functors this file's ops launch, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using LossFunctors = Functors<PointwiseLossForward<T, MseRule>, PointwiseLossBackward<T, MseRule>, PointwiseLossForward<T, L1Rule>,
                             PointwiseLossBackward<T, L1Rule>, PointwiseLossForward<T, BceWithLogitsRule>,
                             PointwiseLossBackward<T, BceWithLogitsRule>>;

}  // namespace minigrad::kernels

namespace minigrad {

template <class B, class T>
struct BceWithLogitsOptions {
    Tensor<B, T> pos_weight{};  // (cols): the weight of the positive class of each column; none: 1
    Reduction reduction = Reduction::Mean;
};

namespace detail {

// per is the per-row or per-element loss; the result as `reduction` asks. A mean is scaled by
// mean_scale, or by the device scalar mean_device_scale where given (1 / the rows not ignored).
template <class B, class T>
Tensor<B, T> reduce_loss(Tensor<B, T> per, Reduction reduction, T mean_scale, const T* mean_device_scale = nullptr) {
    if (reduction == Reduction::None) return per;
    const bool mean = reduction == Reduction::Mean;
    auto out = Tensor<B, T>::empty(Shape{}, per.device());
    B::sum(per.data(), per.numel(), out.data(), mean ? mean_scale : T(1), true, per.device(), mean ? mean_device_scale : nullptr);
    return out;
}

// input, target are any one shape; weight (optional) is (cols), cols the last dim of input;
// y is () or input's shape for reduction none
template <class B, class T, class Rule>
struct PointwiseLossNode : Node<B, T> {
    const char* op;
    Reduction reduction;
    unsigned saved_inputs() const override { return 0b111; }
    const char* op_name() const override { return op; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto& y = *this->inputs[1];
        const TensorImpl<B, T>* weight = this->inputs[2].get();
        const auto n = x.numel();
        const auto cols = weight ? weight->numel() : kernels::index_t{1};
        const T scale = reduction == Reduction::Mean ? T(1) / static_cast<T>(n) : T(1);
        const auto derivative = [&](kernels::LossArg wrt, T* d, bool overwrite) {
            B::launch(n,
                      kernels::PointwiseLossBackward<T, Rule>{x.data, y.data, weight ? weight->data : nullptr, out.grad->data, d, cols,
                                                              scale, wrt, reduction == Reduction::None, overwrite},
                      x.device);
        };
        if (x.requires_grad) {
            auto dx = grad_slot(x);
            derivative(kernels::LossArg::Input, dx.data, dx.overwrite);
        }
        if (y.requires_grad) {
            auto dy = grad_slot(y);
            derivative(kernels::LossArg::Target, dy.data, dy.overwrite);
        }
        if (weight && weight->requires_grad) {  // per element, then summed over the rows it was repeated along
            auto per_element = Tensor<B, T>::empty(x.shape, x.device);
            derivative(kernels::LossArg::Weight, per_element.data(), true);
            auto dw = grad_slot(*this->inputs[2]);
            B::sum_rows(per_element.data(), cols > 0 ? n / cols : 0, cols, dw.data, dw.overwrite, x.device);  // input (rows, 0): no rows to sum
        }
    }
};

template <class Rule, class B, class T>
Tensor<B, T> pointwise_loss(const char* op, const Tensor<B, T>& input, const Tensor<B, T>& target, const Tensor<B, T>& weight,
                            Reduction reduction) {
    require_floating<T>();
    check_defined(op, input, 1, "input");
    check_defined(op, target, 2, "target");
    check_same_device(op, input, "input", target, 2, "target");
    if (target.shape() != input.shape()) {
        fail<ShapeError>("{}: argument #2 'target' has shape {}, expected {} (the shape of argument #1 'input')", op, target.shape(),
                         input.shape());
    }
    const std::int64_t cols = input.ndim() == 0 ? 1 : input.size(-1);
    if (weight.defined()) {
        check_same_device(op, input, "input", weight, 3, "pos_weight");
        if (weight.shape() != Shape{cols}) {
            fail<ShapeError>("{}: argument #3 'pos_weight' has shape {}, expected [{}] (one weight per column of argument #1 'input', shape {})",
                             op, weight.shape(), cols, input.shape());
        }
    }
    const auto n = input.numel();
    auto per = Tensor<B, T>::empty(input.shape(), input.device());
    B::launch(n,
              kernels::PointwiseLossForward<T, Rule>{input.data(), target.data(), weight.defined() ? weight.data() : nullptr, per.data(),
                                                     cols},
              input.device());
    auto loss = reduce_loss(std::move(per), reduction, T(1) / static_cast<T>(n));
    if (wants_grad(input, target, weight)) {
        auto node = std::make_shared<PointwiseLossNode<B, T, Rule>>();
        node->inputs = {input.impl_ptr(), target.impl_ptr(), weight.defined() ? weight.impl_ptr() : nullptr};
        node->op = op;
        node->reduction = reduction;
        attach(loss.impl(), std::move(node));
    }
    return loss;
}

}  // namespace detail

// As torch.nn.functional.mse_loss: input and target of one shape, (input - target)^2 reduced.
template <class B, class T>
Tensor<B, T> mse_loss(const Tensor<B, T>& input, const Tensor<B, T>& target, Reduction reduction = Reduction::Mean) {
    return detail::pointwise_loss<kernels::MseRule>("mse_loss", input, target, Tensor<B, T>{}, reduction);
}

// As torch.nn.functional.l1_loss: |input - target| reduced; the gradient where they are equal is 0.
template <class B, class T>
Tensor<B, T> l1_loss(const Tensor<B, T>& input, const Tensor<B, T>& target, Reduction reduction = Reduction::Mean) {
    return detail::pointwise_loss<kernels::L1Rule>("l1_loss", input, target, Tensor<B, T>{}, reduction);
}

// As torch.nn.functional.binary_cross_entropy_with_logits: input (logits) and target (in [0, 1])
// of one shape; pos_weight, where given, is (cols) for the last dim of input.
template <class B, class T>
Tensor<B, T> binary_cross_entropy_with_logits(const Tensor<B, T>& input, const Tensor<B, T>& target,
                                              const BceWithLogitsOptions<B, T>& options = {}) {
    return detail::pointwise_loss<kernels::BceWithLogitsRule>("binary_cross_entropy_with_logits", input, target, options.pos_weight,
                                                              options.reduction);
}

// Mixed backends or element types: a compile error that says which (ops/checks.hpp).
template <class BA, class TA, class BB, class TB>
    requires detail::Mixed<BA, TA, BB, TB>
Tensor<BA, TA> mse_loss(const Tensor<BA, TA>&, const Tensor<BB, TB>&, Reduction = Reduction::Mean) {
    detail::reject_mix<BA, TA, BB, TB, 2>();
    return {};
}
template <class BA, class TA, class BB, class TB>
    requires detail::Mixed<BA, TA, BB, TB>
Tensor<BA, TA> l1_loss(const Tensor<BA, TA>&, const Tensor<BB, TB>&, Reduction = Reduction::Mean) {
    detail::reject_mix<BA, TA, BB, TB, 2>();
    return {};
}
template <class BA, class TA, class BB, class TB>
    requires detail::Mixed<BA, TA, BB, TB>
Tensor<BA, TA> binary_cross_entropy_with_logits(const Tensor<BA, TA>&, const Tensor<BB, TB>&, const BceWithLogitsOptions<BA, TA>& = {}) {
    detail::reject_mix<BA, TA, BB, TB, 2>();
    return {};
}

}  // namespace minigrad
