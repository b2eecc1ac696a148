// sum and mean of every element, to a scalar (shape []).
#pragma once

#include <memory>

#include "checks.hpp"

namespace minigrad {
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

}  // namespace minigrad
