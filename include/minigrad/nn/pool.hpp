// MaxPool2d, AvgPool2d and AdaptiveAvgPool2d as torch.nn's (ops/pool.hpp): no parameters and no
// backend of their own, as the activations (Sequential::to copies them).
#pragma once

#include "../ops/pool.hpp"

namespace minigrad::nn {

// MaxPool2d (Max) and AvgPool2d: a window of kernel_size, stride (0: the kernel size) and padding.
template <bool Max>
struct Pool2d {
    Size2 kernel_size, stride = 0, padding = 0;
    explicit Pool2d(Size2 kernel, Size2 stride_ = 0, Size2 padding_ = 0) : kernel_size(kernel), stride(stride_), padding(padding_) {}
    template <class B, class T>
    Tensor<B, T> forward(const Tensor<B, T>& x) const {
        if constexpr (Max)
            return max_pool2d(x, kernel_size, stride, padding);
        else
            return avg_pool2d(x, kernel_size, stride, padding);
    }
    template <class B, class T>
    Tensor<B, T> operator()(const Tensor<B, T>& x) const {
        return forward(x);
    }
};
using MaxPool2d = Pool2d<true>;
using AvgPool2d = Pool2d<false>;

struct AdaptiveAvgPool2d {
    Size2 output_size;
    explicit AdaptiveAvgPool2d(Size2 output) : output_size(output) {}
    template <class B, class T>
    Tensor<B, T> forward(const Tensor<B, T>& x) const {
        return adaptive_avg_pool2d(x, output_size);
    }
    template <class B, class T>
    Tensor<B, T> operator()(const Tensor<B, T>& x) const {
        return forward(x);
    }
};

}  // namespace minigrad::nn
