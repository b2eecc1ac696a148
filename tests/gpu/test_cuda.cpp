// CudaBackend against the CPU backend, and the promises of the GPU issue: no host sync in the
// loop, no cudaMalloc after the first step, clear runtime errors. (The suite is three files so that
// nvcc compiles them in parallel: test_cuda_step_graph.cpp has every StepGraph<Cuda> case, graph
// replay and compiled steps, test_cuda_large.cpp the large shapes.)
#include "gpu_helpers.hpp"
#include "digits_cnn_model.hpp"

TEST_CASE("device facts") {
    CHECK(mg::cuda::device_count() >= 1);
    CHECK(mg::cuda::current_device() == 0);
    CHECK_FALSE(mg::cuda::device_name(0).empty());
    CHECK(mg::cuda::memory_info(0).total_bytes > 0);
    CHECK(error_message([] { mg::cuda::set_device(mg::cuda::device_count()); }).find("is out of range") != std::string::npos);
}

TEST_CASE("to<Cuda>() and back are copies with the same values") {
    auto a = CpuT::from({1, 2, 3, 4, 5, 6}, {2, 3});
    auto g = a.to<mg::Cuda>();
    CHECK(g.shape() == a.shape());
    CHECK(g.to<mg::Cpu>().to_vector() == a.to_vector());
    CHECK(g.to_vector() == a.to_vector());
}

TEST_CASE("every op's forward and gradients match the CPU backend") {
    mg::Generator gen(3);
    auto x = CpuT::uniform({37, 6}, -1, 1, gen), w = CpuT::uniform({5, 6}, -1, 1, gen), b = CpuT::uniform({5}, -1, 1, gen);
    auto m = CpuT::uniform({5, 4}, -1, 1, gen);
    auto labels = mg::Tensor<mg::Cpu, std::int32_t>::uniform({37}, 0, 4, gen);
    for (auto* t : {&x, &w, &b, &m}) t->requires_grad_();
    // Written plainly: the same graph on both backends.
    auto cpu_loss = mg::add(mg::cross_entropy(mg::matmul(mg::relu(mg::linear(x, w, b)), m), labels),
                            mg::mean(mg::log_softmax(mg::matmul(mg::relu(mg::linear(x, w, b)), m))));
    cpu_loss.backward();
    auto xg = x.to<mg::Cuda>(), wg = w.to<mg::Cuda>(), bg = b.to<mg::Cuda>(), mg_ = m.to<mg::Cuda>();
    for (auto* t : {&xg, &wg, &bg, &mg_}) t->requires_grad_();
    auto lg = labels.to<mg::Cuda>();
    auto gpu_loss = mg::add(mg::cross_entropy(mg::matmul(mg::relu(mg::linear(xg, wg, bg)), mg_), lg),
                            mg::mean(mg::log_softmax(mg::matmul(mg::relu(mg::linear(xg, wg, bg)), mg_))));
    gpu_loss.backward();
    check_close(gpu_loss.to_vector(), cpu_loss.to_vector());
    check_close(xg.grad().to_vector(), x.grad().to_vector());
    check_close(wg.grad().to_vector(), w.grad().to_vector());
    check_close(bg.grad().to_vector(), b.grad().to_vector());
    check_close(mg_.grad().to_vector(), m.grad().to_vector());
    auto logits_cpu = mg::matmul(mg::relu(mg::linear(x, w, b)), m);
    auto logits_gpu = mg::matmul(mg::relu(mg::linear(xg, wg, bg)), mg_);
    CHECK(mg::argmax(logits_gpu, 1).to_vector() == mg::argmax(logits_cpu, 1).to_vector());
    auto big = CpuT::uniform({100000}, -1, 1, gen);
    CHECK(mg::sum(big.to<mg::Cuda>()).item() == doctest::Approx(mg::sum(big).item()).epsilon(1e-4));
}

// Every elementwise op once, broadcast binary ops and tensor-scalar forms, written once for both
// backends; a and b broadcast, w has the result's shape.
template <class B>
static mg::Tensor<B> elementwise_graph(const mg::Tensor<B>& a, const mg::Tensor<B>& b, const mg::Tensor<B>& w) {
    auto positive = mg::exp(b) + 0.5f;
    auto y = (a + b) * (a - b) / positive + 2.0f * mg::tanh(a) - mg::sigmoid(b) / 3.0f;
    y = mg::gelu(y) + mg::relu(1.0f - y) * mg::clamp(y, -0.5f, 0.5f) + mg::abs(-y);
    y = mg::log(mg::sqrt(mg::pow(y, 2.0f) + 1.0f)) + 3.0f / (positive * positive) - mg::neg(b) * a;
    y = y + mg::sin(a) * mg::cos(y);
    return mg::sum(y * w);
}

TEST_CASE("every elementwise op, broadcasting and the tensor-scalar forms match the CPU backend") {
    mg::Generator gen(21);
    const std::pair<mg::Shape, mg::Shape> shapes[] = {
        {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{4}, {3, 4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {3, 1}}, {{2, 1, 3, 4}, {3, 1}},
        {{3, 4}, {1}}, {{2000, 300}, {300}}, {{2000, 1}, {2000, 300}}, {{100000}, {1}}, {{50, 1, 40}, {1, 30, 1}}};
    for (const auto& [sa, sb] : shapes) {
        const std::string pattern = fmt::format("{} and {}", sa, sb);
        CAPTURE(pattern);
        auto a = CpuT::uniform(sa, -1, 1, gen), b = CpuT::uniform(sb, -1, 1, gen);
        auto ag = a.to<mg::Cuda>(), bg = b.to<mg::Cuda>();
        for (auto* t : {&a, &b}) t->requires_grad_();
        for (auto* t : {&ag, &bg}) t->requires_grad_();
        auto w = CpuT::uniform(mg::detail::broadcast_shapes("test", sa, "a", sb, "b"), 0.5, 1.5, gen);
        auto cpu_loss = elementwise_graph(a, b, w);
        auto gpu_loss = elementwise_graph(ag, bg, w.to<mg::Cuda>());
        cpu_loss.backward();
        gpu_loss.backward();
        CHECK(gpu_loss.item() == doctest::Approx(cpu_loss.item()).epsilon(1e-4));
        check_close(ag.grad().to_vector(), a.grad().to_vector(), 1e-4);
        check_close(bg.grad().to_vector(), b.grad().to_vector(), 1e-4);
    }
    auto a = GpuT::ones({3, 4}), b = GpuT::ones({3});
    CHECK(error_message([&] { (void)(a * b); }).find("mul: argument #2 'other' has shape [3], which does not broadcast") == 0);
}

// The dim reductions, softmax along a dim, the shape ops, bmm and the in-place members (issue 7).
template <class B>
static mg::Tensor<B> dim_and_shape_graph(const mg::Tensor<B>& x, const mg::Tensor<B>& m, const mg::Tensor<B, std::int64_t>& idx,
                                         const mg::Tensor<B>& w) {
    auto parts = mg::cat({mg::flatten(mg::sum(x, 1)), mg::flatten(mg::mean(x, -1, true)), mg::flatten(mg::max(x, 0).values),
                          mg::flatten(mg::softmax(x, 1)), mg::flatten(mg::log_softmax(x, -1)), mg::flatten(mg::transpose(x, 0, 2)),
                          mg::flatten(mg::narrow(m, 1, 1, 3)), mg::flatten(mg::slice(m, 0, 2, 100)),
                          mg::flatten(mg::index_select(m, 0, idx)), mg::flatten(mg::t(m)), m.reshape({-1}),
                          mg::flatten(mg::bmm(x, mg::transpose(x, 1, 2)))});
    return mg::sum(parts * w);
}

TEST_CASE("dim reductions, softmax along a dim, shape ops and in-place ops match the CPU backend") {
    mg::Generator gen(31);
    auto x = CpuT::uniform({4, 3, 5}, -1, 1, gen), m = CpuT::uniform({6, 5}, -1, 1, gen);
    auto idx = mg::Tensor<mg::Cpu, std::int64_t>::from({5, 0, 5, 2, 5});
    auto xg = x.to<mg::Cuda>(), mg_ = m.to<mg::Cuda>();
    auto idxg = idx.to<mg::Cuda>();
    for (auto* t : {&x, &m}) t->requires_grad_();
    for (auto* t : {&xg, &mg_}) t->requires_grad_();
    mg::Generator wgen(32);
    // the parts' sizes, in dim_and_shape_graph's order
    const std::int64_t total = 4 * 5 + 4 * 3 + 3 * 5 + 3 * 60 + 6 * 3 + 4 * 5 + 5 * 5 + 30 + 30 + 4 * 3 * 3;
    auto w = CpuT::uniform({total}, 0.5, 1.5, wgen);
    auto cpu_loss = dim_and_shape_graph(x, m, idx, w);
    auto gpu_loss = dim_and_shape_graph(xg, mg_, idxg, w.to<mg::Cuda>());
    cpu_loss.backward();
    gpu_loss.backward();
    CHECK(gpu_loss.item() == doctest::Approx(cpu_loss.item()).epsilon(1e-4));
    check_close(xg.grad().to_vector(), x.grad().to_vector(), 1e-4);
    check_close(mg_.grad().to_vector(), m.grad().to_vector(), 1e-4);
    CHECK(mg::argmax(xg, 2).to_vector() == mg::argmax(x, 2).to_vector());
    CHECK(mg::argmax(xg.detach(), 0, true).to<mg::Cpu>().shape() == mg::Shape{1, 3, 5});

    auto y = GpuT::zeros({2, 3});
    y.fill_(2).mul_(3).add_(1);
    CHECK(y.to_vector() == std::vector<float>(6, 7.0f));
    y.copy_(CpuT::from({1, 2, 3, 4, 5, 6}, {2, 3}));
    CHECK(y.to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});
    auto back = CpuT::zeros({2, 3});
    back.copy_(y);
    CHECK(back.to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});
    y.zero_();
    CHECK(y.to_vector() == std::vector<float>(6, 0.0f));
    CHECK(error_message([&] { mg::narrow(y, 1, 2, 2); }).starts_with("narrow: argument #4 'length' is 2"));
    // an index out of range is found by a kernel and reported at the next host read
    auto bad = mg::index_select(y, 0, mg::Tensor<mg::Cpu, std::int64_t>::from({0, 2}).to<mg::Cuda>());
    CHECK(error_message([&] { bad.to_vector(); }).find("class 2 at index 1") != std::string::npos);
}

// Masks, extrema, gather and attention, the same graph on either backend: a scalar whose gradient
// reaches x and q, k, v.
template <class B>
mg::Tensor<B, float> sequence_graph(const mg::Tensor<B, float>& x, const mg::Tensor<B, float>& q, const mg::Tensor<B, float>& k,
                                    const mg::Tensor<B, float>& v, const mg::Tensor<B, std::int64_t>& index) {
    const auto future = mg::triu(mg::Tensor<B, float>::ones({6, 6}, x.device()), 1) > 0.5f;
    const auto masked = mg::masked_fill(x, x < -0.5f, 0.25f);
    const auto picked = mg::gather(masked, 1, index);
    const auto [top, where] = mg::topk(masked, 2, -1);
    auto total = mg::sum(picked) + mg::sum(top) * 0.5f + mg::max(x) + mg::sum(mg::min(x, 0).values) + mg::var(x) + mg::sum(mg::std(x, 1));
    total = total + mg::sum(mg::where(x > 0.0f, x, x * 2.0f) * 0.1f) + mg::sum(mg::tril(x, -1)) * 0.3f;
    const mg::AttentionOptions<B, float> causal{.is_causal = true};
    const mg::AttentionOptions<B, float> masked_attention{.attn_mask = mg::logical_not(future)};
    total = total + mg::sum(mg::scaled_dot_product_attention(q, k, v, causal) * x.reshape({2, 3, 6, 1}));
    return total + mg::sum(mg::scaled_dot_product_attention(q, k, v, masked_attention)) * 0.7f + mg::sum(mg::gelu(x));
}

TEST_CASE("masks, extrema, gather and scaled_dot_product_attention (one block and blocks of rows) match the CPU backend") {
    mg::Generator gen(31);
    auto x = CpuT::uniform({6, 6}, -1, 1, gen), q = CpuT::uniform({2, 3, 6, 4}, -1, 1, gen);
    auto k = CpuT::uniform({2, 3, 6, 4}, -1, 1, gen), v = CpuT::uniform({2, 3, 6, 5}, -1, 1, gen);
    const auto index = mg::Tensor<mg::Cpu, std::int64_t>::from({0, 5, 5, 1, 2, 3, 4, 0, 1, 2, 3, 3}, {6, 2});
    for (std::int64_t rows : {0, 2}) {  // chosen by shape (one block here); blocks of two rows
        CAPTURE(rows);
        const auto saved = mg::detail::attention_block_rows();
        mg::detail::attention_block_rows() = rows;
        auto xg = x.to<mg::Cuda>(), qg = q.to<mg::Cuda>(), kg = k.to<mg::Cuda>(), vg = v.to<mg::Cuda>();
        for (auto* t : {&x, &q, &k, &v}) {
            t->requires_grad_();
            t->zero_grad();
        }
        for (auto* t : {&xg, &qg, &kg, &vg}) t->requires_grad_();
        auto cpu = sequence_graph(x, q, k, v, index);
        auto gpu = sequence_graph(xg, qg, kg, vg, index.to<mg::Cuda>());
        cpu.backward();
        gpu.backward();
        mg::detail::attention_block_rows() = saved;
        CHECK(gpu.item() == doctest::Approx(cpu.item()).epsilon(1e-4));
        check_close(xg.grad().to_vector(), x.grad().to_vector(), 1e-4);
        check_close(qg.grad().to_vector(), q.grad().to_vector(), 1e-4);
        check_close(kg.grad().to_vector(), k.grad().to_vector(), 1e-4);
        check_close(vg.grad().to_vector(), v.grad().to_vector(), 1e-4);
    }
    CHECK(mg::argmax(x.to<mg::Cuda>()).item() == mg::argmax(x).item());
    CHECK((x.to<mg::Cuda>() > 0.0f).to_vector() == (x > 0.0f).to_vector());
}

TEST_CASE("the same seed gives the same initial weights on both backends; a model moves in one call") {
    mg::manual_seed(42);
    IrisMLP<mg::Cpu> cpu_model;
    mg::manual_seed(42);
    IrisMLP<mg::Cuda> gpu_model;
    CHECK(gpu_model.parameter_values() == cpu_model.parameter_values());
    auto moved = cpu_model.to<mg::Cuda>();
    CHECK(moved.parameter_values() == cpu_model.parameter_values());
    auto back = moved.to<mg::Cpu>();
    CHECK(back.parameter_values() == cpu_model.parameter_values());
}

TEST_CASE("modules on CUDA match the CPU: a Sequential moved in one call, forward and every gradient, dropout's mask too") {
    mg::manual_seed(5);
    auto cpu_model = mg::nn::Sequential(mg::nn::Linear<mg::Cpu>(6, 70), mg::nn::Tanh{}, mg::nn::Dropout(0.3), mg::nn::LayerNorm<mg::Cpu>(70),
                                        mg::nn::GELU{}, mg::nn::Linear<mg::Cpu>(70, 5), mg::nn::Sigmoid{}, mg::nn::Softmax(-1));
    auto gpu_model = cpu_model.to<mg::Cuda>();
    CHECK(gpu_model.parameter_values() == cpu_model.parameter_values());
    mg::Generator gen(8);
    auto x = CpuT::uniform({33, 6}, -1, 1, gen), w = CpuT::uniform({33, 5}, -1, 1, gen);
    auto xg = x.to<mg::Cuda>(), wg = w.to<mg::Cuda>();
    mg::manual_seed(9);  // the same dropout offsets for both passes
    auto cpu_loss = mg::sum(cpu_model(x) * w);
    mg::manual_seed(9);
    auto gpu_loss = mg::sum(gpu_model(xg) * wg);
    CHECK(gpu_loss.item() == doctest::Approx(cpu_loss.item()).epsilon(1e-4));
    cpu_loss.backward();
    gpu_loss.backward();
    auto cpu_params = cpu_model.named_parameters();
    auto gpu_params = gpu_model.named_parameters();
    for (std::size_t i = 0; i < cpu_params.size(); ++i) {
        CAPTURE(cpu_params[i].first);
        check_close(gpu_params[i].second.grad().to_vector(), cpu_params[i].second.grad().to_vector(), 1e-4);
    }
    gpu_model.eval();
    auto back = gpu_model.to<mg::Cpu>();
    CHECK(!back.layer<2>().is_training());

    // Embedding: gather and the scatter-add gradient with repeated indices
    mg::nn::Embedding<mg::Cpu> table(50, 40);
    auto table_gpu = table.to<mg::Cuda>();
    auto index = mg::Tensor<mg::Cpu, std::int64_t>::from({3, 7, 3, 49, 0, 3}, {2, 3});
    auto weights = CpuT::uniform({2, 3, 40}, -1, 1, gen);
    mg::sum(table(index) * weights).backward();
    mg::sum(table_gpu(index.to<mg::Cuda>()) * weights.to<mg::Cuda>()).backward();
    check_close(table_gpu.weight.grad().to_vector(), table.weight.grad().to_vector(), 1e-5);
}

TEST_CASE("conv2d, pooling and batch_norm on CUDA match the CPU backend: values and every gradient") {
    mg::Generator gen(12);
    struct ConvCase {
        mg::Shape x, w;
        mg::Conv2dOptions options;
    };
    for (const auto& c : {ConvCase{{2, 4, 9, 7}, {6, 2, 3, 2}, {.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}, .groups = 2}},
                          ConvCase{{3, 3, 8, 8}, {5, 3, 3, 3}, {.padding = "same"}}, ConvCase{{1, 6, 5, 5}, {6, 1, 3, 3}, {.padding = 1, .groups = 6}}}) {
        CAPTURE(c.x);
        auto x = CpuT::uniform(c.x, -1, 1, gen), w = CpuT::uniform(c.w, -1, 1, gen), b = CpuT::uniform({c.w[0]}, -1, 1, gen);
        x.requires_grad_(), w.requires_grad_(), b.requires_grad_();
        auto xg = x.detach().to<mg::Cuda>(), wg = w.detach().to<mg::Cuda>(), bg = b.detach().to<mg::Cuda>();
        xg.requires_grad_(), wg.requires_grad_(), bg.requires_grad_();
        const auto y = mg::conv2d(x, w, b, c.options);
        const auto yg = mg::conv2d(xg, wg, bg, c.options);
        check_close(yg.to_vector(), y.to_vector(), 1e-5);
        const auto anchor = CpuT::uniform(y.shape(), -1, 1, gen);
        mg::sum(y * anchor).backward();
        mg::sum(yg * anchor.to<mg::Cuda>()).backward();
        check_close(xg.grad().to_vector(), x.grad().to_vector(), 1e-4);
        check_close(wg.grad().to_vector(), w.grad().to_vector(), 1e-4);
        check_close(bg.grad().to_vector(), b.grad().to_vector(), 1e-4);
    }
    auto x = CpuT::uniform({2, 3, 9, 8}, -1, 1, gen);
    x.requires_grad_();
    auto xg = x.detach().to<mg::Cuda>();
    xg.requires_grad_();
    const auto pooled = [](const auto& t) {
        return mg::sum(mg::max_pool2d(t, {3, 2}, 2, 1)) + mg::sum(mg::avg_pool2d(t, 3, 1, 1) * 2.0f) + mg::sum(mg::adaptive_avg_pool2d(t, {4, 3}) * 3.0f);
    };
    const auto loss = pooled(x);
    const auto loss_g = pooled(xg);
    CHECK(loss_g.item() == doctest::Approx(loss.item()).epsilon(1e-5));
    loss.backward();
    loss_g.backward();
    check_close(xg.grad().to_vector(), x.grad().to_vector(), 1e-5);
    // BatchNorm2d: training (the running statistics move on the device), then eval
    mg::nn::BatchNorm2d<mg::Cpu> bn(3);
    auto bn_gpu = bn.to<mg::Cuda>();
    for (int step = 0; step < 3; ++step) {
        auto z = CpuT::uniform({4, 3, 5, 5}, 0, 2, gen);
        check_close(bn_gpu(z.to<mg::Cuda>()).to_vector(), bn(z).to_vector(), 1e-5);
    }
    check_close(bn_gpu.running_var.to_vector(), bn.running_var.to_vector(), 1e-5);
    CHECK(bn_gpu.num_batches_tracked.item() == 3);
    bn.eval(), bn_gpu.eval();
    auto z = CpuT::uniform({4, 3, 5, 5}, 0, 2, gen);
    check_close(bn_gpu(z.to<mg::Cuda>()).to_vector(), bn(z).to_vector(), 1e-5);
}

TEST_CASE("the digits CNN on CUDA: moved with its buffers, trains as on the CPU, and after the first step no cudaMalloc and no host sync") {
    mg::manual_seed(3);
    examples::DigitsCnn<mg::Cpu> cpu_model;
    cpu_model.drop.eval();  // no dropout: both backends take the same steps
    auto gpu_model = cpu_model.to<mg::Cuda>();
    CHECK(gpu_model.parameter_values() == cpu_model.parameter_values());
    mg::Generator gen(4);
    const auto x = CpuT::uniform({64, 64}, 0, 1, gen);
    std::vector<std::int64_t> labels(64);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i * 3 % 10);
    const auto y = mg::Tensor<mg::Cpu, std::int64_t>::from(labels);
    const auto xg = x.to<mg::Cuda>();
    const auto yg = y.to<mg::Cuda>();
    mg::optim::Adam cpu_opt(cpu_model.parameters(), {.lr = 1e-2});
    mg::optim::Adam gpu_opt(gpu_model.parameters(), {.lr = 1e-2});
    mg::LossLog cpu_log, gpu_log;
    auto step = [](auto& model, auto& opt, auto& log, const auto& xs, const auto& ys) {
        auto loss = mg::cross_entropy(model(xs), ys);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    };
    step(cpu_model, cpu_opt, cpu_log, x, y);
    step(gpu_model, gpu_opt, gpu_log, xg, yg);
    mg::Cuda::synchronize(0);
    const auto before = mg::counters();
    for (int i = 0; i < 9; ++i) step(gpu_model, gpu_opt, gpu_log, xg, yg);
    const auto after = mg::counters();
    CHECK(after.storage_allocs == before.storage_allocs);
    CHECK(after.host_syncs == before.host_syncs);
    for (int i = 0; i < 9; ++i) step(cpu_model, cpu_opt, cpu_log, x, y);
    check_close(gpu_log.values(), cpu_log.values(), 1e-3);
    check_close(gpu_model.bn2.running_mean.to_vector(), cpu_model.bn2.running_mean.to_vector(), 1e-3);
    CHECK(gpu_model.bn1.num_batches_tracked.item() == 10);
}

TEST_CASE("a label outside [0, classes) is reported at the next host read") {
    auto logits = GpuT::zeros({2, 3});
    auto bad = mg::Tensor<mg::Cpu, std::int32_t>::from({1, 3}).to<mg::Cuda>();
    auto loss = mg::cross_entropy(logits, bad);
    CHECK(error_message([&] { loss.item(); }) ==
          "cross_entropy: argument #2 'target' has class 3 at index 1, expected a class in [0, 3) (found on cuda:0 by a kernel, "
          "reported at the next host read)");
    CHECK(mg::cross_entropy(logits, mg::Tensor<mg::Cpu, std::int32_t>::from({1, 2}).to<mg::Cuda>()).item() ==
          doctest::Approx(std::log(3.0)));
}

TEST_CASE("tensors on different GPUs are a clear runtime error") {
    if (mg::cuda::device_count() < 2) {
        MESSAGE("one GPU: the cross-device case cannot run here");
        return;
    }
    auto a = GpuT::ones({2, 2}, 0), b = GpuT::ones({2, 2}, 1);
    CHECK(error_message([&] { mg::matmul(a, b); }) ==
          "matmul: argument #2 'other' is on cuda:1 but argument #1 'input' is on cuda:0; move it with .to<mg::Cuda>(0)");
}

TEST_CASE("out of device memory names the size asked for and what is free") {
    const auto msg = error_message([] { GpuT::empty({std::int64_t(1) << 40}); });  // 4 TiB of floats
    CHECK(msg.find("CUDA out of memory: tried to allocate 4194304.00 MiB on cuda:0") != std::string::npos);
    CHECK(msg.find("MiB free of") != std::string::npos);
}

TEST_CASE("200 training steps with log.record each step: zero host syncs, zero cudaMalloc after step 1") {
    auto data = iris();
    auto x = data.x.to<mg::Cuda>();
    auto y = data.y.to<mg::Cuda>();
    IrisMLP<mg::Cuda> model;
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD opt(model.parameters(), {.lr = 0.01, .momentum = 0.9});
    mg::LossLog log(256);
    auto step = [&] {
        auto loss = loss_fn(model(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    };
    step();
    const auto before = mg::counters();
    for (int i = 0; i < 200; ++i) step();
    const auto after = mg::counters();
    CHECK(after.host_syncs == before.host_syncs);
    CHECK(after.host_reads == before.host_reads);
    CHECK(after.device_to_host_bytes == before.device_to_host_bytes);
    CHECK(after.device_allocs == before.device_allocs);
    const auto losses = log.values();
    CHECK(losses.size() == 201);
    CHECK(losses.back() < losses.front());
}

TEST_CASE("the digits recipe on CUDA: after the first epoch, no cudaMalloc, no host sync and no host read per epoch") {
    const auto run = digits_recipe_epochs<mg::Cuda>(4);
    for (std::size_t e = 1; e < run.after_epoch.size(); ++e) {
        CAPTURE(e);
        CHECK(run.after_epoch[e].device_allocs == run.after_epoch[0].device_allocs);
        CHECK(run.after_epoch[e].host_syncs == run.after_epoch[0].host_syncs);
        CHECK(run.after_epoch[e].host_reads == run.after_epoch[0].host_reads);
        CHECK(run.after_epoch[e].kernel_launches > run.after_epoch[e - 1].kernel_launches);
    }
    REQUIRE(run.losses.size() == 4);
    CHECK(run.losses.back() < run.losses.front());
}

TEST_CASE("a device index past minigrad's table is an error, not a read past it") {
    CHECK_THROWS_AS((GpuT::zeros({1}, 16)), mg::DeviceError);
    CHECK_THROWS_AS((GpuT::zeros({1}, -1)), mg::DeviceError);
}

TEST_CASE("Iris: CPU and CUDA loss curves agree to 1e-4 relative at every recorded point over 20000 epochs") {
    auto data = iris();
    auto train = [&](auto backend_tag) {
        using B = decltype(backend_tag);
        mg::manual_seed(42);
        IrisMLP<B> model;
        auto x = data.x.template to<B>();
        auto y = data.y.template to<B>();
        mg::nn::CrossEntropyLoss loss_fn;
        mg::optim::SGD opt(model.parameters(), {.lr = 0.01});
        mg::LossLog log;
        for (int epoch = 0; epoch < 20000; ++epoch) {
            auto loss = loss_fn(model(x), y);
            opt.zero_grad();
            loss.backward();
            opt.step();
            if ((epoch + 1) % 200 == 0) log.record(loss);
        }
        return log.values();
    };
    const auto cpu = train(mg::Cpu{});
    const auto gpu = train(mg::Cuda{});
    check_close(gpu, cpu, 1e-4);
    CHECK(gpu.back() < 0.1f);
    double worst = 0;
    for (std::size_t i = 0; i < std::min(cpu.size(), gpu.size()); ++i)
        worst = std::max(worst, std::abs(double(gpu[i]) - cpu[i]) / std::max(std::abs(double(cpu[i])), 1e-30));
    MESSAGE("Iris CPU/CUDA max relative difference over ", cpu.size(), " recorded losses: ", worst);  // scripts/gpu-check.sh reads this line
}
