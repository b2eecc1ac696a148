// CrossEntropyLoss as a layer, as torch.nn.CrossEntropyLoss() with class-index targets.
#pragma once

#include "../ops/softmax.hpp"

namespace minigrad::nn {

struct CrossEntropyLoss {
    // logits is (rows, classes), target is (rows) class indices, result is () (mean over rows)
    template <class BA, class T, class BB, class L>
    auto operator()(const Tensor<BA, T>& logits, const Tensor<BB, L>& target) const {
        return cross_entropy(logits, target);
    }
};

}  // namespace minigrad::nn
