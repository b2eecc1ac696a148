// One Iris training run on any backend: data, model (seed 42), SGD and a step that records its
// loss. Shared by the tests that compare a captured step with eager steps.
#pragma once

#include <span>
#include <string>

#include <minigrad/minigrad.hpp>

#include "iris.hpp"

template <class B>
struct IrisRun {
    minigrad::Tensor<B> x;
    minigrad::Tensor<B, std::int32_t> y;
    examples::IrisMLP<B> model;
    minigrad::optim::SGD<B, float> opt;
    minigrad::nn::CrossEntropyLoss loss_fn;

    explicit IrisRun(double momentum = 0.0, double lr = 0.05)
        : IrisRun(examples::load_iris(std::string(MINIGRAD_DATA_DIR) + "/iris.csv"), momentum, lr) {}
    IrisRun(const examples::IrisSplit& split, double momentum, double lr)
        : x(minigrad::Tensor<B>::from(std::span<const float>(split.x_train.values), {split.x_train.rows, split.x_train.cols})),
          y(minigrad::Tensor<B, std::int32_t>::from(std::span<const std::int32_t>(split.y_train), {split.x_train.rows})),
          model(10, seeded()),
          opt(model.parameters(), {.lr = lr, .momentum = momentum}) {}
    static minigrad::Generator& seeded() {
        static minigrad::Generator gen;
        gen.seed(42);
        return gen;
    }
    void step(minigrad::LossLog& log) {
        auto loss = loss_fn(model(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    }
};
