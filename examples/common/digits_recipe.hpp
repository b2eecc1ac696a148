// The digits example's model and training epoch (examples/digits), for the code that measures the
// recipe without the example around it: bench/digits_bench.cpp and the tests that count what an
// epoch costs (tests/recipe_run.hpp); examples/digits_cnn trains its CNN with the same epoch.
// examples/digits writes its own loop, which also averages gradients across processes under
// --distributed.
#pragma once

#include <minigrad/minigrad.hpp>

namespace examples {

// 64 -> 128 -> ReLU -> Dropout(0.1) -> 10, weights drawn from the default generator.
template <class B>
auto digits_mlp() {
    namespace mg = minigrad;
    return mg::nn::Sequential(mg::nn::Linear<B>(64, 128), mg::nn::ReLU{}, mg::nn::Dropout(0.1), mg::nn::Linear<B>(128, 10));
}

// One epoch: a step per batch of the loader; returns the batch losses summed on the backend (no
// host read).
template <class B, class Model, class Optimizer>
minigrad::Tensor<B> digits_epoch(Model& model, Optimizer& opt, minigrad::nn::CrossEntropyLoss& loss_fn, minigrad::data::DataLoader<B>& loader) {
    namespace mg = minigrad;
    mg::Tensor<B> loss_sum;
    for (const auto& [x, y] : loader) {
        auto loss = loss_fn(model(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        mg::NoGradGuard no_grad;
        loss_sum = loss_sum.defined() ? loss_sum + loss.detach() : loss.detach();
    }
    return loss_sum;
}

}  // namespace examples
