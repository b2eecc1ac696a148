// The digits CNN (examples/digits_cnn), shared with the code that measures it (bench/conv_bench.cpp)
// and the PyTorch interop test (tests/safetensors_interop.cpp). Its members carry the names of the
// same torch.nn.Module in bench/torch_examples.py, so each side loads the other's state_dict.
//
//   (N, 64) -> (N, 1, 8, 8) -> Conv(1->16, 3, pad 1) -> BatchNorm -> ReLU -> MaxPool 2   (16x4x4)
//           -> Conv(16->32, 3, pad 1) -> BatchNorm -> ReLU -> MaxPool 2                 (32x2x2)
//           -> Flatten (128) -> Dropout(0.1) -> Linear(128 -> 10)
#pragma once

#include <minigrad/minigrad.hpp>

namespace examples {

template <class B, class T = float>
struct DigitsCnn : minigrad::nn::Module<B, T> {
    // constructed (and so initialised, from the default generator) in this order, as PyTorch's
    minigrad::nn::Conv2d<B, T> conv1{1, 16, 3, {.padding = 1}};
    minigrad::nn::BatchNorm2d<B, T> bn1{16};
    minigrad::nn::Conv2d<B, T> conv2{16, 32, 3, {.padding = 1}};
    minigrad::nn::BatchNorm2d<B, T> bn2{32};
    minigrad::nn::Dropout drop{0.1};
    minigrad::nn::Linear<B, T> fc{128, 10};
    MINIGRAD_MODULE(conv1, bn1, conv2, bn2, drop, fc)

    // x is (N, 64): the 8x8 image's pixels row by row; the result is (N, 10) logits
    minigrad::Tensor<B, T> forward(const minigrad::Tensor<B, T>& x) {
        namespace mg = minigrad;
        auto h = x.reshape({-1, 1, 8, 8});
        h = mg::max_pool2d(mg::relu(bn1(conv1(h))), 2);
        h = mg::max_pool2d(mg::relu(bn2(conv2(h))), 2);
        return fc(drop(mg::flatten(h, 1)));
    }
};

}  // namespace examples
