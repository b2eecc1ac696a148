// Adam, AdamW, RMSprop, clip_grad_norm_ and the schedulers: PyTorch parity on Iris (reference
// losses from tools/make_goldens.py in tests/data), every refused setting with its message, an
// exact resume from state files, one launch per step, and captured steps (EmulatedGraphs) that
// follow the step count and schedule changes on every replay.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>

#include <nlohmann/json.hpp>

#include "emulated_graphs.hpp"
#include "helpers.hpp"
#include "iris.hpp"
#include "temp_dir.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_optim {

namespace fs = std::filesystem;
namespace io = mg::io;
namespace optim = mg::optim;

namespace {

const fs::path test_data = MINIGRAD_TEST_DATA_DIR;


std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

// The Iris training split as examples::load_iris makes it, on backend B.
template <class B>
struct IrisData {
    mg::Tensor<B> x;
    mg::Tensor<B, std::int32_t> y;
    IrisData() {
        const auto split = examples::load_iris(std::string(MINIGRAD_DATA_DIR) + "/iris.csv");
        x = mg::Tensor<B>::from(std::span<const float>(split.x_train.values), {split.x_train.rows, split.x_train.cols});
        y = mg::Tensor<B, std::int32_t>::from(std::span<const std::int32_t>(split.y_train), {split.x_train.rows});
    }
};

// An optimizer of either kind behind one step()/zero_grad(), for the table-driven tests.
template <class B>
struct AnyOptimizer {
    std::unique_ptr<optim::Optimizer> holder;
    std::function<void()> step, zero_grad;
    std::function<void(const fs::path&)> save_state, load_state;
    template <class O>
    static AnyOptimizer make(std::unique_ptr<O> opt) {
        AnyOptimizer any;
        O* o = opt.get();
        any.step = [o] { o->step(); };
        any.zero_grad = [o] { o->zero_grad(); };
        any.save_state = [o](const fs::path& p) { o->save_state(p); };
        any.load_state = [o](const fs::path& p) { o->load_state(p); };
        any.holder = std::move(opt);
        return any;
    }
    optim::Optimizer& base() { return *holder; }
};

// A run as tools/make_goldens.py lists it (JSON).
template <class B>
AnyOptimizer<B> make_optimizer(const nlohmann::json& run, std::vector<mg::Tensor<B>> params) {
    const std::string kind = run.at("optimizer");
    if (kind == "Adam" || kind == "AdamW") {
        const double lr = run.at("lr"), b1 = run.at("betas")[0], b2 = run.at("betas")[1], eps = run.at("eps"), wd = run.at("weight_decay");
        if (kind == "Adam") return AnyOptimizer<B>::make(std::make_unique<optim::Adam<B, float>>(params, optim::AdamOptions{lr, {b1, b2}, eps, wd}));
        return AnyOptimizer<B>::make(std::make_unique<optim::AdamW<B, float>>(params, optim::AdamWOptions{lr, {b1, b2}, eps, wd}));
    }
    REQUIRE(kind == "RMSprop");
    return AnyOptimizer<B>::make(std::make_unique<optim::RMSprop<B, float>>(
        params, optim::RmspropOptions{run.at("lr"), run.at("alpha"), run.at("eps"), run.at("weight_decay"), run.at("momentum"), run.at("centered")}));
}

const nlohmann::json& golden_runs() {
    static const nlohmann::json runs =
        nlohmann::json::parse(io::load_safetensors(test_data / "optim_goldens.safetensors").metadata.at("runs"));
    return runs;
}
std::vector<double> golden(const std::string& name) {
    const auto file = io::load_safetensors(test_data / "optim_goldens.safetensors");
    REQUIRE(file.find(name) != nullptr);
    return file.find(name)->values<double>();
}

// The model tools/make_goldens.py starts from (minigrad's seeded Iris MLP, as saved).
template <class B>
examples::IrisMLP<B> initial_model() {
    examples::IrisMLP<B> model;
    model.load(test_data / "optim_iris_init.safetensors");
    return model;
}

// Full-batch steps; returns the loss of every step (computed before its update).
template <class B>
std::vector<float> train(examples::IrisMLP<B>& model, AnyOptimizer<B>& opt, const IrisData<B>& data, int steps) {
    mg::nn::CrossEntropyLoss loss_fn;
    mg::LossLog log;
    for (int i = 0; i < steps; ++i) {
        auto loss = loss_fn(model(data.x), data.y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    }
    return log.values();
}

}  // namespace

TEST_CASE("the optimizer fixtures are what minigrad makes now: the seeded Iris MLP and examples::load_iris's split") {
    mg::Generator gen(42);
    examples::IrisMLP<mg::Cpu> model(10, gen);
    const auto split = examples::load_iris(std::string(MINIGRAD_DATA_DIR) + "/iris.csv");
    const std::vector<std::int64_t> labels(split.y_train.begin(), split.y_train.end());
    // MINIGRAD_WRITE_FIXTURES=1 rewrites them (then run tools/make_goldens.py).
    if (const char* write = std::getenv("MINIGRAD_WRITE_FIXTURES"); write && std::string(write) == "1") {
        model.save(test_data / "optim_iris_init.safetensors");
        io::save_safetensors(test_data / "optim_iris_data.safetensors",
                             {io::TensorData::from<float>("x_train", {split.x_train.rows, split.x_train.cols}, split.x_train.values),
                              io::TensorData::from<std::int64_t>("y_train", {split.x_train.rows}, labels)});
    }
    TempDir dir;
    model.save(dir / "now.safetensors");
    CHECK(read_bytes(dir / "now.safetensors") == read_bytes(test_data / "optim_iris_init.safetensors"));
    const auto data = io::load_safetensors(test_data / "optim_iris_data.safetensors");
    CHECK(data.find("x_train")->values<float>() == split.x_train.values);
    CHECK(data.find("y_train")->values<std::int64_t>() == labels);
}

TEST_CASE("Adam, AdamW and RMSprop match PyTorch 1.13 on Iris within 1e-4 relative at every step") {
    const IrisData<mg::Cpu> data;
    REQUIRE(golden_runs().size() == 5);
    for (const auto& run : golden_runs()) {
        const std::string name = run.at("name");
        CAPTURE(name);
        auto model = initial_model<mg::Cpu>();
        auto opt = make_optimizer<mg::Cpu>(run, model.parameters());
        const auto expected = golden(name + ".loss");
        const auto losses = train(model, opt, data, run.at("steps"));
        REQUIRE(losses.size() == expected.size());
        double worst = 0;
        for (std::size_t i = 0; i < losses.size(); ++i) worst = std::max(worst, std::abs(losses[i] - expected[i]) / std::abs(expected[i]));
        MESSAGE(name, ": ", losses.size(), " steps, loss ", expected.front(), " -> ", expected.back(), ", worst relative gap to PyTorch ", worst);
        CHECK(worst < 1e-4);
    }
}

TEST_CASE("StepLR and CosineAnnealingLR give PyTorch's learning rates, through any optimizer's set_lr") {
    auto w = random_tensor<float>({3}, 1);
    optim::SGD sgd({w}, {.lr = 0.1});
    optim::Adam adam({w}, {.lr = 0.1});
    optim::lr_scheduler::StepLR step_lr(sgd, 3, 0.5);
    optim::lr_scheduler::CosineAnnealingLR cosine(adam, 10, 0.001);
    const auto step_expected = golden("steplr.lr"), cosine_expected = golden("cosine.lr");
    for (std::size_t i = 0; i < step_expected.size(); ++i) {
        step_lr.step();
        cosine.step();
        CAPTURE(i);
        CHECK(step_lr.get_lr() == doctest::Approx(step_expected[i]).epsilon(1e-12));
        CHECK(cosine.get_lr() == doctest::Approx(cosine_expected[i]).epsilon(1e-12));
        CHECK(adam.options().lr == cosine.get_lr());
    }
    CHECK(error_message([&] { optim::lr_scheduler::StepLR(sgd, 0); }) == "StepLR: step_size=0 must be >= 1");
    CHECK(error_message([&] { optim::lr_scheduler::StepLR(sgd, 2, -1); }) == "StepLR: gamma=-1 must be >= 0");
    CHECK(error_message([&] { optim::lr_scheduler::CosineAnnealingLR(adam, 0); }) == "CosineAnnealingLR: T_max=0 must be >= 1");
    CHECK(error_message([&] { optim::lr_scheduler::CosineAnnealingLR(adam, 5, NAN); }) ==
          "CosineAnnealingLR: eta_min=nan must be a finite number");
    // A T_max past INT64_MAX / 2 (a schedule that never restarts): step() computed 2 * T_max, a
    // signed overflow (UBSan in the asan build); the rate is the cosine's first step, barely below lr
    for (const std::int64_t t_max : {std::int64_t{1} << 62, std::numeric_limits<std::int64_t>::max()}) {
        CAPTURE(t_max);
        optim::SGD far_sgd({w}, {.lr = 0.1});
        optim::lr_scheduler::CosineAnnealingLR far(far_sgd, t_max);
        far.step();
        far.step();
        CHECK(far.get_lr() == doctest::Approx(0.1).epsilon(1e-12));
    }
}

TEST_CASE("Adam, AdamW, RMSprop: bad settings are refused with a message naming them, and set_lr changes nothing when refused") {
    auto w = random_tensor<float>({3}, 1);
    auto adam = [&](optim::AdamOptions o) { return error_message([&] { optim::Adam({w}, o); }); };
    CHECK(adam({.lr = NAN}) == "Adam: lr=nan must be a finite number");
    CHECK(adam({.lr = -0.1}) == "Adam: lr=-0.1 must be >= 0");
    CHECK(adam({.lr = 1e39}) == "Adam: lr=1e+39 does not fit float, the type it computes in (at most 3.4028235e+38)");
    CHECK(adam({.betas = {1.0, 0.999}}) == "Adam: betas[0]=1 must be in [0, 1)");
    CHECK(adam({.betas = {0.9, -0.5}}) == "Adam: betas[1]=-0.5 must be in [0, 1)");
    CHECK(adam({.betas = {0.9, INFINITY}}) == "Adam: betas[1]=inf must be a finite number");
    CHECK(adam({.eps = 0}) == "Adam: eps=0 must be > 0");
    CHECK(adam({.eps = -1e-8}) == "Adam: eps=-1e-08 must be > 0");
    CHECK(adam({.weight_decay = -0.01}) == "Adam: weight_decay=-0.01 must be >= 0");
    CHECK(error_message([&] { optim::AdamW({w}, {.betas = {0.9, 1.5}}); }) == "AdamW: betas[1]=1.5 must be in [0, 1)");
    CHECK(error_message([&] { optim::AdamW({w}, {.weight_decay = NAN}); }) == "AdamW: weight_decay=nan must be a finite number");
    auto rmsprop = [&](optim::RmspropOptions o) { return error_message([&] { optim::RMSprop({w}, o); }); };
    CHECK(rmsprop({.lr = -1}) == "RMSprop: lr=-1 must be >= 0");
    CHECK(rmsprop({.alpha = 1}) == "RMSprop: alpha=1 must be in [0, 1)");
    CHECK(rmsprop({.eps = 0}) == "RMSprop: eps=0 must be > 0");
    CHECK(rmsprop({.momentum = -0.9}) == "RMSprop: momentum=-0.9 must be >= 0");
    CHECK(rmsprop({.weight_decay = -1}) == "RMSprop: weight_decay=-1 must be >= 0");
    CHECK(error_message([&] { optim::Adam({w, w}); }) ==
          "Adam: parameter #1 is the same tensor as parameter #0 (shape [3]); list each parameter once");
    CHECK(error_message([&] { optim::RMSprop({w, mg::Tensor<mg::Cpu>{}}); }) ==
          "RMSprop: parameter #1 is an undefined tensor (default-constructed, or an absent grad)");

    optim::Adam opt({w}, {.lr = 0.01});
    CHECK(error_message([&] { opt.set_lr(-1); }) == "Adam: lr=-1 must be >= 0");
    CHECK(opt.get_lr() == 0.01);
    CHECK(error_message([&] { opt.step_count(1); }) == "Adam::step_count: parameter #1 asked, the optimizer has 1");
    CHECK(error_message([&] { optim::clip_grad_norm_(std::vector{w}, -1); }) == "clip_grad_norm_: max_norm=-1 must be >= 0");
}

TEST_CASE("defaults are PyTorch's") {
    auto w = random_tensor<float>({3}, 1);
    const optim::Adam adam({w});
    CHECK(adam.options().lr == 1e-3);
    CHECK(adam.options().betas == std::array{0.9, 0.999});
    CHECK(adam.options().eps == 1e-8);
    CHECK(adam.options().weight_decay == 0);
    CHECK(optim::AdamW({w}).options().weight_decay == 0.01);
    const optim::RMSprop rms({w});
    CHECK(rms.options().lr == 1e-2);
    CHECK(rms.options().alpha == 0.99);
    CHECK(rms.options().eps == 1e-8);
    CHECK(rms.options().momentum == 0);
    CHECK(!rms.options().centered);
}

TEST_CASE("one launch per step for up to eight parameters, none skipped or counted twice, and no allocation after the first") {
    const IrisData<mg::Cpu> data;
    for (const auto& run : golden_runs()) {
        CAPTURE(run.at("name").get<std::string>());
        auto model = initial_model<mg::Cpu>();
        auto opt = make_optimizer<mg::Cpu>(run, model.parameters());
        auto loss = mg::cross_entropy(model(data.x), data.y);
        opt.zero_grad();
        loss.backward();
        opt.step();  // the first step makes the state
        for (int i = 0; i < 2; ++i) {
            loss = mg::cross_entropy(model(data.x), data.y);
            opt.zero_grad();
            loss.backward();
            const auto before = mg::counters();
            opt.step();
            CHECK(mg::counters().kernel_launches - before.kernel_launches == 1);
            CHECK(mg::counters().storage_allocs == before.storage_allocs);
            CHECK(mg::counters().host_reads == before.host_reads);
        }
    }
    // Nine parameters: two launches, and every parameter stepped once per step.
    std::vector<mg::Tensor<mg::Cpu, float>> params;
    for (int i = 0; i < 9; ++i) params.push_back(random_tensor<float>({2}, static_cast<std::uint64_t>(i)));
    optim::Adam opt(params, {.lr = 0.1});
    mg::Tensor<mg::Cpu, float> total = mg::sum(params[0]);
    for (int i = 1; i < 9; ++i) total = mg::add(total, mg::sum(params[static_cast<std::size_t>(i)]));
    total.backward();
    opt.step();  // makes the state
    opt.zero_grad();
    total = mg::sum(params[0]);
    for (int i = 1; i < 9; ++i) total = mg::add(total, mg::sum(params[static_cast<std::size_t>(i)]));
    total.backward();
    const auto before = mg::counters().kernel_launches;
    opt.step();
    CHECK(mg::counters().kernel_launches - before == 2);
    for (std::size_t i = 0; i < 9; ++i) CHECK(opt.step_count(i) == 2);
}

TEST_CASE("a parameter that got no gradient is not stepped, as PyTorch skips a None grad") {
    auto a = random_tensor<float>({2}, 1), b = random_tensor<float>({2}, 2);
    const auto b_before = b.to_vector();
    optim::Adam opt({a, b}, {.lr = 0.1});
    mg::sum(a).backward();
    opt.step();
    CHECK(opt.step_count(0) == 1);
    CHECK(opt.step_count(1) == 0);
    CHECK(b.to_vector() == b_before);
}

TEST_CASE("every optimizer and clip_grad_norm_ skip a frozen parameter (requires_grad_(false)) and leave it as it is, as PyTorch") {
    using P = mg::Tensor<mg::Cpu, float>;
    using Any = AnyOptimizer<mg::Cpu>;
    const std::vector<std::pair<std::string, std::function<Any(std::vector<P>)>>> optimizers = {
        {"SGD", [](std::vector<P> p) { return Any::make(std::make_unique<optim::SGD<mg::Cpu, float>>(p, optim::SgdOptions{.lr = 0.1, .momentum = 0.9})); }},
        {"Adam", [](std::vector<P> p) { return Any::make(std::make_unique<optim::Adam<mg::Cpu, float>>(p, optim::AdamOptions{.lr = 0.1})); }},
        {"AdamW", [](std::vector<P> p) { return Any::make(std::make_unique<optim::AdamW<mg::Cpu, float>>(p, optim::AdamWOptions{.lr = 0.1})); }},
        {"RMSprop", [](std::vector<P> p) { return Any::make(std::make_unique<optim::RMSprop<mg::Cpu, float>>(p, optim::RmspropOptions{.lr = 0.1})); }},
    };
    for (const auto& [name, make] : optimizers) {
        CAPTURE(name);
        // frozen_first never requires grad (a layer frozen for fine-tuning); frozen_later gets a
        // gradient and is then frozen, so only its requires_grad can keep a step from using it.
        auto trained = random_tensor<float>({3}, 1), frozen_first = random_tensor<float>({3}, 2), frozen_later = random_tensor<float>({3}, 3);
        frozen_first.requires_grad_(false);
        auto opt = make({frozen_first, trained, frozen_later});
        const auto trained_before = trained.to_vector(), first_before = frozen_first.to_vector(), later_before = frozen_later.to_vector();
        for (int step = 0; step < 2; ++step) {
            opt.zero_grad();
            mg::sum(trained * trained + frozen_first * frozen_later).backward();
            if (step == 0) frozen_later.requires_grad_(false);
            opt.step();
        }
        REQUIRE(frozen_later.grad().defined());
        CHECK(frozen_first.to_vector() == first_before);
        CHECK(frozen_later.to_vector() == later_before);
        for (std::size_t i = 0; i < 3; ++i) CHECK(trained.to_vector()[i] != trained_before[i]);
    }

    auto trained = tensor<float>({1, 1}, {2}, true), frozen = tensor<float>({1, 1}, {2}, true);
    mg::sum(trained * tensor<float>({3, 4}, {2}) + frozen * tensor<float>({30, 40}, {2})).backward();
    frozen.requires_grad_(false);
    auto norm = optim::clip_grad_norm_(std::vector{trained, frozen}, 1.0);
    CHECK(norm.item() == doctest::Approx(5));  // the trained gradient's norm alone
    CHECK(trained.grad().to_vector()[0] == doctest::Approx(0.6));
    CHECK(frozen.grad().to_vector() == std::vector<float>{30, 40});
}

TEST_CASE("Adam's first step moves every weight by lr against its gradient's sign (bias correction at step 1)") {
    auto a = tensor<double>({1, -2}, {2}, true), b = tensor<double>({3}, {1}, true);
    optim::Adam opt({a, b}, {.lr = 0.5, .eps = 1e-12});
    mg::add(mg::detail::scaled_sum(a, 0.01), mg::detail::scaled_sum(b, -300.0)).backward();  // gradients 0.01 and -300
    opt.step();
    CHECK(a.to_vector()[0] == doctest::Approx(0.5));
    CHECK(a.to_vector()[1] == doctest::Approx(-2.5));
    CHECK(b.to_vector()[0] == doctest::Approx(3.5));
}

TEST_CASE("a CPU optimizer update counts subnormal numbers as zero (their arithmetic is slow on x86), and leaves the caller's mode as it was") {
    // Adam's first step moves a weight by lr * m_hat / (sqrt(v_hat) + eps), m = 0.1 * g. A gradient
    // of 1e-30 makes m normal and moves the weight; one of 1e-37 makes m subnormal (1e-38 is below
    // float's smallest normal, 1.18e-38), flushed to zero on x86-64 hosts, and the weight stays.
    auto step_from_zero = [](float gradient) {
        auto w = tensor<float>({0}, {1}, true);
        optim::Adam opt({w}, {.lr = 1e-3});
        mg::detail::scaled_sum(w, gradient).backward();
        opt.step();
        return w.to_vector()[0];
    };
    CHECK(step_from_zero(1e-30f) == doctest::Approx(-1e-25f).epsilon(1e-3));
#if defined(__x86_64__) && defined(__GNUC__)
    CHECK(step_from_zero(1e-37f) == 0.0f);  // PyTorch: -1e-32
#endif
    volatile float smallest_normal = std::numeric_limits<float>::min();
    CHECK(smallest_normal * 0.5f != 0.0f);  // this thread's own arithmetic still keeps subnormals
}

TEST_CASE("save_state/load_state: N steps + save + load into fresh objects + N steps == 2N steps, bit for bit") {
    TempDir dir;
    const IrisData<mg::Cpu> data;
    for (const auto& run : golden_runs()) {
        CAPTURE(run.at("name").get<std::string>());
        constexpr int n = 9;
        auto straight = initial_model<mg::Cpu>();
        auto straight_opt = make_optimizer<mg::Cpu>(run, straight.parameters());
        train(straight, straight_opt, data, n);
        straight_opt.base().set_lr(straight_opt.base().get_lr() / 3);  // a schedule's change survives the resume
        const auto straight_losses = train(straight, straight_opt, data, n);

        auto first = initial_model<mg::Cpu>();
        auto first_opt = make_optimizer<mg::Cpu>(run, first.parameters());
        train(first, first_opt, data, n);
        first_opt.base().set_lr(first_opt.base().get_lr() / 3);
        first.save(dir / "model.safetensors");
        first_opt.save_state(dir / "opt.safetensors");

        mg::Generator other(7);
        examples::IrisMLP<mg::Cpu> resumed(10, other);
        auto resumed_opt = make_optimizer<mg::Cpu>(run, resumed.parameters());
        resumed.load(dir / "model.safetensors");
        resumed_opt.load_state(dir / "opt.safetensors");
        CHECK(resumed_opt.base().get_lr() == first_opt.base().get_lr());
        CHECK(train(resumed, resumed_opt, data, n) == straight_losses);
        CHECK(resumed.parameter_values() == straight.parameter_values());
    }
}

TEST_CASE("Adam state file: PyTorch's state_dict names, the step count and hyper-parameters; a bad file is refused and changes nothing") {
    TempDir dir;
    const IrisData<mg::Cpu> data;
    auto model = initial_model<mg::Cpu>();
    optim::Adam opt(model.parameters(), {.lr = 0.02, .betas = {0.8, 0.9}});
    auto any = AnyOptimizer<mg::Cpu>::make(std::make_unique<optim::Adam<mg::Cpu, float>>(model.parameters(), opt.options()));
    train(model, any, data, 3);
    const auto p = (dir / "adam.safetensors").string();
    any.save_state(p);
    const auto file = io::load_safetensors(p);
    CHECK(file.metadata.at("optimizer") == "Adam");
    CHECK(file.metadata.at("beta1") == "0.8");
    CHECK(file.metadata.at("lr") == "0.02");
    REQUIRE(file.find("state.0.exp_avg") != nullptr);
    CHECK(file.find("state.3.exp_avg_sq")->shape == std::vector<std::int64_t>{3});
    CHECK(file.find("state.2.step")->values<std::int64_t>() == std::vector<std::int64_t>{3});

    optim::Adam fresh(model.parameters());
    CHECK(fresh.step_count(0) == 0);
    // Refusals, each leaving `fresh` as it was.
    auto rewrite = [&](std::vector<io::TensorData> tensors, io::Metadata meta) {
        const auto bad = (dir / "bad.safetensors").string();
        io::save_safetensors(bad, tensors, meta);
        return error_message([&] { fresh.load_state(bad); });
    };
    const auto bad = (dir / "bad.safetensors").string();
    auto without = [&](const std::string& name) {
        std::vector<io::TensorData> out;
        for (const auto& t : file.tensors)
            if (t.name != name) out.push_back(t);
        return out;
    };
    CHECK(rewrite(without("state.1.step"), file.metadata) ==
          fmt::format("Adam::load_state: '{}' has 2 of the 3 state tensors of parameter #1 (step, exp_avg, exp_avg_sq)", bad));
    auto meta = file.metadata;
    meta["optimizer"] = "RMSprop";
    CHECK(rewrite(file.tensors, meta) == fmt::format("Adam::load_state: '{}' holds the state of optimizer 'RMSprop', not Adam", bad));
    meta = file.metadata;
    meta["beta2"] = "1";
    CHECK(rewrite(file.tensors, meta) == fmt::format("Adam::load_state: '{}': betas[1]=1 must be in [0, 1)", bad));
    meta["beta2"] = "x";
    CHECK(rewrite(file.tensors, meta) == fmt::format("Adam::load_state: '{}' has beta2 = 'x', expected a finite number", bad));
    meta = file.metadata;
    meta.erase("eps");
    CHECK(rewrite(file.tensors, meta) == fmt::format("Adam::load_state: '{}' has no metadata 'eps': it is not an Adam state file", bad));
    auto tensors = file.tensors;
    tensors.push_back(io::TensorData::from<float>("state.0.momentum_buffer", {10, 4}, std::vector<float>(40)));
    CHECK(rewrite(tensors, file.metadata) ==
          fmt::format("Adam::load_state: '{}' stores 'state.0.momentum_buffer', which is no state of this optimizer's 4 parameters "
                      "(kept per parameter: step, exp_avg, exp_avg_sq)",
                      bad));
    tensors = without("state.0.step");
    tensors.push_back(io::TensorData::from<float>("state.0.step", {}, std::vector<float>{3}));
    CHECK(rewrite(tensors, file.metadata) == fmt::format("Adam::load_state: '{}' stores 'state.0.step' as F32 of shape [], expected an I64 scalar", bad));
    tensors = without("state.1.exp_avg");
    tensors.push_back(io::TensorData::from<float>("state.1.exp_avg", {5, 2}, std::vector<float>(10)));
    CHECK(rewrite(tensors, file.metadata) == fmt::format("Adam::load_state: '{}' stores 'state.1.exp_avg' with shape [5, 2], parameter #1 has [10]", bad));
    optim::Adam fewer(std::vector{model.fc1.weight});
    CHECK(error_message([&] { fewer.load_state(p); }) ==
          fmt::format("Adam::load_state: '{}' is for parameters of shapes '[[10,4],[10],[3,10],[3]]', this optimizer's are '[[10,4]]'", p));
    CHECK(error_message([&] { optim::AdamW(model.parameters()).load_state(p); }) ==
          fmt::format("AdamW::load_state: '{}' holds the state of optimizer 'Adam', not AdamW", p));
    CHECK(fresh.step_count(0) == 0);
    CHECK(fresh.get_lr() == 1e-3);
    fresh.load_state(p);
    CHECK(fresh.step_count(0) == 3);
    CHECK(fresh.options().betas == std::array{0.8, 0.9});
}

TEST_CASE("RMSprop::load_state takes momentum and centered from the file, with their buffers") {
    TempDir dir;
    const IrisData<mg::Cpu> data;
    auto model = initial_model<mg::Cpu>();
    auto any = AnyOptimizer<mg::Cpu>::make(std::make_unique<optim::RMSprop<mg::Cpu, float>>(
        model.parameters(), optim::RmspropOptions{.lr = 0.001, .momentum = 0.5, .centered = true}));
    train(model, any, data, 2);
    any.save_state(dir / "rms.safetensors");
    const auto file = io::load_safetensors(dir / "rms.safetensors");
    CHECK(file.find("state.0.momentum_buffer") != nullptr);
    CHECK(file.find("state.0.grad_avg") != nullptr);
    optim::RMSprop plain(model.parameters());
    plain.load_state(dir / "rms.safetensors");
    CHECK(plain.options().centered);
    CHECK(plain.options().momentum == 0.5);
}

TEST_CASE("clip_grad_norm_: the joint 2-norm as a tensor, gradients scaled on the backend as torch.nn.utils.clip_grad_norm_") {
    auto a = tensor<double>({3, -4}, {2}, true), b = tensor<double>({12}, {1}, true), c = tensor<double>({5}, {1}, true);
    mg::detail::scaled_sum(a, 12.0).backward();   // grad (12, 12)
    mg::detail::scaled_sum(b, -16.0).backward();  // grad -16; c gets none and is skipped
    const double norm = std::sqrt(12.0 * 12 * 2 + 16 * 16);
    const auto reads = mg::counters().host_reads;
    auto total = optim::clip_grad_norm_(std::vector{a, b, c}, 2.0);
    CHECK(mg::counters().host_reads == reads);
    CHECK(total.item() == doctest::Approx(norm).epsilon(1e-14));
    const double coef = 2.0 / (norm + 1e-6);
    CHECK(a.grad().to_vector()[0] == doctest::Approx(12 * coef).epsilon(1e-14));
    CHECK(a.grad().to_vector()[1] == doctest::Approx(12 * coef).epsilon(1e-14));
    CHECK(b.grad().to_vector()[0] == doctest::Approx(-16 * coef).epsilon(1e-14));
    CHECK(!c.grad().defined());
    // Below max_norm nothing changes (the coefficient is clamped to 1).
    const auto before = a.grad().to_vector();
    CHECK(optim::clip_grad_norm_(std::vector{a, b}, 100.0).item() == doctest::Approx(2.0).epsilon(1e-6));
    CHECK(a.grad().to_vector() == before);
    // Ten gradients: two tables, one norm over all.
    std::vector<mg::Tensor<mg::Cpu, double>> many;
    for (int i = 0; i < 10; ++i) {
        many.push_back(tensor<double>({1.0 * i, 1}, {2}, true));
        mg::sum(many.back()).backward();  // grad (1, 1)
    }
    CHECK(optim::clip_grad_norm_(many, 1.0).item() == doctest::Approx(std::sqrt(20.0)));
    CHECK(many[9].grad().to_vector()[0] == doctest::Approx(1.0 / (std::sqrt(20.0) + 1e-6)));
}

namespace {
// A parameter whose gradient is `grad`: the backward of sum(w * grad).
template <class T>
mg::Tensor<mg::Cpu, T> with_grad(std::vector<T> grad) {
    const auto n = static_cast<std::int64_t>(grad.size());
    auto w = tensor<T>(std::vector<T>(grad.size(), T(1)), {n}, true);
    mg::sum(mg::mul(w, tensor<T>(std::move(grad), {n}))).backward();
    return w;
}
}  // namespace

TEST_CASE("clip_grad_norm_: float gradients whose squares overflow a float still have their finite norm, and are clipped") {
    // The squares (1e40) are infinite as floats; the norm 1.414e20 is a finite float. Before the
    // terms were doubles this returned inf and left the gradients [0, 0].
    auto w = with_grad<float>({1e20f, 1e20f});
    auto norm = optim::clip_grad_norm_(std::vector{w}, 1.0);
    CHECK(norm.item() == doctest::Approx(1.41421356e20).epsilon(1e-6));
    for (float g : w.grad().to_vector()) CHECK(g == doctest::Approx(0.70710678).epsilon(1e-6));
    // near the float limit: the norm 4.8e38 is infinite as a float, the clipping is not
    auto big = with_grad<float>({3e38f, -3e38f, 2e38f});
    CHECK(std::isinf(optim::clip_grad_norm_(std::vector{big}, 1.0).item()));
    const auto g = big.grad().to_vector();
    const double total = std::sqrt(9e76 + 9e76 + 4e76);
    CHECK(g[0] == doctest::Approx(3e38 / total).epsilon(1e-6));
    CHECK(g[1] == doctest::Approx(-3e38 / total).epsilon(1e-6));
    CHECK(g[2] == doctest::Approx(2e38 / total).epsilon(1e-6));
}

TEST_CASE("clip_grad_norm_ with norm_type 1, 3 and infinity, over several tables and chunks, as torch.nn.utils.clip_grad_norm_") {
    std::vector<mg::Tensor<mg::Cpu, double>> params;
    std::vector<double> all;
    for (int p = 0; p < 11; ++p) {  // two tables; gradients of 1 to 40 elements cross chunk bounds
        std::vector<double> grad(static_cast<std::size_t>(1 + (p * 7) % 40));
        for (std::size_t i = 0; i < grad.size(); ++i) grad[i] = std::sin(1.0 + p * 40.0 + static_cast<double>(i)) * (p + 1);
        all.insert(all.end(), grad.begin(), grad.end());
        params.push_back(with_grad<double>(grad));
    }
    double l1 = 0, l3 = 0, linf = 0;
    for (double g : all) l1 += std::abs(g), l3 += std::pow(std::abs(g), 3.0), linf = std::max(linf, std::abs(g));
    l3 = std::cbrt(l3);
    for (auto [norm_type, expected] : {std::pair{1.0, l1}, std::pair{3.0, l3}, std::pair{std::numeric_limits<double>::infinity(), linf}}) {
        CAPTURE(norm_type);
        std::vector<std::vector<double>> before;
        for (auto& p : params) before.push_back(p.grad().to_vector());
        const auto reads = mg::counters().host_reads;
        auto norm = optim::clip_grad_norm_(params, 0.5, norm_type);
        CHECK(mg::counters().host_reads == reads);
        CHECK(norm.item() == doctest::Approx(expected).epsilon(1e-13));
        const double coef = 0.5 / (expected + 1e-6);
        for (std::size_t p = 0; p < params.size(); ++p) {
            const auto after = params[p].grad().to_vector();
            for (std::size_t i = 0; i < after.size(); ++i) CHECK(after[i] == doctest::Approx(before[p][i] * coef).epsilon(1e-13));
        }
        // restore the gradients for the next order
        for (std::size_t p = 0; p < params.size(); ++p) {
            params[p].zero_grad();
            mg::sum(mg::mul(params[p], tensor<double>(before[p], {static_cast<std::int64_t>(before[p].size())}))).backward();
        }
    }
    CHECK(error_message([&] { optim::clip_grad_norm_(params, 1.0, 0.0); }) == "clip_grad_norm_: norm_type=0 must be > 0");
    CHECK(error_message([&] { optim::clip_grad_norm_(params, 1.0, -INFINITY); }) == "clip_grad_norm_: norm_type=-inf must be a finite number");
    CHECK(error_message([&] { optim::clip_grad_norm_(params, 1.0, NAN); }) == "clip_grad_norm_: norm_type=nan must be a finite number");
}

TEST_CASE("clip_grad_norm_ with error_if_nonfinite refuses a NaN or infinite norm and leaves the gradients; without it they become NaN") {
    auto w = with_grad<float>({1.0f, NAN});
    auto v = with_grad<float>({2.0f});
    CHECK(error_message([&] { optim::clip_grad_norm_(std::vector{w, v}, 1.0, 2.0, true); }) ==
          "clip_grad_norm_: the total norm of order 2 of 2 gradients is nan, so they cannot be clipped; the "
          "gradients are left as they are (error_if_nonfinite=true)");
    CHECK(v.grad().to_vector() == std::vector<float>{2.0f});
    auto inf = with_grad<double>({INFINITY, 1.0});
    CHECK(error_message([&] { optim::clip_grad_norm_(std::vector{inf}, 1.0, INFINITY, true); }) ==
          "clip_grad_norm_: the total norm of order inf of 1 gradients is inf, so they cannot be clipped; the "
          "gradients are left as they are (error_if_nonfinite=true)");
    CHECK(std::isnan(optim::clip_grad_norm_(std::vector{w, v}, 1.0).item()));
    CHECK(std::isnan(v.grad().to_vector()[0]));
    // a finite norm passes, with one host read
    auto u = with_grad<double>({3.0, 4.0});
    const auto reads = mg::counters().host_reads;
    CHECK(optim::clip_grad_norm_(std::vector{u}, 1.0, 2.0, true).to_vector() == std::vector<double>{5.0});
    CHECK(mg::counters().host_reads == reads + 2);  // the check's read, and to_vector's
}

TEST_CASE("clip_grad_value_ clamps every gradient to [-clip_value, clip_value] on the backend, as torch.nn.utils.clip_grad_value_") {
    auto a = with_grad<float>({-3.0f, 0.25f, 2.0f}), b = with_grad<float>({0.5f, -0.75f});
    auto frozen = with_grad<float>({9.0f});
    frozen.requires_grad_(false);
    const auto reads = mg::counters().host_reads;
    optim::clip_grad_value_(std::vector{a, b, frozen}, 0.5);
    CHECK(mg::counters().host_reads == reads);
    CHECK(a.grad().to_vector() == std::vector<float>{-0.5f, 0.25f, 0.5f});
    CHECK(b.grad().to_vector() == std::vector<float>{0.5f, -0.5f});
    CHECK(frozen.grad().to_vector() == std::vector<float>{9.0f});
    CHECK(error_message([&] { optim::clip_grad_value_(std::vector{a}, -1.0); }) == "clip_grad_value_: clip_value=-1 must be >= 0");
}

namespace {
// An Iris run with any optimizer, a scheduler and clipping, on backend B.
template <class B>
struct ScheduledRun {
    IrisData<B> data;
    examples::IrisMLP<B> model = initial_model<B>();
    AnyOptimizer<B> opt;
    std::unique_ptr<optim::lr_scheduler::CosineAnnealingLR> schedule;
    mg::nn::CrossEntropyLoss loss_fn;
    explicit ScheduledRun(const nlohmann::json& run) : opt(make_optimizer<B>(run, model.parameters())) {
        schedule = std::make_unique<optim::lr_scheduler::CosineAnnealingLR>(opt.base(), 12, opt.base().get_lr() / 10);
    }
    void step(mg::LossLog& log) {
        auto loss = loss_fn(model(data.x), data.y);
        opt.zero_grad();
        loss.backward();
        optim::clip_grad_norm_(model.parameters(), 0.5);
        opt.step();
        log.record(loss);
    }
};
}  // namespace

TEST_CASE("EmulatedGraphs: a captured step with Adam/AdamW/RMSprop, clipping and a cosine schedule replays as eager steps, bit for bit") {
    for (const auto& run : golden_runs()) {
        CAPTURE(run.at("name").get<std::string>());
        ScheduledRun<mg::Cpu> eager(run);
        ScheduledRun<EmulatedGraphs> graphed(run);
        mg::LossLog eager_log, graph_log;
        mg::StepGraph<EmulatedGraphs> graph([&] { graphed.step(graph_log); });
        for (int i = 0; i < 30; ++i) {
            eager.step(eager_log);
            graph.replay();
            eager.schedule->step();  // after capture: only backend memory carries it to the replays
            graphed.schedule->step();
        }
        CHECK(graph.uses_graph());
        CHECK(graph_log.values() == eager_log.values());
        CHECK(graphed.model.parameter_values() == eager.model.parameter_values());
        auto& adam_like = graphed.opt.base();
        CHECK(adam_like.get_lr() == eager.opt.base().get_lr());
    }
}

TEST_CASE("EmulatedGraphs: the step count advances on every replay (the bias correction of step 30 is not step 2's)") {
    const auto& run = golden_runs().at(0);
    REQUIRE(run.at("optimizer") == "Adam");
    IrisData<EmulatedGraphs> data;
    auto model = initial_model<EmulatedGraphs>();
    optim::Adam<EmulatedGraphs, float> opt(model.parameters(), {.lr = 0.01});
    mg::LossLog log;
    mg::StepGraph<EmulatedGraphs> graph([&] {
        auto loss = mg::cross_entropy(model(data.x), data.y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    });
    for (int i = 0; i < 30; ++i) graph.replay();
    CHECK(opt.step_count(0) == 30);
    CHECK(opt.step_count(3) == 30);
    const auto expected = golden("adam.loss");
    const auto losses = log.values();
    for (std::size_t i = 0; i < losses.size(); ++i) CHECK(losses[i] == doctest::Approx(expected[i]).epsilon(1e-4));
}

TEST_CASE("Adam changes parameters in place: a backward through the old values is refused") {
    mg::manual_seed(1);
    mg::nn::Linear<mg::Cpu> layer(2, 1);
    auto x = mg::Tensor<mg::Cpu>::ones({1, 2});
    x.requires_grad_();
    auto stale = mg::sum(layer(x));
    mg::sum(layer(mg::Tensor<mg::Cpu>::ones({1, 2}))).backward();
    mg::optim::Adam opt(layer.parameters(), {.lr = 0.1});
    opt.step();
    CHECK(error_message([&] { stale.backward(); }).rfind("backward: argument #2 of linear (shape [1, 2]) was modified in place", 0) == 0);
}

}  // namespace test_optim
