// Every op: forward values, gradient against central differences (double), and its shape errors.
#include "helpers.hpp"

using T2 = mg::Tensor<mg::Cpu, double>;

// A scalar that depends on every element of y with a different weight.
static T2 scalarize(const T2& y) {
    if (y.ndim() == 2) {
        mg::Generator gen(99);
        auto weights = T2::uniform(mg::Shape{y.size(1), 1}, 0.5, 1.5, gen);
        return mg::sum(mg::matmul(y, weights));
    }
    return mg::sum(y);
}

TEST_CASE("matmul: values and gradients of both inputs") {
    auto a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
    auto b = tensor({1, 0, 0, 1, 1, 1}, {3, 2});
    CHECK(mg::matmul(a, b).to_vector() == std::vector<double>{4, 5, 10, 11});
    auto x = random_tensor({4, 3}, 1), w = random_tensor({3, 5}, 2);
    check_gradients([&] { return scalarize(mg::matmul(x, w)); }, {x, w});
}

TEST_CASE("linear: x w^T + b, and gradients of x, weight and bias") {
    auto x = tensor({1, 2, 3, 4}, {2, 2});
    auto w = tensor({1, 0, 1, 1, 0, 2}, {3, 2});
    auto b = tensor({0.5, -1, 0}, {3});
    CHECK(mg::linear(x, w, b).to_vector() == std::vector<double>{1.5, 2, 4, 3.5, 6, 8});
    CHECK(mg::linear(x, w).to_vector() == std::vector<double>{1, 3, 4, 3, 7, 8});
    // Every narrow width the CPU kernel specialises, plus a wide one, and row counts that leave a
    // partial block of four.
    for (std::int64_t out : {1, 3, 4, 10, 17}) {
        for (std::int64_t rows : {1, 5, 8}) {
            auto xs = random_tensor({rows, 6}, 3), ws = random_tensor({out, 6}, 4), bs = random_tensor({out}, 5);
            CAPTURE(out);
            CAPTURE(rows);
            check_gradients([&] { return scalarize(mg::linear(xs, ws, bs)); }, {xs, ws, bs});
        }
    }
}

// backward() runs an activation's gradient inside the launch of the product that makes its dy, where
// nothing else reads the activation's result (detail::product_into_grad). `interpose` multiplies the
// result by 1 before the product reads it: the same numbers, with the fusion out of reach.
template <class T>
struct TwoProducts {
    std::uint64_t launches = 0;  // in backward()
    std::vector<std::vector<T>> grads;
};
template <class T, class Act>
TwoProducts<T> two_products(Act act, bool linear_layers, bool interpose, int second_reader = 0) {
    using X = mg::Tensor<mg::Cpu, T>;
    mg::Generator gen(17);
    auto leaf = [&](mg::Shape shape) { return X::uniform(shape, -1, 1, gen).requires_grad_(); };
    std::vector<X> leaves;
    X loss, h, z;
    auto read = [&](const X& t) { return interpose ? t * T(1) : t; };
    if (linear_layers) {  // linear(act(linear(x)))
        leaves = {leaf({8, 5}), leaf({6, 5}), leaf({6}), leaf({3, 6}), leaf({3})};
        z = mg::linear(leaves[0], leaves[1], leaves[2]);
        h = act(z);
        loss = mg::sum(mg::linear(read(h), leaves[3], leaves[4]));
    } else {  // matmul(act(a), act(b)): both inputs
        leaves = {leaf({4, 5}), leaf({5, 3})};
        h = act(leaves[0]);
        loss = mg::sum(mg::matmul(read(h), read(act(leaves[1]))));
    }
    if (second_reader == 1) loss = loss + mg::sum(h);  // either order: backward() must not depend on which reader runs first
    if (second_reader == 2) loss = mg::sum(h) + loss;
    if (second_reader == 3) loss = loss + mg::sum(z * z);  // the activation's input read too: its gradient adds
    TwoProducts<T> out;
    const auto before = mg::counters().kernel_launches;
    loss.backward();
    out.launches = mg::counters().kernel_launches - before;
    for (const auto& l : leaves) out.grads.push_back(l.grad().to_vector());
    return out;
}

TEST_CASE("backward: an activation read only by a product runs in that product's launch, with the same gradients") {
    auto check = [](auto act, bool epilogue, auto zero) {
        using T = decltype(zero);
        for (bool linear_layers : {true, false}) {
            CAPTURE(linear_layers);
            const auto fused = two_products<T>(act, linear_layers, false);
            const auto apart = two_products<T>(act, linear_layers, true);
            CHECK(fused.grads == apart.grads);  // bit for bit: the same kernels, in one launch
            // apart: the multiplications' gradients (1 or 2) and, for an epilogue, the activations' (1 or 2)
            const std::uint64_t activations = linear_layers ? 1 : 2;
            CHECK(fused.launches + activations * (epilogue ? 2 : 1) == apart.launches);
        }
        // The result also read by something else: its gradient is not whole after the product, so
        // the activation runs on its own, as without the fusion.
        for (int order : {1, 2}) {
            const auto shared = two_products<T>(act, true, false, order);
            const auto shared_apart = two_products<T>(act, true, true, order);
            CHECK(shared.grads == shared_apart.grads);
            CHECK(shared.launches + 1 == shared_apart.launches);  // only the multiplication's gradient
        }
        // The activation's input read by something else: the fused gradient adds to its share.
        const auto adds = two_products<T>(act, true, false, 3);
        const auto adds_apart = two_products<T>(act, true, true, 3);
        CHECK(adds.grads == adds_apart.grads);
        CHECK(adds.launches + (epilogue ? 2 : 1) == adds_apart.launches);
    };
    // one product reading the result twice: two readers, no fusion
    {
        auto a = random_tensor<float>({5, 5}, 41), b = random_tensor<float>({5, 5}, 41);
        auto h = mg::relu(a), hb = mg::relu(b);
        auto launches = mg::counters().kernel_launches;
        mg::sum(mg::matmul(h, h)).backward();
        const auto same = mg::counters().kernel_launches - launches;
        launches = mg::counters().kernel_launches;
        mg::sum(mg::matmul(hb * 1.0f, hb * 1.0f)).backward();
        CHECK(same + 4 == mg::counters().kernel_launches - launches);  // only the multiplications, forward and backward
        CHECK(a.grad().to_vector() == b.grad().to_vector());
    }
    check([](const auto& t) { return mg::relu(t); }, true, 0.0f);
    check([](const auto& t) { return mg::relu(t); }, true, 0.0);
    check([](const auto& t) { return mg::tanh(t); }, true, 0.0f);
    check([](const auto& t) { return mg::sigmoid(t); }, true, 0.0f);
    check([](const auto& t) { return mg::gelu(t); }, true, 0.0f);
    check([](const auto& t) { return mg::exp(t); }, false, 0.0f);  // not an epilogue: launched apart
    // and the fused gradients against central differences
    auto x = random_tensor({5, 4}, 31), w1 = random_tensor({6, 4}, 32), b1 = random_tensor({6}, 33), w2 = random_tensor({3, 6}, 34),
         b2 = random_tensor({3}, 35);
    check_gradients([&] { return scalarize(mg::linear(mg::tanh(mg::linear(x, w1, b1)), w2, b2)); }, {x, w1, b1, w2, b2});
    check_gradients([&] { return scalarize(mg::linear(mg::gelu(mg::linear(x, w1, b1)), w2, b2)); }, {x, w1, b1, w2, b2});
    check_gradients([&] { return scalarize(mg::matmul(mg::sigmoid(x), mg::tanh(mg::transpose(w1, 0, 1)))); }, {x, w1});
}

TEST_CASE("add: same shapes and a broadcast row") {
    auto a = tensor({1, 2, 3, 4}, {2, 2});
    CHECK(mg::add(a, tensor({10, 20, 30, 40}, {2, 2})).to_vector() == std::vector<double>{11, 22, 33, 44});
    CHECK((a + tensor({10, 20}, {2})).to_vector() == std::vector<double>{11, 22, 13, 24});
    CHECK((a + tensor({10, 20}, {1, 2})).to_vector() == std::vector<double>{11, 22, 13, 24});
    auto x = random_tensor({3, 4}, 6), same = random_tensor({3, 4}, 7), row = random_tensor({4}, 8);
    check_gradients([&] { return scalarize(x + same); }, {x, same});
    check_gradients([&] { return scalarize(x + row); }, {x, row});
}

TEST_CASE("add: the same tensor twice accumulates both contributions") {
    auto x = tensor({1, 2}, {2}, true);
    mg::sum(x + x).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{2, 2});
}

TEST_CASE("relu: values and gradient away from the kink") {
    CHECK(mg::relu(tensor({-1, 0, 2}, {3})).to_vector() == std::vector<double>{0, 0, 2});
    auto x = tensor({-0.7, 0.3, 1.2, -2.0, 0.9, -0.1}, {2, 3}, true);
    check_gradients([&] { return scalarize(mg::relu(x)); }, {x});
}

TEST_CASE("sum and mean") {
    auto x = tensor({1, 2, 3, 4}, {2, 2}, true);
    CHECK(mg::sum(x).item() == 10);
    CHECK(mg::mean(x).item() == 2.5);
    CHECK(mg::sum(x).shape() == mg::Shape{});
    auto y = random_tensor({3, 2}, 9);
    check_gradients([&] { return mg::mean(y); }, {y});
    check_gradients([&] { return mg::sum(y); }, {y});
}

TEST_CASE("log_softmax: rows sum to one in probability, gradient") {
    auto x = tensor({1, 2, 3, 1000, 1000, 1000}, {2, 3});
    auto y = mg::log_softmax(x).to_vector();
    CHECK(y[0] == doctest::Approx(1 - std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0))));
    CHECK(y[3] == doctest::Approx(-std::log(3.0)));  // large logits do not overflow
    auto z = random_tensor({4, 5}, 10, -3, 3);
    check_gradients([&] { return scalarize(mg::log_softmax(z)); }, {z});
}

TEST_CASE("cross_entropy: hand-computed values and gradient") {
    // Row 0: logits (0, 0, 0), class 1 -> log 3. Row 1: logits (1, 2, 3), class 2 ->
    // log(e + e^2 + e^3) - 3. The loss is their mean.
    auto logits = tensor({0, 0, 0, 1, 2, 3}, {2, 3});
    auto target = mg::Tensor<mg::Cpu, std::int32_t>::from({1, 2});
    const double row1 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3;
    CHECK(mg::cross_entropy(logits, target).item() == doctest::Approx((std::log(3.0) + row1) / 2));
    auto z = random_tensor({5, 3}, 11, -2, 2);
    auto labels = mg::Tensor<mg::Cpu, std::int32_t>::from({0, 2, 1, 1, 0});
    check_gradients([&] { return mg::cross_entropy(z, labels); }, {z});
}

TEST_CASE("cross_entropy in float matches double") {
    auto z = random_tensor<float>({6, 3}, 12, -2, 2);
    auto zd = mg::Tensor<mg::Cpu, double>::from(std::vector<double>(z.data(), z.data() + 18), {6, 3});
    auto labels = mg::Tensor<mg::Cpu, std::int32_t>::from({0, 1, 2, 2, 1, 0});
    CHECK(mg::cross_entropy(z, labels).item() == doctest::Approx(mg::cross_entropy(zd, labels).item()).epsilon(1e-6));
}

TEST_CASE("argmax: first maximum of each row, no gradient") {
    auto x = tensor({1, 3, 3, 5, 4, 0}, {2, 3}, true);
    CHECK(mg::argmax<std::int32_t>(x, 1).to_vector() == std::vector<std::int32_t>{1, 0});
}

TEST_CASE("gradients accumulate until zero_grad") {
    auto w = tensor({1, 2}, {2}, true);
    mg::sum(w).backward();
    mg::sum(w).backward();
    CHECK(w.grad().to_vector() == std::vector<double>{2, 2});
    w.impl().grad_is_zero = true;  // what Module::zero_grad and SGD::zero_grad do
    CHECK(w.grad().to_vector() == std::vector<double>{0, 0});
    mg::sum(w).backward();
    CHECK(w.grad().to_vector() == std::vector<double>{1, 1});
}

// PyTorch's `a.grad = None`, ported as `a.grad() = T2{}`, would assign to a temporary and leave the
// gradient as it was: it must not compile. a.zero_grad() is the operation it means.
template <class X>
concept grad_assignable = requires(X a) { a.grad() = X{}; };
static_assert(!grad_assignable<T2>, "a.grad() = Tensor{} must not compile: it changes nothing");
static_assert(!std::is_assignable_v<decltype(std::declval<T2&>().grad()), T2>);
static_assert(!std::is_assignable_v<T2, const T2&>, "no assignment to a temporary tensor");
static_assert(std::is_copy_assignable_v<T2> && std::is_move_assignable_v<T2> && std::is_nothrow_move_constructible_v<T2>);

TEST_CASE("zero_grad() on a tensor drops its gradient, as PyTorch's a.grad = None: the next backward starts afresh and SGD skips it") {
    auto w = tensor({1, 2}, {2}, true);
    w.zero_grad();  // no gradient yet: nothing to drop
    CHECK_FALSE(w.grad().defined());
    mg::sum(w).backward();
    mg::sum(w * w).backward();
    CHECK(w.grad().to_vector() == std::vector<double>{3, 5});
    w.zero_grad();
    CHECK(w.grad().to_vector() == std::vector<double>{0, 0});  // reading it gives zeros, as after Module::zero_grad

    mg::optim::SGD sgd(std::vector<T2>{w}, {.lr = 0.5});
    sgd.step();  // w has no gradient since zero_grad: skipped, as PyTorch skips a None grad
    CHECK(w.to_vector() == std::vector<double>{1, 2});
    mg::sum(w).backward();
    CHECK(w.grad().to_vector() == std::vector<double>{1, 1});  // written afresh, not added to 3, 5
    sgd.step();
    CHECK(w.to_vector() == std::vector<double>{0.5, 1.5});
}

TEST_CASE("no_grad records no graph") {
    auto w = tensor({1, 2}, {2}, true);
    mg::NoGradGuard guard;
    auto y = mg::sum(w);
    CHECK_FALSE(y.requires_grad());
    CHECK(error_message([&] { y.backward(); }).find("does not require grad") != std::string::npos);
}

TEST_CASE("errors name the op, the argument and both shapes") {
    auto a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
    auto b = tensor({1, 2, 3, 4}, {2, 2});
    CHECK(error_message([&] { mg::matmul(a, b); }) ==
          "matmul: argument #2 'other' has shape [2, 2], expected [3, *] to match argument #1 'input' of shape [2, 3]");
    CHECK(error_message([&] { mg::matmul(tensor({1, 2}, {2}), b); }) == "matmul: argument #1 'input' has shape [2], expected a matrix [m, k]");
    auto w = tensor(std::vector<double>(12, 0.0), {3, 4});
    CHECK(error_message([&] { mg::linear(a, w); }) == "linear: argument #1 'input' has shape [2, 3], expected [*, 4] (weight has shape [3, 4])");
    CHECK(error_message([&] { mg::linear(tensor(std::vector<double>(8, 0.0), {2, 4}), w, tensor({1, 2}, {2})); }) ==
          "linear: argument #3 'bias' has shape [2], expected [3] (weight has shape [3, 4])");
    CHECK(error_message([&] { mg::add(a, b); }) ==
          "add: argument #2 'other' has shape [2, 2], which does not broadcast with argument #1 'input' of shape [2, 3] "
          "(dimension 1: 2 vs 3; sizes must be equal or one of them 1)");
    CHECK(error_message([&] { mg::log_softmax(tensor({1, 2}, {2})); }) == "log_softmax: argument #1 'input' has shape [2], expected a matrix [rows, classes]");
    CHECK(error_message([&] { mg::argmax(T2::empty(mg::Shape{2, 0})); }) ==
          "argmax: argument #1 'input' has shape [2, 0], which holds no elements: there is no index to take");
    CHECK(error_message([&] { mg::mean(T2::empty(mg::Shape{0})); }) == "mean: argument #1 'input' has shape [0], which holds no elements");
}

TEST_CASE("cross_entropy errors: target shape and labels outside [0, classes)") {
    auto logits = tensor({0, 0, 0, 1, 2, 3}, {2, 3});
    CHECK(error_message([&] { mg::cross_entropy(logits, mg::Tensor<mg::Cpu, std::int32_t>::from({1, 2, 0})); }) ==
          "cross_entropy: argument #2 'target' has shape [3], expected [2] (one class index per row of argument #1 'input', shape [2, 3])");
    CHECK(error_message([&] { mg::cross_entropy(logits, mg::Tensor<mg::Cpu, std::int32_t>::from({1, 3})); }) ==
          "cross_entropy: argument #2 'target' has class 3 at index 1, expected a class in [0, 3)");
    CHECK(error_message([&] { mg::cross_entropy(logits, mg::Tensor<mg::Cpu, std::int32_t>::from({-1, 0})); }).find("has class -1 at index 0") !=
          std::string::npos);
}

TEST_CASE("backward needs a scalar") {
    auto x = tensor({1, 2}, {2}, true);
    CHECK(error_message([&] { mg::relu(x).backward(); }) ==
          "backward: the tensor has shape [2] (2 elements), expected a scalar (1 element); reduce it first, e.g. with sum() or mean()");
}

TEST_CASE("the kernels' inline exp is within 2 ulp of std::exp where softmax uses it") {
    double worst_ulp = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.01f) {
        const double reference = std::exp(static_cast<double>(x));
        const float ref_f = static_cast<float>(reference);
        const double ulp = std::nextafter(ref_f, INFINITY) - ref_f;
        worst_ulp = std::max(worst_ulp, std::abs(mg::kernels::exp_float(x) - reference) / ulp);
    }
    CHECK(worst_ulp < 2.0);
    CHECK(mg::kernels::exp_float(-1000.0f) < 1e-37f);  // clamped, never garbage bits
    CHECK(mg::kernels::exp_float(0.0f) == 1.0f);
}
