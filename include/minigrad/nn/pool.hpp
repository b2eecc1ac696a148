// MaxPool2d, AvgPool2d and AdaptiveAvgPool2d as torch.nn's (ops/pool.hpp): no parameters and no
// backend of their own, as the activations (Sequential::to copies them).
#pragma once

#include "../ops/pool.hpp"

namespace minigrad::nn {

// MaxPool2d and AvgPool2d: a window of kernel_size, stride (0: the kernel size) and padding, or
// the options of ops/pool.hpp (MaxPool2d(3, {.stride = 2, .ceil_mode = true})).
struct MaxPool2d {
    Size2 kernel_size;
    MaxPool2dOptions options;
    explicit MaxPool2d(Size2 kernel, Size2 stride = 0, Size2 padding = 0) : kernel_size(kernel), options{.stride = stride, .padding = padding} {}
    MaxPool2d(Size2 kernel, const MaxPool2dOptions& o) : kernel_size(kernel), options(o) {}
    template <class B, class T>
    Tensor<B, T> forward(const Tensor<B, T>& x) const {
        return max_pool2d(x, kernel_size, options);
    }
    template <class B, class T>
    Tensor<B, T> operator()(const Tensor<B, T>& x) const {
        return forward(x);
    }
};
struct AvgPool2d {
    Size2 kernel_size;
    AvgPool2dOptions options;
    explicit AvgPool2d(Size2 kernel, Size2 stride = 0, Size2 padding = 0) : kernel_size(kernel), options{.stride = stride, .padding = padding} {}
    AvgPool2d(Size2 kernel, const AvgPool2dOptions& o) : kernel_size(kernel), options(o) {}
    template <class B, class T>
    Tensor<B, T> forward(const Tensor<B, T>& x) const {
        return avg_pool2d(x, kernel_size, options);
    }
    template <class B, class T>
    Tensor<B, T> operator()(const Tensor<B, T>& x) const {
        return forward(x);
    }
};

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
