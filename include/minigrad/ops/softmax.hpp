// log_softmax, cross_entropy (log-softmax and negative log-likelihood fused, mean over rows) and
// argmax, all along the last axis of a (rows, classes) matrix.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>

#include "checks.hpp"

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

// logits and exps are (rows, cols), target and inv_sum are (rows), y is ()
template <class B, class T, class L>
struct CrossEntropyNode : Node<B, T> {
    std::shared_ptr<TensorImpl<B, L>> target;
    Tensor<B, T> exps, inv_sum;  // the softmax, as exps * inv_sum, from the forward pass
    void backward(TensorImpl<B, T>& out) override {
        auto& logits = *this->inputs[0];
        auto dlogits = grad_slot(logits);
        const auto rows = logits.shape[0], cols = logits.shape[1];
        B::launch_rows(rows, cols,
                       kernels::CrossEntropyBackward<T, L>{exps.data(), inv_sum.data(), target->data, out.grad->data,
                                                           dlogits.data, cols, T(1) / static_cast<T>(rows), dlogits.overwrite},
                       logits.device);
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

// As torch.nn.functional.cross_entropy with class-index targets and mean reduction:
// logits is (rows, classes), target is (rows) with values in [0, classes), result is ()
template <class B, class T, std::integral L>
Tensor<B, T> cross_entropy(const Tensor<B, T>& logits, const Tensor<B, L>& target) {
    detail::require_floating<T>();
    detail::check_defined("cross_entropy", logits, 1, "input");
    detail::check_defined("cross_entropy", target, 2, "target");
    detail::check_ndim("cross_entropy", logits, 1, "input", 2, "a matrix [rows, classes]");
    detail::check_same_device("cross_entropy", logits, "input", target, 2, "target");
    const auto rows = logits.size(0), cols = logits.size(1);
    if (target.shape() != Shape{rows}) {
        detail::fail<ShapeError>("cross_entropy: argument #2 'target' has shape {}, expected [{}] (one class index per row of argument #1 'input', shape {})",
                                 target.shape(), rows, logits.shape());
    }
    if (rows == 0 || cols == 0) {
        detail::fail<ShapeError>("cross_entropy: argument #1 'input' has shape {}, expected at least one row and one class", logits.shape());
    }
    B::check_labels(target.data(), rows, cols, "cross_entropy", target.device());
    auto exps = Tensor<B, T>::empty(logits.shape(), logits.device());
    auto inv_sum = Tensor<B, T>::empty(Shape{rows}, logits.device());
    auto loss = Tensor<B, T>::empty(Shape{}, logits.device());
    {
        auto row_loss = Tensor<B, T>::empty(Shape{rows}, logits.device());
        B::launch_rows(rows, cols,
                       kernels::CrossEntropyForward<T, L>{logits.data(), target.data(), row_loss.data(), exps.data(), inv_sum.data(), cols},
                       logits.device());
        B::sum(row_loss.data(), rows, loss.data(), T(1) / static_cast<T>(rows), true, logits.device());
    }
    if (detail::wants_grad(logits)) {
        auto node = std::make_shared<detail::CrossEntropyNode<B, T, L>>();
        node->inputs = {logits.impl_ptr(), nullptr, nullptr};
        node->target = target.impl_ptr();
        node->exps = std::move(exps);
        node->inv_sum = std::move(inv_sum);
        detail::attach(loss.impl(), std::move(node));
    }
    return loss;
}
template <class BA, class TA, class BB, class L>
    requires(!std::is_same_v<BA, BB>)
Tensor<BA, TA> cross_entropy(const Tensor<BA, TA>&, const Tensor<BB, L>&) {
    detail::reject_mix<BA, TA, BB, TA, 2>();
    return {};
}

// Index of the largest value in each row (no gradient); x is (rows, cols), result is (rows)
template <class L = std::int32_t, class B, class T>
Tensor<B, L> argmax(const Tensor<B, T>& x) {
    detail::check_defined("argmax", x, 1, "input");
    detail::check_ndim("argmax", x, 1, "input", 2, "a matrix [rows, classes]");
    if (x.size(1) == 0) detail::fail<ShapeError>("argmax: argument #1 'input' has shape {}, expected at least one column", x.shape());
    auto out = Tensor<B, L>::empty(Shape{x.size(0)}, x.device());
    B::launch(x.size(0), kernels::ArgmaxRows<T, L>{x.data(), out.data(), x.size(1)}, x.device());
    return out;
}

}  // namespace minigrad
