// Every StepGraph<Cuda> test: CUDA graphs against eager steps, and compiled steps (StepMode::compiled,
// capture/compiled.hpp), one launch for k steps on one block and on a cooperative grid, against eager
// CUDA and the CPU; the fallback to the graph; Iris in every mode against the CPU curve. They share
// one file because a translation unit that replays a StepGraph<Cuda> compiles the compiled-step
// program (detail::for_team over kernels::TapeProgram), ptxas's slowest kernel: once here, not in
// every file of the suite. Keep StepGraph<Cuda> out of the other files.
#include <memory>

#include "gpu_helpers.hpp"

TEST_CASE("StepGraph: replays match eager steps, record every replay, and a host read inside is refused") {
    auto data = iris();
    auto x = data.x.to<mg::Cuda>();
    auto y = data.y.to<mg::Cuda>();
    mg::manual_seed(7);
    IrisMLP<mg::Cuda> eager;
    mg::manual_seed(7);
    IrisMLP<mg::Cuda> graphed;
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD eager_opt(eager.parameters(), {.lr = 0.01});
    mg::optim::SGD graph_opt(graphed.parameters(), {.lr = 0.01});
    mg::LossLog eager_log(4), graph_log(4);  // small, so replays must grow it
    mg::StepGraph<mg::Cuda> graph([&] {
        auto loss = loss_fn(graphed(x), y);
        graph_opt.zero_grad();
        loss.backward();
        graph_opt.step();
        graph_log.record(loss);
    });
    const auto before = mg::counters();
    for (int i = 0; i < 50; ++i) {
        auto loss = loss_fn(eager(x), y);
        eager_opt.zero_grad();
        loss.backward();
        eager_opt.step();
        eager_log.record(loss);
        graph.replay();
    }
    CHECK(mg::counters().host_syncs == before.host_syncs);
    CHECK(graph.uses_graph());
    const auto g = graph_log.values(), e = eager_log.values();
    REQUIRE(g.size() == 50);
    check_close(g, e, 1e-6);
    check_close(graphed.fc1.weight.to_vector(), eager.fc1.weight.to_vector(), 1e-6);

    mg::StepGraph<mg::Cuda> bad([&] { (void)mg::sum(x).item(); });
    bad.replay();  // the warm-up runs eagerly
    CHECK(error_message([&] { bad.replay(); }).find("is not possible inside a captured step") != std::string::npos);
}

TEST_CASE("StepGraph: an upload inside a captured step is refused; a step with no work on the graph's device is an error") {
    auto x = GpuT::ones({4});
    std::vector<float> host{1, 2, 3, 4};
    mg::StepGraph<mg::Cuda> uploads([&] { x = GpuT::from(host, {4}); });
    uploads.replay();  // eager warm-up
    CHECK(error_message([&] { uploads.replay(); }).find("copying host memory to the device") != std::string::npos);

    mg::StepGraph<mg::Cuda> idle([] {});
    idle.replay();
    CHECK(error_message([&] { idle.replay(); }) ==
          "StepGraph: the captured step launched no work on cuda:0; if its tensors are on another GPU, give the StepGraph "
          "that device (StepGraph(step, true, device))");
}

TEST_CASE("SGD::set_lr between graph replays reaches the captured update") {
    IrisRun<mg::Cuda> eager, graphed;
    mg::LossLog eager_log, graph_log;
    mg::StepGraph<mg::Cuda> graph([&] { graphed.step(graph_log); });
    for (int i = 0; i < 20; ++i) {
        const double lr = i < 10 ? 0.05 : 0.5;
        eager.opt.set_lr(lr);
        graphed.opt.set_lr(lr);
        eager.step(eager_log);
        graph.replay();
    }
    check_close(graph_log.values(), eager_log.values(), 1e-6);
}

TEST_CASE("StepGraph with cuBLAS inside: a model wide enough for the cuBLAS path replays as it runs eagerly") {
    mg::Generator gen(18);
    auto x = CpuT::uniform({512, 256}, -1, 1, gen).to<mg::Cuda>();
    auto y = mg::Tensor<mg::Cpu, std::int32_t>::uniform({512}, 0, 10, gen).to<mg::Cuda>();
    auto make = [] {
        mg::manual_seed(19);
        return mg::nn::Sequential(mg::nn::Linear<mg::Cuda>(256, 512), mg::nn::ReLU{}, mg::nn::Linear<mg::Cuda>(512, 10));
    };
    auto eager = make();
    auto graphed = make();
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD eager_opt(eager.parameters(), {.lr = 0.05, .momentum = 0.9});
    mg::optim::SGD graph_opt(graphed.parameters(), {.lr = 0.05, .momentum = 0.9});
    mg::LossLog eager_log(16), graph_log(16);
    mg::StepGraph<mg::Cuda> graph([&] {
        auto loss = loss_fn(graphed(x), y);
        graph_opt.zero_grad();
        loss.backward();
        graph_opt.step();
        graph_log.record(loss);
    });
    const auto gemms = mg::counters().library_gemms;
    for (int i = 0; i < 10; ++i) {
        auto loss = loss_fn(eager(x), y);
        eager_opt.zero_grad();
        loss.backward();
        eager_opt.step();
        eager_log.record(loss);
        graph.replay();
    }
    // 2 forward + 3 backward products per step (the first layer's input needs no gradient): ten
    // eager steps, the graph's eager first replay and its capture; replays launch the graph only
    CHECK(mg::counters().library_gemms - gemms == 10 * 5 + 5 + 5);
    CHECK(graph.uses_graph());
    const auto g = graph_log.values(), e = eager_log.values();
    REQUIRE(g.size() == 10);
    check_close(g, e, 1e-6);
    CHECK(g.back() < g.front());
    const auto gp = graphed.parameter_values(), ep = eager.parameter_values();
    REQUIRE(gp.size() == ep.size());
    for (const auto& [name, values] : ep) {
        INFO("parameter ", name);
        check_close(gp.at(name).values, values.values, 1e-6);
    }
}

TEST_CASE("DataLoader<Cuda> feeds a captured step the same batches as the CPU loader; metrics read once on the GPU") {
    auto iris = mg::data::read_csv(iris_path, {.label = "species"});
    const mg::data::LoaderOptions options{.batch_size = 32, .shuffle = true, .seed = 5, .drop_last = true};
    mg::data::DataLoader<mg::Cpu> cpu_loader(iris, options);
    mg::data::DataLoader<mg::Cuda> gpu_loader(iris, options);
    mg::manual_seed(3);
    IrisMLP<mg::Cpu> cpu_model;
    mg::manual_seed(3);
    IrisMLP<mg::Cuda> gpu_model;
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD cpu_opt(cpu_model.parameters(), {.lr = 0.01});
    mg::optim::SGD gpu_opt(gpu_model.parameters(), {.lr = 0.01});
    mg::LossLog cpu_log, gpu_log;
    auto x = mg::Tensor<mg::Cuda>::empty({32, 4});
    auto y = mg::Tensor<mg::Cuda, std::int32_t>::empty({32});
    mg::StepGraph<mg::Cuda> graph([&] {
        auto loss = loss_fn(gpu_model(x), y);
        gpu_opt.zero_grad();
        loss.backward();
        gpu_opt.step();
        gpu_log.record(loss);
    });
    for (int epoch = 0; epoch < 3; ++epoch) {
        for (const auto& [bx, by] : cpu_loader) {
            auto loss = loss_fn(cpu_model(bx), by);
            cpu_opt.zero_grad();
            loss.backward();
            cpu_opt.step();
            cpu_log.record(loss);
        }
        for (const auto& batch : gpu_loader.into(x, y)) (void)batch, graph.replay();
    }
    check_close(gpu_log.values(), cpu_log.values(), 1e-5);

    auto logits = gpu_model(x);
    mg::reset_counters();
    const double acc = mg::metrics::accuracy(logits, y);
    CHECK(mg::counters().host_reads == 1);
    CHECK(acc == mg::metrics::accuracy(logits.to<mg::Cpu>(), y.to<mg::Cpu>()));
    auto half = mg::Tensor<mg::Cuda>::full({5, 2}, 0.5f), zero = mg::Tensor<mg::Cuda>::zeros({5, 2});
    CHECK(mg::metrics::mse(half, zero) == doctest::Approx(0.25));
    CHECK(mg::metrics::mae(half, zero) == doctest::Approx(0.5));
}

TEST_CASE("Adam on CUDA matches the CPU: Iris losses, captured with a cosine schedule changed between replays, and the step count") {
    const auto data = iris();
    const auto xg = data.x.to<mg::Cuda>();
    const auto yg = data.y.to<mg::Cuda>();
    mg::Generator cpu_gen(42), gpu_gen(42);
    IrisMLP<mg::Cpu> cpu_model(10, cpu_gen);
    IrisMLP<mg::Cuda> gpu_model(10, gpu_gen);
    mg::optim::Adam<mg::Cpu, float> cpu_opt(cpu_model.parameters(), {.lr = 0.01, .weight_decay = 0.01});
    mg::optim::Adam<mg::Cuda, float> gpu_opt(gpu_model.parameters(), {.lr = 0.01, .weight_decay = 0.01});
    mg::optim::lr_scheduler::CosineAnnealingLR cpu_schedule(cpu_opt, 50, 0.001), gpu_schedule(gpu_opt, 50, 0.001);
    mg::nn::CrossEntropyLoss loss_fn;
    mg::LossLog cpu_log, gpu_log;
    mg::StepGraph<mg::Cuda> graph([&] {
        auto loss = loss_fn(gpu_model(xg), yg);
        gpu_opt.zero_grad();
        loss.backward();
        mg::optim::clip_grad_norm_(gpu_model.parameters(), 1.0);
        gpu_opt.step();
        gpu_log.record(loss);
    });
    for (int i = 0; i < 150; ++i) {
        auto loss = loss_fn(cpu_model(data.x), data.y);
        cpu_opt.zero_grad();
        loss.backward();
        mg::optim::clip_grad_norm_(cpu_model.parameters(), 1.0);
        cpu_opt.step();
        cpu_log.record(loss);
        graph.replay();
        cpu_schedule.step();
        gpu_schedule.step();
    }
    CHECK(graph.uses_graph());
    check_close(gpu_log.values(), cpu_log.values(), 1e-5);
    CHECK(gpu_opt.step_count(0) == 150);
    CHECK(gpu_opt.step_count(3) == 150);
}

TEST_CASE("compiled StepGraph on CUDA: one launch runs k Iris steps with momentum; losses within 1e-6 of eager, no sync, no cudaMalloc") {
    IrisSteps<mg::Cpu> cpu;
    IrisSteps<mg::Cuda> eager, compiled;
    mg::StepGraph<mg::Cuda> graph([&] { compiled.step(); }, mg::StepMode::compiled);
    graph.replay(2);  // warm-up and capture, then a step
    REQUIRE(graph.compiled());
    CHECK(graph.fallback_reason().empty());
    mg::Cuda::synchronize(0);
    const auto before = mg::counters();
    graph.replay(100);
    graph.replay(98);
    const auto after = mg::counters();
    CHECK(after.kernel_launches - before.kernel_launches == 2);  // one per replay(k): the log had room, so its hook launched nothing
    CHECK(after.host_syncs == before.host_syncs);
    CHECK(after.device_allocs == before.device_allocs);
    for (int i = 0; i < 200; ++i) {
        eager.step();
        cpu.step();
    }
    const auto c = compiled.log.values(), e = eager.log.values(), h = cpu.log.values();
    REQUIRE(c.size() == 200);
    check_close(c, e, 1e-6);
    check_close(c, h, 1e-5);
    check_close(compiled.model.fc1.weight.to_vector(), eager.model.fc1.weight.to_vector(), 1e-5);
}

TEST_CASE("compiled StepGraph on CUDA: Adam with dropout, k steps per launch, match the CPU's eager steps and masks") {
    const auto xc = CpuT::uniform({16, 8}, -1, 1);
    const auto yc = mg::Tensor<mg::Cpu, std::int64_t>::from(std::vector<std::int64_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3});
    auto run = [&](auto tag, mg::StepMode mode) {
        using B = decltype(tag);
        mg::manual_seed(5);
        auto model = mg::nn::Sequential(mg::nn::Linear<B>(8, 32), mg::nn::ReLU{}, mg::nn::Dropout(0.5), mg::nn::Linear<B>(32, 4));
        mg::optim::Adam opt(model.parameters(), {.lr = 1e-2});
        mg::Generator gen(11);
        mg::LossLog log;
        mg::nn::CrossEntropyLoss loss_fn;
        const auto x = xc.to<B>();
        const auto y = yc.to<B>();
        auto step = [&] {
            auto h = model.template layer<1>()(model.template layer<0>()(x));
            auto loss = loss_fn(model.template layer<3>()(mg::dropout(mg::dropout(h, 0.5, true, gen), 0.25, true, gen)), y);
            opt.zero_grad();
            loss.backward();
            opt.step();
            log.record(loss);
        };
        mg::StepGraph<B> graph(step, mode);
        graph.replay(2);
        graph.replay(28);
        if (mode == mg::StepMode::compiled) CHECK(graph.compiled());
        return log.values();
    };
    const auto cpu = run(mg::Cpu{}, mg::StepMode::eager);
    check_close(run(mg::Cuda{}, mg::StepMode::compiled), cpu, 1e-5);
    check_close(run(mg::Cuda{}, mg::StepMode::graph), cpu, 1e-5);
}

TEST_CASE("compiled StepGraph on CUDA: a step with a cuBLAS product falls back to the graph, says why, and matches eager") {
    CrossoverGuard all_cublas(0);  // every product goes to cuBLAS
    IrisSteps<mg::Cuda> eager, compiled;
    mg::StepGraph<mg::Cuda> graph([&] { compiled.step(); }, mg::StepMode::compiled);
    graph.replay(20);
    for (int i = 0; i < 20; ++i) eager.step();
    CHECK_FALSE(graph.compiled());
    CHECK(graph.fallback_reason().find("goes to cuBLAS") != std::string::npos);
    check_close(compiled.log.values(), eager.log.values(), 1e-6);
}

TEST_CASE("compiled StepGraph on a cooperative grid: k Iris steps in one launch, within 1e-6 of eager, no sync, no cudaMalloc; a bad label is reported") {
    AllOnGrid on_grid;
    IrisSteps<mg::Cuda> eager, compiled;
    mg::StepGraph<mg::Cuda> graph([&] { compiled.step(); }, mg::StepMode::compiled);
    graph.replay(2);
    INFO(graph.fallback_reason());
    REQUIRE(graph.compiled());
    CHECK(graph.program_on_grid());
    mg::Cuda::synchronize(0);
    const auto before = mg::counters();
    graph.replay(100);
    graph.replay(98);
    const auto after = mg::counters();
    CHECK(after.kernel_launches - before.kernel_launches == 2);
    CHECK(after.host_syncs == before.host_syncs);
    CHECK(after.device_allocs == before.device_allocs);
    for (int i = 0; i < 200; ++i) eager.step();
    check_close(compiled.log.values(), eager.log.values(), 1e-6);
    check_close(compiled.model.fc1.weight.to_vector(), eager.model.fc1.weight.to_vector(), 1e-5);

    auto bad = compiled.y.to<mg::Cpu>();
    bad.data()[7] = 3;
    compiled.y.copy_(bad.to<mg::Cuda>());
    graph.replay();
    CHECK(error_message([] { mg::Cuda::synchronize(0); }).starts_with("cross_entropy: argument #2 'target' has class 3 at index 7"));
}

// 20 training steps of loss() with opt through a StepGraph in `mode`, each loss recorded in log;
// in compiled mode, checks that the step compiled to a grid program. The graph, for more replays.
template <class B, class Loss, class Opt>
std::unique_ptr<mg::StepGraph<B>> twenty_steps_on_grid(Loss loss_of, Opt& opt, mg::LossLog& log, mg::StepMode mode) {
    auto graph = std::make_unique<mg::StepGraph<B>>(
        [loss_of, &opt, &log] {
            auto loss = loss_of();
            opt.zero_grad();
            loss.backward();
            opt.step();
            log.record(loss);
        },
        mode);
    graph->replay(2);
    graph->replay(18);
    if (mode == mg::StepMode::compiled) {
        INFO(graph->fallback_reason());
        CHECK(graph->compiled());
        CHECK(graph->program_on_grid());
    }
    return graph;
}

TEST_CASE("compiled StepGraph on a grid: sums over many blocks (cross-entropy over 4096 rows, a mean of 12288) match the CPU; a bad label far in is reported") {
    AllOnGrid on_grid;
    mg::Generator data_gen(21);
    const auto logits0 = CpuT::uniform({4096, 10}, -2, 2, data_gen).to_vector();
    const auto x0 = CpuT::uniform({128, 96}, -1, 1, data_gen).to_vector();
    const auto w0 = CpuT::uniform({96, 96}, -0.1, 0.1, data_gen).to_vector();
    std::vector<std::int32_t> labels(4096);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i * 7 % 10);
    // both sums of the cross-entropy (its rows and its count) and the mean span many blocks (16 and
    // 48 of 256 threads): a grid sum that kept one block's total is off here
    auto run = [&](auto tag, mg::StepMode mode, std::int64_t bad_index) {
        using B = decltype(tag);
        auto logits = CpuT::from(logits0, {4096, 10}).to<B>();
        auto w = CpuT::from(w0, {96, 96}).to<B>();
        logits.requires_grad_();
        w.requires_grad_();
        const auto x = CpuT::from(x0, {128, 96}).to<B>();
        auto y = mg::Tensor<mg::Cpu, std::int32_t>::from(labels).to<B>();
        mg::optim::SGD opt({logits, w}, {.lr = 0.5, .momentum = 0.9});
        mg::nn::CrossEntropyLoss loss_fn;
        mg::LossLog log;
        auto graph = twenty_steps_on_grid<B>([&] { return loss_fn(logits, y) + mg::mean(mg::relu(mg::matmul(x, w))); }, opt, log, mode);
        auto result = std::pair{log.values(), logits.to_vector()};
        if (bad_index >= 0) {
            auto bad = labels;
            bad[static_cast<std::size_t>(bad_index)] = 10;
            y.copy_(mg::Tensor<mg::Cpu, std::int32_t>::from(bad));
            graph->replay();
            CHECK(error_message([&] { B::synchronize(0); }).starts_with(fmt::format("cross_entropy: argument #2 'target' has class 10 at index {}", bad_index)));
        }
        return result;
    };
    const auto cpu = run(mg::Cpu{}, mg::StepMode::eager, -1);
    const auto gpu = run(mg::Cuda{}, mg::StepMode::compiled, 3001);
    check_close(gpu.first, cpu.first, 1e-5);
    check_close(gpu.second, cpu.second, 1e-4);
}

TEST_CASE("compiled StepGraph: a step with records above one block's work runs on a grid and matches the CPU") {
    CrossoverGuard no_cublas(never);  // the 256x512x512 products stay out of cuBLAS
    const auto xc = CpuT::uniform({256, 512}, -1, 1);
    std::vector<std::int32_t> labels(256);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 10);
    const auto yc = mg::Tensor<mg::Cpu, std::int32_t>::from(labels);
    auto run = [&](auto tag, mg::StepMode mode) {
        using B = decltype(tag);
        mg::manual_seed(9);
        auto model = mg::nn::Sequential(mg::nn::Linear<B>(512, 512), mg::nn::ReLU{}, mg::nn::Linear<B>(512, 10));
        mg::optim::SGD opt(model.parameters(), {.lr = 0.05, .momentum = 0.9});
        mg::LossLog log;
        mg::nn::CrossEntropyLoss loss_fn;
        const auto x = xc.to<B>();
        const auto y = yc.to<B>();
        twenty_steps_on_grid<B>([&] { return loss_fn(model(x), y); }, opt, log, mode);
        return log.values();
    };
    const auto cpu = run(mg::Cpu{}, mg::StepMode::eager);
    check_close(run(mg::Cuda{}, mg::StepMode::compiled), cpu, 1e-4);
}

TEST_CASE("Iris in every mode: eager, graph, compiled, compiled k=100 and on a grid stay within 1e-4 of the CPU curve over 20000 epochs") {
    IrisSteps<mg::Cpu> cpu;
    for (int i = 0; i < 20000; ++i) cpu.step();
    const auto reference = cpu.log.values();
    struct Mode {
        mg::StepMode mode;
        int k;
        bool grid;
    };
    for (auto [mode, k, grid] : {Mode{mg::StepMode::eager, 1, false}, Mode{mg::StepMode::graph, 1, false}, Mode{mg::StepMode::compiled, 1, false},
                                 Mode{mg::StepMode::compiled, 100, false}, Mode{mg::StepMode::compiled, 100, true}}) {
        std::optional<AllOnGrid> on_grid;
        if (grid) on_grid.emplace();
        IrisSteps<mg::Cuda> gpu;
        mg::StepGraph<mg::Cuda> graph([&] { gpu.step(); }, mode);
        for (int done = 0; done < 20000; done += k) graph.replay(k);
        const auto losses = gpu.log.values();
        double worst = 0;
        for (std::size_t i = 0; i < losses.size(); ++i)
            worst = std::max(worst, std::abs(double(losses[i]) - reference[i]) / std::max(std::abs(double(reference[i])), 1e-30));
        MESSAGE("Iris mode ", int(mode), " k=", k, grid ? " grid" : "", ": CPU/CUDA max relative difference over 20000 losses: ", worst);
        check_close(losses, reference, 1e-4);
    }
}
