// The digits example's recipe on a small synthetic set, for the tests that count what a training
// epoch costs on each backend (tests/test_training.cpp, tests/gpu/test_cuda.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include <minigrad/minigrad.hpp>

#include "digits_recipe.hpp"

struct RecipeRun {
    std::vector<minigrad::Counters> after_epoch;  // counters() at the end of each epoch
    std::vector<float> losses;                    // each epoch's summed batch losses, read once at the end
};

// 150 rows of 64 features in shuffled batches of 64 (two full batches and a tail of 22), through
// the digits recipe (examples/common/digits_recipe.hpp); each epoch's summed batch losses recorded
// once in a LossLog.
template <class B>
RecipeRun digits_recipe_epochs(int epochs) {
    namespace mg = minigrad;
    mg::data::Dataset set;
    set.x = mg::data::Matrix{150, 64, std::vector<float>(150 * 64)};
    for (std::size_t i = 0; i < set.x.values.size(); ++i) set.x.values[i] = static_cast<float>((i * 37) % 17) / 16.0f;
    for (int r = 0; r < 150; ++r) set.y.push_back(r % 10);
    mg::manual_seed(3);
    auto model = examples::digits_mlp<B>();
    mg::optim::Adam opt(model.parameters(), {.lr = 1e-3});
    mg::nn::CrossEntropyLoss loss_fn;
    mg::data::DataLoader<B> loader(set, {.batch_size = 64, .shuffle = true, .seed = 1});
    mg::LossLog log(static_cast<std::int64_t>(epochs));
    RecipeRun run;
    for (int epoch = 0; epoch < epochs; ++epoch) {
        const auto loss_sum = examples::digits_epoch(model, opt, loss_fn, loader);
        mg::NoGradGuard no_grad;
        log.record(loss_sum);
        run.after_epoch.push_back(mg::counters());
    }
    run.losses = log.values();
    return run;
}
