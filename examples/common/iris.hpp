// The Iris workload shared by the example, the benchmark and the tests: the lesson's MLP
// (4 -> hidden -> ReLU -> 3) and its data, split as scikit-learn splits it and min-max scaled.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <minigrad/minigrad.hpp>

namespace examples {

template <class B>
struct IrisMLP : minigrad::nn::Module<B> {
    minigrad::nn::Linear<B> fc1, fc2;
    minigrad::nn::ReLU relu;
    explicit IrisMLP(std::int64_t hidden = 10, minigrad::Generator& gen = minigrad::default_generator())
        : fc1(4, hidden, true, gen), fc2(hidden, 3, true, gen) {}
    // fc2(relu(fc1(x))), with the ReLU run in fc1's launch (its product's epilogue)
    auto forward(const minigrad::Tensor<B>& x) { return fc2(fc1(x, relu)); }
    MINIGRAD_MODULE(fc1, relu, fc2)
};

struct IrisSplit {
    minigrad::data::Matrix x_train, x_test;  // scaled with the train rows' min and max
    std::vector<std::int32_t> y_train, y_test;
    std::vector<std::string> class_names;
};

inline IrisSplit load_iris(const std::string& path, std::uint32_t seed = 42, double test_size = 0.2) {
    auto iris = minigrad::data::read_csv(path, {.label = "species"});
    iris.check_classes(3, path);  // IrisMLP has three outputs
    auto [train, test] = minigrad::data::train_test_split(iris, {.test_size = test_size, .seed = seed});
    minigrad::data::MinMaxScaler scaler;
    scaler.fit(train.x);
    return {scaler.transform(train.x), scaler.transform(test.x), train.y, test.y, iris.class_names};
}

}  // namespace examples
