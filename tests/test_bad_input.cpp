// Bad input to the core (shapes, sizes, memory, autograd, optimizers, host tables) is a clear
// minigrad::Error that changes nothing, never a crash or a silent wrong result.
#include <cmath>
#include <cstdint>
#include <limits>

#include "helpers.hpp"
#include "iris.hpp"

TEST_CASE("a shape whose element count overflows is a ShapeError, not a wrapped count") {
    const std::int64_t big = std::int64_t{1} << 32;
    CHECK(error_message([&] { mg::Shape{big, big}; }) ==
          "Shape: [4294967296, 4294967296] holds more elements than can be addressed (at most 1152921504606846975)");
    CHECK_THROWS_AS((mg::Tensor<mg::Cpu>::zeros({big, big})), mg::ShapeError);
    // Products that wrap to a small number or to zero are caught as well.
    CHECK_THROWS_AS((mg::Shape{std::int64_t{1} << 62, 4, 0}), mg::ShapeError);
    CHECK_THROWS_AS((mg::Shape{3, std::int64_t{1} << 61}), mg::ShapeError);
    CHECK(mg::Shape{std::int64_t{1} << 30, std::int64_t{1} << 29}.numel() == std::int64_t{1} << 59);
    CHECK_THROWS_AS((mg::Shape{std::int64_t{1} << 30, std::int64_t{1} << 30}), mg::ShapeError);  // 2^60 > max_numel
    CHECK(mg::Shape{0, std::int64_t{1} << 40}.numel() == 0);
}

TEST_CASE("a shape with a zero dim still may not have dims whose product overflows: merging them would wrap") {
    const std::int64_t big = std::int64_t{1} << 40;
    // [0, 2^40, 2^40] holds nothing, but flatten(x, 1, 2) made it [0, 0] (2^80 wrapped; UBSan in the asan build)
    CHECK(error_message([&] { mg::Shape{0, big, big}; }) ==
          "Shape: [0, 1099511627776, 1099511627776] holds no elements, but its other dimensions multiply to more than can be addressed "
          "(at most 1152921504606846975)");
    CHECK_THROWS_AS((mg::Tensor<mg::Cpu>::zeros({big, 0, big})), mg::ShapeError);  // the same wherever the zero is
    CHECK(mg::Shape{0, std::int64_t{1} << 30, std::int64_t{1} << 29}.numel() == 0);
    CHECK(mg::flatten(mg::Tensor<mg::Cpu>::zeros({0, std::int64_t{1} << 30, std::int64_t{1} << 29}), 1, 2).shape() ==
          mg::Shape{0, std::int64_t{1} << 59});
}

TEST_CASE("reshape and cat: sizes whose product or sum overflows are refused by the op, not wrapped") {
    auto x = mg::Tensor<mg::Cpu>::zeros({8});
    // (2^62 + 1) * 4 wrapped to 4, which divides 8: the overflow (UB) went on to a Shape error naming neither reshape nor its argument
    CHECK(error_message([&] { mg::reshape(x, {(std::int64_t{1} << 62) + 1, 4, -1}); }) ==
          "reshape: argument #2 'shape' [4611686018427387905, 4, -1] has sizes whose product overflows 64 bits (a shape holds at most "
          "1152921504606846975 elements)");
    CHECK(error_message([&] { x.view({std::int64_t{1} << 62, 8, 0}); }) ==
          "view: argument #2 'shape' [4611686018427387904, 8, 0] has sizes whose product overflows 64 bits (a shape holds at most "
          "1152921504606846975 elements)");
    CHECK(mg::reshape(x, {2, -1, 2}).shape() == mg::Shape{2, 2, 2});
    // Nine empty tensors of 2^60 - 1 columns: the sum wrapped to a negative size and cat returned shape [0] (the dim dropped)
    const std::int64_t most = mg::Shape::max_numel;
    const std::vector<mg::Tensor<mg::Cpu>> wide(9, mg::Tensor<mg::Cpu>::zeros({0, most}));
    CHECK(error_message([&] { mg::cat(wide, 1); }) ==
          "cat: the sizes along dim 1 add up to more than a dim can hold (at most 1152921504606846975): 1152921504606846975 before "
          "tensor #2, plus its 1152921504606846975 (shape [0, 1152921504606846975])");
    CHECK(mg::cat({mg::Tensor<mg::Cpu>::zeros({0, 2}), mg::Tensor<mg::Cpu>::zeros({0, 3})}, 1).shape() == mg::Shape{0, 5});
}

TEST_CASE("binary_cross_entropy_with_logits over zero columns: pos_weight's gradient is empty, not a division by zero") {
    // input (3, 0) with a pos_weight of shape [0] that wants a gradient: the backward divided the
    // element count by the column count, 0 / 0 (SIGFPE)
    auto x = mg::Tensor<mg::Cpu>::zeros({3, 0});
    auto pos_weight = mg::Tensor<mg::Cpu>::ones({0});
    x.requires_grad_();
    pos_weight.requires_grad_();
    auto loss = mg::binary_cross_entropy_with_logits(x, mg::Tensor<mg::Cpu>::zeros({3, 0}),
                                                     {.pos_weight = pos_weight, .reduction = mg::Reduction::Sum});
    CHECK(loss.item() == 0);
    loss.backward();
    CHECK(x.grad().shape() == mg::Shape{3, 0});
    CHECK(pos_weight.grad().shape() == mg::Shape{0});
}

TEST_CASE("argmax into a narrow index type: an index that does not fit is refused, not wrapped") {
    // 300 columns, the largest value in the last: argmax<std::uint8_t> wrote its index 299 as 43
    std::vector<float> values(300, 0.0f);
    values[299] = 1;
    const auto x = mg::Tensor<mg::Cpu>::from(values, {1, 300});
    CHECK(error_message([&] { mg::argmax<std::uint8_t>(x, 1); }) ==
          "argmax: argument #1 'input' has shape [1, 300], whose index 299 along dim 1 does not fit the index type uint8 (at most 255); "
          "ask for a wider one, such as argmax<std::int64_t>");
    CHECK(error_message([&] { mg::argmax<std::uint8_t>(x); }) ==
          "argmax: argument #1 'input' has shape [300], whose index 299 along dim 0 does not fit the index type uint8 (at most 255); "
          "ask for a wider one, such as argmax<std::int64_t>");
    CHECK(error_message([&] { mg::argmax<std::int8_t>(x, -1); }) ==
          "argmax: argument #1 'input' has shape [1, 300], whose index 299 along dim 1 does not fit the index type int8 (at most 127); "
          "ask for a wider one, such as argmax<std::int64_t>");
    CHECK(mg::argmax<std::int16_t>(x, 1).to_vector() == std::vector<std::int16_t>{299});
    CHECK(mg::argmax<std::int16_t>(x).item() == 299);
    CHECK(mg::argmax<std::uint8_t>(x, 0).to_vector() == std::vector<std::uint8_t>(300, 0));  // dim 0 has one entry: index 0 fits
    // 256 columns: the largest index, 255, fits a uint8
    values.resize(256);
    values[255] = 1;
    CHECK(mg::argmax<std::uint8_t>(mg::Tensor<mg::Cpu>::from(values, {1, 256}), 1).to_vector() == std::vector<std::uint8_t>{255});
}

TEST_CASE("linear/matmul never see an overflowing shape: a huge Linear is refused before any write") {
    const std::int64_t big = std::int64_t{1} << 40;
    CHECK_THROWS_AS((mg::nn::Linear<mg::Cpu>(big, big)), mg::ShapeError);
}

TEST_CASE("an allocation larger than the machine can give is an OutOfMemoryError naming the size") {
    // 2^59 floats: a valid shape whose 2 EiB no machine of this kind has.
    const std::int64_t n = std::int64_t{1} << 30, m = std::int64_t{1} << 29;
    const auto message = error_message([&] { mg::Tensor<mg::Cpu>::empty({n, m}); });
    CHECK(message.rfind("out of memory: tried to allocate 2199023255552.00 MiB on cpu (", 0) == 0);
    CHECK_THROWS_AS((mg::Tensor<mg::Cpu>::empty({n, m})), mg::OutOfMemoryError);
    // The library still works afterwards.
    CHECK(mg::Tensor<mg::Cpu>::ones({2}).to_vector() == std::vector<float>{1, 1});
}

TEST_CASE("a zero-size tensor is created, moved and read without touching memory") {
    auto empty = mg::Tensor<mg::Cpu>::from(std::vector<float>{});
    CHECK(empty.numel() == 0);
    CHECK(empty.to<mg::Cpu>().to_vector().empty());
    CHECK(mg::Tensor<mg::Cpu>::zeros({0, 3}).to_vector().empty());
    CHECK(mg::Tensor<mg::Cpu>::uniform({0}, -1, 1).numel() == 0);
}

TEST_CASE("the Cpu backend has one device: another index is refused, not recorded") {
    CHECK(error_message([] { mg::Tensor<mg::Cpu>::zeros({2}, 1); }) == "Cpu: device index 1 given, but the Cpu backend has one device, 0");
    CHECK_THROWS_AS((mg::Tensor<mg::Cpu>::from(std::vector<float>{1}, mg::Shape{1}, -1)), mg::DeviceError);
}

TEST_CASE("size(axis) checks the axis and counts a negative one from the end") {
    auto t = mg::Tensor<mg::Cpu>::zeros({2, 3});
    CHECK(t.size(0) == 2);
    CHECK(t.size(-1) == 3);
    CHECK(t.size(-2) == 2);
    CHECK(error_message([&] { t.size(2); }) == "size: axis 2 is out of range for a tensor of shape [2, 3] (2 dimensions; valid: -2..1)");
    CHECK(error_message([&] { t.size(-3); }) == "size: axis -3 is out of range for a tensor of shape [2, 3] (2 dimensions; valid: -2..1)");
    auto scalar = mg::Tensor<mg::Cpu>::zeros({});
    CHECK(error_message([&] { scalar.size(0); }) == "size: axis 0 asked of a scalar (shape []), which has no dimensions");
}

TEST_CASE("uniform refuses a non-finite or reversed range") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK(error_message([&] { mg::Tensor<mg::Cpu>::uniform({2}, nan, 1); }) ==
          "Tensor::uniform: the range [nan, 1) must be finite in the tensor's type, with lo <= hi");
    CHECK(error_message([&] { mg::Tensor<mg::Cpu>::uniform({2}, 1, -1); }) ==
          "Tensor::uniform: the range [1, -1) must be finite in the tensor's type, with lo <= hi");
}

TEST_CASE("a second backward() through a freed graph is an error that changes no gradient") {
    auto w = tensor({1.0, 2.0}, {2}, true);
    auto loss = mg::sum(mg::relu(w));
    loss.backward();
    const auto grad = w.grad().to_vector();
    const auto message = error_message([&] { loss.backward(); });
    CHECK(message == "backward: this graph was already run and freed by an earlier backward(); compute the result again from "
                     "its inputs (as in PyTorch without retain_graph, a graph is freed once backward() has run through it)");
    CHECK(w.grad().to_vector() == grad);  // not accumulated a second time

    // An intermediate result whose graph was freed cannot be built on either.
    auto h = mg::relu(w);
    mg::sum(h).backward();
    auto again = mg::sum(h);
    CHECK(error_message([&] { again.backward(); }) == message);
    CHECK(w.grad().to_vector() == std::vector<double>{2, 2});

    // A fresh forward pass works as usual.
    mg::sum(mg::relu(w)).backward();
    CHECK(w.grad().to_vector() == std::vector<double>{3, 3});
}

TEST_CASE("SGD refuses NaN, infinite and out-of-float-range settings where they enter") {
    mg::manual_seed(1);
    mg::nn::Linear<mg::Cpu> layer(2, 2);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    CHECK(error_message([&] { mg::optim::SGD(layer.parameters(), {.lr = nan}); }) == "SGD: lr=nan must be a finite number");
    CHECK(error_message([&] { mg::optim::SGD(layer.parameters(), {.lr = inf}); }) == "SGD: lr=inf must be a finite number");
    CHECK(error_message([&] { mg::optim::SGD(layer.parameters(), {.lr = 1e39}); }) ==
          "SGD: lr=1e+39 does not fit float, the type it computes in (at most 3.4028235e+38)");
    CHECK(error_message([&] { mg::optim::SGD(layer.parameters(), {.lr = 0.1, .momentum = nan}); }) ==
          "SGD: momentum=nan must be a finite number");
    CHECK(error_message([&] { mg::optim::SGD(layer.parameters(), {.lr = 0.1, .dampening = inf}); }) ==
          "SGD: dampening=inf must be a finite number");
    CHECK(error_message([&] { mg::optim::SGD(layer.parameters(), {.lr = 0.1, .weight_decay = -1}); }) ==
          "SGD: weight_decay=-1 must be >= 0");

    CHECK(error_message([&] { mg::optim::SGD(layer.parameters(), {.lr = 1e-46}); }) ==
          "SGD: lr=1e-46 underflows to 0 as float, the type it computes in");
    CHECK(error_message([&] { mg::optim::SGD(layer.parameters(), {.lr = 0.1, .momentum = 0.5, .dampening = -1e-50}); }) ==
          "SGD: dampening=-1e-50 underflows to 0 as float, the type it computes in");
    CHECK_NOTHROW(mg::optim::SGD(layer.parameters(), {.lr = 1e-45}));  // a subnormal float, not 0

    // 1e39 and 1e-300 fit a double model's parameters.
    mg::nn::Linear<mg::Cpu, double> wide(2, 2);
    CHECK_NOTHROW(mg::optim::SGD(wide.parameters(), {.lr = 1e39}));
    CHECK_NOTHROW(mg::optim::SGD(wide.parameters(), {.lr = 1e-300}));

    mg::optim::SGD opt(layer.parameters(), {.lr = 0.1});
    CHECK(error_message([&] { opt.set_lr(nan); }) == "SGD: lr=nan must be a finite number");
    CHECK(error_message([&] { opt.set_lr(-0.5); }) == "SGD: lr=-0.5 must be >= 0");
    // Positive, but 0 as a float: the step would silently do nothing.
    CHECK(error_message([&] { opt.set_lr(1e-46); }) == "SGD: lr=1e-46 underflows to 0 as float, the type it computes in");
    CHECK(opt.options().lr == 0.1);  // a refused value changes nothing
    opt.set_lr(0.2);
    CHECK(opt.options().lr == 0.2);
}

TEST_CASE("a parameter listed twice in an optimizer is refused, not updated twice per step") {
    mg::manual_seed(1);
    mg::nn::Linear<mg::Cpu> layer(2, 3);
    CHECK(error_message([&] { mg::optim::SGD({layer.weight, layer.bias, layer.weight}, {.lr = 0.1}); }) ==
          "SGD: parameter #2 is the same tensor as parameter #0 (shape [3, 2]); list each parameter once");
    // A detached handle shares the storage, so it counts as the same tensor.
    auto alias = layer.bias.detach();
    alias.requires_grad_();
    CHECK(error_message([&] { mg::optim::SGD({layer.bias, alias}, {.lr = 0.1}); }) ==
          "SGD: parameter #1 is the same tensor as parameter #0 (shape [3]); list each parameter once");
}

TEST_CASE("host tables: an inconsistent Matrix is an error in every reader, never a read past the end") {
    mg::data::Matrix bad{3, 2, {1, 2, 3}};  // says 6 values, holds 3
    mg::data::MinMaxScaler scaler;
    CHECK(error_message([&] { scaler.fit(bad); }) == "MinMaxScaler::fit: the matrix says 3 rows x 2 columns but holds 3 values");
    mg::data::Matrix good{2, 2, {1, 2, 3, 4}};
    scaler.fit(good);
    CHECK(error_message([&] { (void)scaler.transform(bad); }) ==
          "MinMaxScaler::transform: the matrix says 3 rows x 2 columns but holds 3 values");
    mg::data::Matrix negative{-1, 2, {}};
    CHECK(error_message([&] { scaler.fit(negative); }) == "MinMaxScaler::fit: the matrix says -1 rows x 2 columns but holds 0 values");
    CHECK(error_message([&] { mg::Tensor<mg::Cpu>::from(bad); }) == "Tensor::from: 3 values given for shape [3, 2], which holds 6");

    mg::data::Dataset ds{good, {0}, {"a", "b"}, {"x"}, {}};  // two rows, one label
    CHECK(error_message([&] { (void)ds.subset({0}); }) == "Dataset::subset: the dataset has 2 rows of features but 1 labels");
}

TEST_CASE("MinMaxScaler: a failed fit keeps the previous fit; a value scaling past float range is refused") {
    mg::data::MinMaxScaler scaler;
    CHECK(error_message([&] { (void)scaler.transform(mg::data::Matrix{1, 1, {1}}); }) == "MinMaxScaler::transform: call fit() first");
    scaler.fit(mg::data::Matrix{2, 1, {0, 2}});
    CHECK_THROWS_AS(scaler.fit(mg::data::Matrix{2, 1, {0, std::numeric_limits<float>::quiet_NaN()}}), mg::ValueError);
    CHECK(scaler.transform(mg::data::Matrix{1, 1, {1}}).values == std::vector<float>{0.5f});

    scaler.fit(mg::data::Matrix{2, 1, {0, 1e-30f}});
    CHECK(error_message([&] { (void)scaler.transform(mg::data::Matrix{1, 1, {1e30f}}); }) ==
          "MinMaxScaler::transform: row 0 column 0 is 1e+30, which scales to inf (expected a finite number)");

    // A scaler fit on zero columns is fitted, and maps zero columns.
    mg::data::MinMaxScaler none;
    none.fit(mg::data::Matrix{2, 0, {}});
    CHECK(none.transform(mg::data::Matrix{3, 0, {}}).rows == 3);
}

TEST_CASE("skip_init builds a model with no random draws, NaN until loaded") {
    mg::manual_seed(3);
    const auto first = mg::Tensor<mg::Cpu>::uniform({4}, 0, 1).to_vector();
    mg::manual_seed(3);
    auto model = mg::nn::skip_init<examples::IrisMLP<mg::Cpu>>(7);
    CHECK(mg::Tensor<mg::Cpu>::uniform({4}, 0, 1).to_vector() == first);  // the generator did not move
    REQUIRE(model.parameters().size() == 4);
    CHECK(model.fc1.weight.shape() == mg::Shape{7, 4});
    for (auto& p : model.parameters())
        for (float v : p.to_vector()) CHECK(std::isnan(v));
    CHECK(model.fc1.weight.requires_grad());
    // Once loaded it is an ordinary model.
    examples::IrisMLP<mg::Cpu> trained(7);
    model.load_parameters_from(trained);
    auto x = mg::Tensor<mg::Cpu>::ones({2, 4});
    CHECK(model(x).to_vector() == trained(x).to_vector());
}

TEST_CASE("LossLog: a capacity whose byte count would overflow is refused, not wrapped to a tiny buffer") {
    CHECK(error_message([] { mg::LossLog log(std::int64_t{1} << 62); }) ==
          "LossLog: initial_capacity=4611686018427387904 is more values than can be addressed (at most 576460752303423487)");
    mg::LossLog small(-5);  // taken as 1, and grows
    auto loss = mg::Tensor<mg::Cpu>::full({}, 2.5f);
    for (int i = 0; i < 3; ++i) small.record(loss);
    CHECK(small.values() == std::vector<float>{2.5f, 2.5f, 2.5f});
}

TEST_CASE("backward refuses a graph whose saved inputs were changed in place since the forward pass") {
    auto w = mg::Tensor<mg::Cpu>::from(std::vector<float>{2}, {1, 1});
    w.requires_grad_();
    auto x = mg::Tensor<mg::Cpu>::from(std::vector<float>{3}, {1, 1});
    x.requires_grad_();
    auto y = mg::sum(mg::matmul(x, w));  // dy/dx reads w = 2
    mg::sum(mg::matmul(mg::Tensor<mg::Cpu>::ones({1, 1}), w)).backward();
    mg::optim::SGD opt({w}, {.lr = 1.0});
    opt.step();  // w: 2 -> 1, in place
    CHECK(error_message([&] { y.backward(); }) ==
          "backward: argument #2 of matmul (shape [1, 1]) was modified in place after the forward pass that used it "
          "(by an optimizer step or a load); compute the result again from the new values");
    CHECK_FALSE(x.grad().defined());  // nothing ran
    // A fresh forward pass reads the new values and works.
    mg::sum(mg::matmul(x, w)).backward();
    CHECK(x.grad().to_vector() == std::vector<float>{1});

    // A load between forward and backward is caught the same way.
    mg::manual_seed(1);
    mg::nn::Linear<mg::Cpu> layer(2, 1);
    auto out = mg::sum(layer(mg::Tensor<mg::Cpu>::ones({1, 2})));
    mg::nn::Linear<mg::Cpu> other(2, 1);
    layer.load_parameters(other.parameter_values());
    CHECK(error_message([&] { out.backward(); }).rfind("backward: argument #2 of linear (shape [1, 2]) was modified in place", 0) == 0);
}

TEST_CASE("reading a gradient after zero_grad does not change what the next step does") {
    mg::manual_seed(1);
    mg::nn::Linear<mg::Cpu> a(1, 1, false), b(1, 1, false);
    b.load_parameters_from(a);
    mg::optim::SGD opt_a(a.parameters(), {.lr = 0.1, .momentum = 0.9});
    mg::optim::SGD opt_b(b.parameters(), {.lr = 0.1, .momentum = 0.9});
    mg::sum(a(mg::Tensor<mg::Cpu>::ones({1, 1}))).backward();
    mg::sum(b(mg::Tensor<mg::Cpu>::ones({1, 1}))).backward();
    opt_a.step();
    opt_b.step();
    opt_a.zero_grad();
    opt_b.zero_grad();
    CHECK(a.weight.grad().to_vector() == std::vector<float>{0});  // reads zeros...
    opt_a.step();
    opt_b.step();
    CHECK(a.weight.to_vector() == b.weight.to_vector());  // ...and still skips the parameter, as b does
}

TEST_CASE("ops name the argument that is an undefined tensor") {
    mg::Tensor<mg::Cpu> undefined;
    auto m = mg::Tensor<mg::Cpu>::ones({2, 2});
    CHECK(error_message([&] { mg::matmul(undefined, m); }) ==
          "matmul: argument #1 'input' is an undefined tensor (default-constructed, or an absent grad)");
    CHECK(error_message([&] { mg::linear(m, undefined); }) ==
          "linear: argument #2 'weight' is an undefined tensor (default-constructed, or an absent grad)");
    CHECK(error_message([&] { mg::add(m, undefined); }) ==
          "add: argument #2 'other' is an undefined tensor (default-constructed, or an absent grad)");
    CHECK(error_message([&] { mg::relu(undefined); }) == "relu: argument #1 'input' is an undefined tensor (default-constructed, or an absent grad)");
    CHECK(error_message([&] { mg::sum(undefined); }) == "sum: argument #1 'input' is an undefined tensor (default-constructed, or an absent grad)");
    CHECK(error_message([&] { mg::cross_entropy(m, mg::Tensor<mg::Cpu, std::int32_t>()); }) ==
          "cross_entropy: argument #2 'target' is an undefined tensor (default-constructed, or an absent grad)");
    CHECK(error_message([&] { undefined.backward(); }) == "backward: the tensor is undefined (default-constructed, or an absent grad)");
}

TEST_CASE("NaN: relu passes it through and argmax takes it as the largest value, as PyTorch does") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const auto y = mg::relu(mg::Tensor<mg::Cpu>::from(std::vector<float>{nan, -1, 1})).to_vector();
    CHECK(std::isnan(y[0]));
    CHECK(y[1] == 0);
    CHECK(y[2] == 1);
    auto rows = mg::Tensor<mg::Cpu>::from(std::vector<float>{1, nan, 3, nan, 5, 2, 4, 1, nan}, {3, 3});
    CHECK(mg::argmax(rows, 1).to_vector() == std::vector<std::int64_t>{1, 0, 2});
}

TEST_CASE("uniform refuses a range that is not finite in the tensor's type, or whose width overflows") {
    CHECK(error_message([] { mg::Tensor<mg::Cpu>::uniform({3}, -1e39, 1e39); }) ==
          "Tensor::uniform: the range [-1e+39, 1e+39) must be finite in the tensor's type, with lo <= hi");
    CHECK_THROWS_AS((mg::Tensor<mg::Cpu, double>::uniform({3}, -1e308, 1e308)), mg::ValueError);
    CHECK_NOTHROW(mg::Tensor<mg::Cpu, double>::uniform({3}, -1e39, 1e39));
}

TEST_CASE("printing: integer tensors print as integers, an empty tensor as []") {
    CHECK(fmt::format("{}", mg::Tensor<mg::Cpu, std::int32_t>::from(std::vector<std::int32_t>{1, -2})) ==
          "tensor([1, -2], backend=Cpu, shape=[2])");
    CHECK(fmt::format("{}", mg::Tensor<mg::Cpu>::zeros({0})) == "tensor([], backend=Cpu, shape=[0])");
    CHECK(fmt::format("{}", mg::Tensor<mg::Cpu>::zeros({2, 0})) == "tensor([], backend=Cpu, shape=[2, 0])");
}

TEST_CASE("a label of an unsigned type is reported as the value it holds") {
    auto logits = mg::Tensor<mg::Cpu>::zeros({2, 3});
    auto target = mg::Tensor<mg::Cpu, std::uint64_t>::from(std::vector<std::uint64_t>{0, UINT64_MAX});
    CHECK(error_message([&] { mg::cross_entropy(logits, target); }) ==
          "cross_entropy: argument #2 'target' has class 18446744073709551615 at index 1, expected a class in [0, 3)");
}

// The label check counts the rows a mean divides by in the label's own width; here 8-bit labels
// over more ignored rows than an 8-bit count holds, 16-bit labels with their own ignore_index, an
// ignore_index no 8-bit label can hold, and more classes than a uint8 label can name (no label can
// be out of range).
TEST_CASE("the label check in every label width: the rows a mean keeps, and what it refuses") {
    const std::int64_t rows = 600;
    auto logits = mg::Tensor<mg::Cpu, double>::zeros({rows, 3});  // every row's loss is log 3
    std::vector<std::int8_t> small(rows);
    for (std::int64_t r = 0; r < rows; ++r) small[static_cast<std::size_t>(r)] = static_cast<std::int8_t>(r % 2 ? -100 : r % 3);
    // the sum over the 300 kept rows, divided by 300 (300 ignored), not by 600 or by 600 - 300 mod 256
    CHECK(mg::cross_entropy(logits, mg::Tensor<mg::Cpu, std::int8_t>::from(small)).item() == doctest::Approx(std::log(3.0)));
    CHECK(mg::cross_entropy(logits, mg::Tensor<mg::Cpu, std::int8_t>::from(small), {.reduction = mg::Reduction::Sum}).item() ==
          doctest::Approx(300 * std::log(3.0)));
    std::vector<std::int16_t> wide(small.begin(), small.end());
    wide[8] = 1000;  // a kept row's label; ignored below, where ignore_index is 1000
    CHECK(error_message([&] { mg::cross_entropy(logits, mg::Tensor<mg::Cpu, std::int16_t>::from(wide)); }) ==
          "cross_entropy: argument #2 'target' has class 1000 at index 8, expected a class in [0, 3)");
    for (auto& v : wide) v = v == -100 ? 1000 : v;
    CHECK(mg::cross_entropy(logits, mg::Tensor<mg::Cpu, std::int16_t>::from(wide), {.ignore_index = 1000, .reduction = mg::Reduction::Sum})
              .item() == doctest::Approx(299 * std::log(3.0)));
    // ignore_index 1000 cannot be an 8-bit label: -100 is then a bad class
    CHECK(error_message([&] { mg::cross_entropy(logits, mg::Tensor<mg::Cpu, std::int8_t>::from(small), {.ignore_index = 1000}); }) ==
          "cross_entropy: argument #2 'target' has class -100 at index 1, expected a class in [0, 3)");
    // 300 classes: every uint8 label names one
    auto many = mg::Tensor<mg::Cpu, double>::zeros({2, 300});
    CHECK(mg::cross_entropy(many, mg::Tensor<mg::Cpu, std::uint8_t>::from(std::vector<std::uint8_t>{0, 255})).item() ==
          doctest::Approx(std::log(300.0)));
}

TEST_CASE("messages: detail::format and fail write what fmt::format writes, from any argument types") {
    using mg::detail::format;
    const std::string s = "text";
    const std::string_view sv = "view";
    const char* null_text = nullptr;
    CHECK(format("{} {} {} {}", -7, 7u, std::int8_t{-3}, std::uint8_t{200}) == fmt::format("{} {} {} {}", -7, 7u, std::int8_t{-3}, std::uint8_t{200}));
    CHECK(format("{} {}", std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::size_t>::max()) ==
          fmt::format("{} {}", std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::size_t>::max()));
    CHECK(format("{} {} {}", 0.1f, 0.1, 1e300) == "0.1 0.1 1e+300");  // a float prints as the float it is
    CHECK(format("{} {} {}", std::nan(""), -std::numeric_limits<float>::infinity(), 2.5L) == "nan -inf 2.5");
    CHECK(format("{:.2f} {:.4g} {:x} {:08x} {:02x}", 3.14159, 0.000123456f, 255, 0xbeefu, std::uint8_t{7}) == "3.14 0.0001235 ff 0000beef 07");
    CHECK(format("{} {} {} {}|{}", true, 'c', s, sv, "literal") == "true c text view|literal");
    CHECK(format("{:>6}|{:<3}|", s, 'x') == fmt::format("{:>6}|{:<3}|", s, 'x'));
    CHECK(format("{} {}", mg::Shape{2, 3}, mg::Shape{}) == "[2, 3] []");
    CHECK(format("{{literal}} {} }}", 1) == "{literal} 1 }");
    CHECK(format("{}", null_text) == "(null)");
    CHECK(format("no arguments") == "no arguments");
    CHECK(error_message([] { mg::detail::fail<mg::ValueError>("op: x has shape {}, {} of {:.1f}", mg::Shape{4}, "two", 2.34); }) ==
          "op: x has shape [4], two of 2.3");
    CHECK_THROWS_AS(mg::detail::fail<mg::ShapeError>("{}", 1), mg::ShapeError);
}
