// Parameter groups (optim/multi_tensor.hpp) and the learning-rate schedulers (optim/lr_scheduler.hpp)
// against PyTorch 1.13 (tests/data/seq_goldens.safetensors, from tools/make_seq_goldens.py): AdamW
// and SGD over two groups with their own lr and weight_decay, step by step; each scheduler's rate
// for each of two groups after each step; a state file keeps the groups; every error message.
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "goldens.hpp"
#include "helpers.hpp"
#include "temp_dir.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_schedules {

using T2 = mg::Tensor<mg::Cpu, double>;

static const Goldens<double>& g() {
    static const Goldens<double> goldens{golden_file("seq_goldens.safetensors")};
    return goldens;
}

TEST_CASE("parameter groups: AdamW and SGD with a learning rate and weight decay per group match PyTorch step by step") {
    int seen = 0;
    for (const auto& c : golden_cases(g().file)) {
        if (c.at("op") != "param_groups") continue;
        const std::string name = c.at("name"), kind = c.at("optimizer");
        CAPTURE(name);
        ++seen;
        const auto x = g().get(name + ".x"), target = g().get(name + ".target");
        auto w = g().get(name + ".w0", true), b = g().get(name + ".b0", true);
        const auto run = [&](auto& opt) {
            REQUIRE(opt.param_groups() == 2);
            for (int step = 0; step < 5; ++step) {
                CAPTURE(step);
                opt.zero_grad();
                const auto err = mg::matmul(x, w) + b - target;
                mg::mean(err * err).backward();
                opt.step();
                g().check(w, fmt::format("{}.w.{}", name, step));
                g().check(b, fmt::format("{}.b.{}", name, step));
            }
        };
        if (kind == "adamw") {
            mg::optim::AdamW<mg::Cpu, double> opt({{.params = {w}}, {.params = {b}, .lr = 0.05, .weight_decay = 0.0}}, {.lr = 0.01, .weight_decay = 0.1});
            CHECK(opt.group_lr(1) == 0.05);
            CHECK(opt.group_weight_decay(0) == 0.1);
            run(opt);
        } else {
            mg::optim::SGD<mg::Cpu, double> opt({{.params = {w}, .lr = 0.1}, {.params = {b}, .weight_decay = 0.2}},
                                                {.lr = 0.03, .momentum = 0.9, .weight_decay = 0.01});
            run(opt);
        }
    }
    CHECK(seen == 2);
}

TEST_CASE("schedulers: LinearLR, LambdaLR, StepLR, CosineAnnealingLR, OneCycleLR and ReduceLROnPlateau give each group PyTorch's rate at every step") {
    int seen = 0;
    for (const auto& c : golden_cases(g().file)) {
        if (c.at("op") != "schedule") continue;
        const std::string name = c.at("name"), kind = c.at("kind");
        CAPTURE(name);
        ++seen;
        auto p1 = T2::zeros({1}), p2 = T2::zeros({1});
        p1.requires_grad_();
        p2.requires_grad_();
        mg::optim::SGD<mg::Cpu, double> opt({{.params = {p1}}, {.params = {p2}, .lr = 0.02}}, {.lr = 0.1});
        const auto rates = g().file.find(name + ".rates")->values<double>();
        int step = 0;
        const auto check_rates = [&] {
            CAPTURE(step);
            CHECK(opt.group_lr(0) == doctest::Approx(rates[static_cast<std::size_t>(2 * step)]).epsilon(1e-12));
            CHECK(opt.group_lr(1) == doctest::Approx(rates[static_cast<std::size_t>(2 * step + 1)]).epsilon(1e-12));
        };
        const auto walk = [&](auto& sched, auto&& next) {
            check_rates();
            for (step = 1; step <= 12; ++step) {
                next(sched);
                check_rates();
            }
        };
        const auto plain = [](auto& sched) { sched.step(); };
        namespace s = mg::optim::lr_scheduler;
        if (kind == "linear") {
            s::LinearLR sched(opt, c.at("start_factor"), c.at("end_factor"), c.at("total_iters"));
            walk(sched, plain);
        } else if (kind == "lambda") {
            const int warm = c.at("warmup"), total = c.at("total");
            s::LambdaLR sched(opt, [&](std::int64_t k) {
                return k < warm ? static_cast<double>(k + 1) / warm : 0.5 * (1 + std::cos(std::numbers::pi * static_cast<double>(k - warm) / (total - warm)));
            });
            walk(sched, plain);
        } else if (kind == "step") {
            s::StepLR sched(opt, c.at("step_size"), c.at("gamma"));
            walk(sched, plain);
        } else if (kind == "cosine") {
            s::CosineAnnealingLR sched(opt, c.at("T_max"), c.at("eta_min"));
            walk(sched, plain);
        } else if (kind == "onecycle") {
            const std::vector<double> max_lrs = c.at("max_lr");
            s::OneCycleLROptions o{.pct_start = c.at("pct_start"), .anneal_strategy = c.at("anneal_strategy"), .three_phase = c.at("three_phase"),
                                   .cycle_momentum = false};
            if (c.contains("div_factor")) o.div_factor = c.at("div_factor");
            if (c.contains("final_div_factor")) o.final_div_factor = c.at("final_div_factor");
            s::OneCycleLR sched(opt, max_lrs, c.at("total_steps"), o);
            walk(sched, plain);
            CHECK(error_message([&] { sched.step(); }) == "OneCycleLR: tried to step 14 times; the schedule has total_steps=13 (steps 0 to 12)");
        } else {
            const auto metrics = g().file.find(name + ".metrics")->values<double>();
            s::ReduceLROnPlateau sched(opt, {.factor = c.at("factor"), .patience = c.at("patience"), .threshold = c.at("threshold"),
                                             .cooldown = c.at("cooldown"), .min_lr = c.at("min_lr")});
            walk(sched, [&](auto& sch) { sch.step(metrics[static_cast<std::size_t>(step - 1)]); });
        }
    }
    CHECK(seen == 7);
}

TEST_CASE("OneCycleLR with cycle_momentum (PyTorch's default) moves Adam's beta1 and SGD's and RMSprop's momentum as PyTorch's, step by step") {
    namespace s = mg::optim::lr_scheduler;
    int seen = 0;
    for (const auto& c : golden_cases(g().file)) {
        if (c.at("op") != "onecycle_momentum") continue;
        const std::string name = c.at("name"), kind = c.at("optimizer");
        CAPTURE(name);
        ++seen;
        auto p = g().get(name + ".p0", true), q = g().get(name + ".q0", true);
        const auto tp = g().get(name + ".tp"), tq = g().get(name + ".tq");
        const auto ps = g().file.find(name + ".p")->values<double>(), qs = g().file.find(name + ".q")->values<double>();
        const auto moms = g().file.find(name + ".momentum")->values<double>();
        const auto run = [&](auto& opt) {
            s::OneCycleLR sched(opt, std::vector<double>{0.3, 0.1}, 11,
                                {.pct_start = 0.4, .three_phase = c.at("three_phase"), .base_momentum = 0.8, .max_momentum = 0.9});
            CHECK(opt.group_momentum(0) == 0.9);  // max_momentum at step 0
            for (std::size_t step = 0; step < 10; ++step) {
                CAPTURE(step);
                opt.zero_grad();
                (mg::sum((p - tp) * (p - tp)) + mg::sum((q - tq) * (q - tq)) * 3.0).backward();
                opt.step();
                sched.step();
                const auto pv = p.to_vector(), qv = q.to_vector();
                for (std::size_t i = 0; i < 3; ++i) CHECK(pv[i] == doctest::Approx(ps[step * 3 + i]).epsilon(1e-12));
                for (std::size_t i = 0; i < 2; ++i) CHECK(qv[i] == doctest::Approx(qs[step * 2 + i]).epsilon(1e-12));
                CHECK(opt.group_momentum(0) == doctest::Approx(moms[step * 2]).epsilon(1e-14));
                CHECK(opt.group_momentum(1) == doctest::Approx(moms[step * 2 + 1]).epsilon(1e-14));
            }
        };
        if (kind == "adam") {
            mg::optim::Adam<mg::Cpu, double> opt({{.params = {p}}, {.params = {q}, .lr = 0.05}}, {.lr = 0.1});
            run(opt);
            CHECK(opt.options().betas[0] == opt.group_momentum(0));
        } else if (kind == "sgd") {
            mg::optim::SGD<mg::Cpu, double> opt({{.params = {p}}, {.params = {q}, .lr = 0.05}}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
            run(opt);
        } else {
            mg::optim::RMSprop<mg::Cpu, double> opt({{.params = {p}}, {.params = {q}, .lr = 0.05}}, {.lr = 0.01, .momentum = 0.5});
            run(opt);
        }
    }
    CHECK(seen == 3);
}

TEST_CASE("OneCycleLR: its settings are checked; cycling needs momentum buffers in SGD and RMSprop; a captured step follows the momentum") {
    auto p = T2::zeros({1});
    p.requires_grad_();
    mg::optim::SGD<mg::Cpu, double> opt({p}, {.lr = 0.1});
    namespace s = mg::optim::lr_scheduler;
    CHECK(error_message([&] { s::OneCycleLR(opt, 0.5, 10); }) ==
          "SGD: param group #0's momentum can change only where momentum was > 0 when the optimizer was made (its buffers are made then); "
          "got 0.95");
    CHECK(opt.group_lr(0) == 0.1);  // the refused schedule changed nothing
    CHECK(error_message([&] { s::OneCycleLR(opt, 0.5, 0, {.cycle_momentum = false}); }) == "OneCycleLR: total_steps=0 must be >= 1");
    CHECK(error_message([&] { s::OneCycleLR(opt, std::vector<double>{0.5, 0.1}, 10, {.cycle_momentum = false}); }) ==
          "OneCycleLR: 2 max_lr values for 1 parameter groups; give one, or one per group");
    CHECK(error_message([&] { s::OneCycleLR(opt, 0.5, 10, {.anneal_strategy = "exp", .cycle_momentum = false}); }) ==
          "OneCycleLR: anneal_strategy='exp' must be 'cos' or 'linear'");
    s::OneCycleLR sched(opt, 0.5, 10, {.cycle_momentum = false});
    CHECK(opt.group_lr(0) == doctest::Approx(0.02));  // max_lr / div_factor, replacing the optimizer's lr
    mg::optim::Adam<mg::Cpu, double> adam({p});
    CHECK(error_message([&] { adam.set_group_momentum(0, 1.0); }).starts_with("Adam: param group #0's beta1=1 "));
    // beta1 lives in backend memory: a step captured before a change follows it on replay
    auto a = T2::zeros({1}), b = T2::zeros({1});
    a.requires_grad_(), b.requires_grad_();
    mg::optim::Adam<mg::Cpu, double> captured({a}, {.lr = 0.1}), eager({b}, {.lr = 0.1});
    const auto step = [](auto& opt, auto& w) {
        opt.zero_grad();
        mg::sum((w - 1.0) * (w - 1.0)).backward();
        opt.step();
    };
    mg::StepGraph<mg::Cpu> graph([&] { step(captured, a); }, mg::StepMode::graph);
    graph.replay();
    step(eager, b);
    captured.set_group_momentum(0, 0.5);
    eager.set_group_momentum(0, 0.5);
    graph.replay();
    step(eager, b);
    CHECK(a.to_vector() == b.to_vector());
}

TEST_CASE("parameter groups: a state file keeps each group's lr and weight_decay, and refuses other groups; errors name the group") {
    TempDir dir;
    auto a = T2::ones({2}), b = T2::ones({3}), c = T2::ones({1});
    for (auto* t : {&a, &b, &c}) t->requires_grad_();
    mg::optim::Adam<mg::Cpu, double> adam({{.params = {a, b}, .lr = 0.5}, {.params = {c}, .weight_decay = 0.25}}, {.lr = 0.1});
    mg::sum(a * mg::narrow(b, 0, 0, 2) + c).backward();
    adam.step();
    adam.set_group_lr(1, 0.07);
    const auto path = dir.path / "adam.safetensors";
    adam.save_state(path);
    mg::optim::Adam<mg::Cpu, double> back({{.params = {a, b}}, {.params = {c}}}, {.lr = 0.3});
    back.load_state(path);
    CHECK(back.group_lr(0) == 0.5);
    CHECK(back.group_lr(1) == 0.07);
    CHECK(back.group_weight_decay(1) == 0.25);
    CHECK(back.step_count(2) == 1);
    mg::optim::Adam<mg::Cpu, double> regrouped({{.params = {a}}, {.params = {b, c}}}, {});
    CHECK(error_message([&] { regrouped.load_state(path); }).ends_with("has param group #0 of parameters '[0, 1]', this optimizer's holds [0]"));
    mg::optim::Adam<mg::Cpu, double> single({a, b, c});
    CHECK(error_message([&] { single.load_state(path); }).ends_with("has '2' param groups, this optimizer 1"));
    CHECK(error_message([&] { mg::optim::SGD<mg::Cpu, double>({{.params = {a}}, {.params = {a}}}, {.lr = 0.1}); }) ==
          "SGD: parameter #1 is the same tensor as parameter #0 (shape [2]); list each parameter once");
    CHECK(error_message([&] { mg::optim::SGD<mg::Cpu, double>({{.params = {a}, .lr = -1.0}}, {.lr = 0.1}); }).starts_with(
        "SGD: param group #0's lr=-1 must be >= 0"));
    CHECK(error_message([&] { adam.set_group_lr(2, 0.1); }) == "Adam: param group #2 asked, the optimizer has 2");
    CHECK(error_message([&] { mg::optim::lr_scheduler::LinearLR(adam, 0.0); }) == "LinearLR: start_factor=0 must be in (0, 1]");
    CHECK(error_message([&] { mg::optim::lr_scheduler::ReduceLROnPlateau(adam, {.mode = "least"}); }) ==
          "ReduceLROnPlateau: mode='least' must be 'min' or 'max'");
}

}  // namespace test_schedules
