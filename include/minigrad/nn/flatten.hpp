// Flatten(start_dim = 1, end_dim = -1) as torch.nn.Flatten: dims start_dim..end_dim of the input
// merged into one, the batch dim kept by default; a layer between a convolution's (N, C, H, W)
// output and a Linear. No parameters and no backend of its own, as the activations (Sequential::to
// copies it).
#pragma once

#include <cstdint>

#include "../ops/shape.hpp"

namespace minigrad::nn {

struct Flatten {
    std::int64_t start_dim = 1;
    std::int64_t end_dim = -1;
    explicit Flatten(std::int64_t start_dim_ = 1, std::int64_t end_dim_ = -1) : start_dim(start_dim_), end_dim(end_dim_) {}
    // The dims are checked against each input's shape by flatten(x, start_dim, end_dim).
    template <class B, class T>
    Tensor<B, T> forward(const Tensor<B, T>& x) const {
        return minigrad::flatten(x, start_dim, end_dim);
    }
    template <class B, class T>
    Tensor<B, T> operator()(const Tensor<B, T>& x) const {
        return forward(x);
    }
};

}  // namespace minigrad::nn
