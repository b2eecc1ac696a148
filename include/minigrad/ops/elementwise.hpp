// add (same shapes, or a row broadcast along the rows of a matrix) and relu.
#pragma once

#include <memory>

#include "checks.hpp"

namespace minigrad {
namespace detail {

// a is (rows, cols) or any shape, b is a's shape or (cols) / (1, cols), y is a's shape
template <class B, class T>
struct AddNode : Node<B, T> {
    void backward(TensorImpl<B, T>& out) override {
        auto& a = *this->inputs[0];
        auto& b = *this->inputs[1];
        const T* dy = out.grad->data;
        if (a.requires_grad) {
            auto da = grad_slot(a);
            B::launch(a.numel(), kernels::AccumulateGrad<T>{dy, da.data, da.overwrite}, a.device);
        }
        if (b.requires_grad) {
            auto db = grad_slot(b);
            if (b.numel() == a.numel()) {
                B::launch(b.numel(), kernels::AccumulateGrad<T>{dy, db.data, db.overwrite}, b.device);
            } else {  // broadcast row: its gradient sums over the rows it was added to
                const auto cols = b.numel();
                B::sum_rows(dy, a.numel() / cols, cols, db.data, db.overwrite, b.device);
            }
        }
    }
};

// x, y are (n); the rule reads the output y (its sign is x's), so x's values need not be kept
template <class B, class T>
struct ReluNode : Node<B, T> {
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch(x.numel(), kernels::ReluBackward<T>{out.data, out.grad->data, dx.data, dx.overwrite}, x.device);
    }
};

}  // namespace detail

// a + b, where b has a's shape or is one row ([cols] or [1, cols]) added to every row of a
template <class B, class T>
Tensor<B, T> add(const Tensor<B, T>& a, const Tensor<B, T>& b) {
    detail::check_defined("add", a, 1, "input");
    detail::check_defined("add", b, 2, "other");
    detail::check_same_device("add", a, "input", b, 2, "other");
    const bool same = a.shape() == b.shape();
    const auto cols = a.ndim() >= 1 ? a.size(a.ndim() - 1) : 1;
    const bool row = a.ndim() == 2 && b.numel() == cols &&
                     (b.shape() == Shape{cols} || b.shape() == Shape{1, cols});
    if (!same && !row) {
        detail::fail<ShapeError>("add: argument #2 'other' has shape {}, expected {} or a row [{}] to match argument #1 'input' of shape {}",
                                 b.shape(), a.shape(), cols, a.shape());
    }
    auto y = Tensor<B, T>::empty(a.shape(), a.device());
    B::launch(a.numel(), kernels::AddForward<T>{a.data(), b.data(), y.data(), same ? 0 : b.numel()}, a.device());
    if (detail::wants_grad(a, b)) {
        auto node = std::make_shared<detail::AddNode<B, T>>();
        node->inputs = {a.impl_ptr(), b.impl_ptr(), nullptr};
        detail::attach(y.impl(), std::move(node));
    }
    return y;
}
template <class BA, class TA, class BB, class TB>
    requires detail::Mixed<BA, TA, BB, TB>
Tensor<BA, TA> add(const Tensor<BA, TA>&, const Tensor<BB, TB>&) {
    detail::reject_mix<BA, TA, BB, TB, 2>();
    return {};
}
template <class BA, class TA, class BB, class TB>
auto operator+(const Tensor<BA, TA>& a, const Tensor<BB, TB>& b) {
    return add(a, b);
}

template <class B, class T>
Tensor<B, T> relu(const Tensor<B, T>& x) {
    detail::check_defined("relu", x, 1, "input");
    auto y = Tensor<B, T>::empty(x.shape(), x.device());
    B::launch(x.numel(), kernels::ReluForward<T>{x.data(), y.data()}, x.device());
    if (detail::wants_grad(x)) {
        auto node = std::make_shared<detail::ReluNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        detail::attach(y.impl(), std::move(node));
    }
    return y;
}

}  // namespace minigrad
