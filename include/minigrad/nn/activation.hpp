// Activations as layers: ReLU, Tanh, Sigmoid, GELU (exact or tanh form) and Softmax(dim). They have no
// parameters and no backend of their own: each works on any tensor, and moves between backends as
// it is (Sequential::to copies it).
#pragma once

#include <string_view>

#include "../ops/softmax.hpp"
#include "../ops/unary.hpp"

namespace minigrad::nn {

struct ReLU {
    template <class T>
    using rule = kernels::Relu<T>;  // its kernel rule, for a product that takes it as its epilogue (Linear)
    template <class T>
    rule<T> kernel_rule() const {
        return {};
    }
    template <class B, class T>
    Tensor<B, T> forward(const Tensor<B, T>& x) const {
        return relu(x);
    }
    template <class B, class T>
    Tensor<B, T> operator()(const Tensor<B, T>& x) const {
        return relu(x);
    }
};

struct Tanh {
    template <class T>
    using rule = kernels::Tanh<T>;  // its kernel rule, for a product that takes it as its epilogue (Linear)
    template <class T>
    rule<T> kernel_rule() const {
        return {};
    }
    template <class B, class T>
    Tensor<B, T> forward(const Tensor<B, T>& x) const {
        return tanh(x);
    }
    template <class B, class T>
    Tensor<B, T> operator()(const Tensor<B, T>& x) const {
        return tanh(x);
    }
};

struct Sigmoid {
    template <class T>
    using rule = kernels::Sigmoid<T>;  // its kernel rule, for a product that takes it as its epilogue (Linear)
    template <class T>
    rule<T> kernel_rule() const {
        return {};
    }
    template <class B, class T>
    Tensor<B, T> forward(const Tensor<B, T>& x) const {
        return sigmoid(x);
    }
    template <class B, class T>
    Tensor<B, T> operator()(const Tensor<B, T>& x) const {
        return sigmoid(x);
    }
};

// As torch.nn.GELU(approximate): "none" (the default, the exact erf form) or "tanh".
struct GELU {
    template <class T>
    using rule = kernels::Gelu<T>;  // its kernel rule, for a product that takes it as its epilogue (Linear)
    bool tanh_form = false;
    explicit GELU(std::string_view approximate = "none") : tanh_form(minigrad::detail::gelu_tanh_form("GELU", approximate)) {}
    template <class T>
    rule<T> kernel_rule() const {
        return {tanh_form};
    }
    template <class B, class T>
    Tensor<B, T> forward(const Tensor<B, T>& x) const {
        return gelu(x, tanh_form ? "tanh" : "none");
    }
    template <class B, class T>
    Tensor<B, T> operator()(const Tensor<B, T>& x) const {
        return forward(x);
    }
};

// As torch.nn.Softmax(dim): along any dim of the input, a negative one counting from the end. The
// dim is checked against each input's shape by softmax(x, dim), the op it forwards to.
struct Softmax {
    int dim;
    explicit Softmax(int dim_) : dim(dim_) {}
    template <class B, class T>
    Tensor<B, T> forward(const Tensor<B, T>& x) const {
        return minigrad::softmax(x, dim);
    }
    template <class B, class T>
    Tensor<B, T> operator()(const Tensor<B, T>& x) const {
        return forward(x);
    }
};

}  // namespace minigrad::nn
