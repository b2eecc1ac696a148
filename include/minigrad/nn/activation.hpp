// ReLU as a layer. It has no parameters and no backend of its own: it works on any tensor.
#pragma once

#include "../ops/unary.hpp"

namespace minigrad::nn {

struct ReLU {
    template <class B, class T>
    Tensor<B, T> forward(const Tensor<B, T>& x) const {
        return relu(x);
    }
    template <class B, class T>
    Tensor<B, T> operator()(const Tensor<B, T>& x) const {
        return relu(x);
    }
};

}  // namespace minigrad::nn
