// minigrad's side of the sequence-model benchmark (bench/run_seq.sh runs it beside
// bench/torch_seq.py): scaled_dot_product_attention forward and backward on fixed random
// (batch, heads, T, D) inputs, causal (--what sdpa), or one LSTM layer over N=32, T=64, 128 -> 256
// forward and backward (--what lstm), or one training step of examples/charlm's GPT at batch 64
// (--what gpt: forward, backward, gradient clipping, AdamW), timed call by call after warm-up. Prints the median
// us/call, the storage allocations per call after the first ones, and the process's peak resident
// memory (getrusage), which the script compares across T.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <minigrad/minigrad.hpp>

#include "../examples/common/charlm_model.hpp"
#include "../examples/common/guarded_main.hpp"

namespace mg = minigrad;

// Runs call twice (filling the caches), then `steps` times, each timed to the device's end: the
// sorted times (us) and the counters before and after the timed calls.
template <class B, class F>
std::tuple<std::vector<double>, mg::Counters, mg::Counters> time_calls(F& call, int steps) {
    for (int i = 0; i < 2; ++i) call();
    B::synchronize(0);
    const auto before = mg::counters();
    std::vector<double> us;
    for (int i = 0; i < steps; ++i) {
        const auto start = std::chrono::steady_clock::now();
        call();
        B::synchronize(0);
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    }
    const auto after = mg::counters();
    std::sort(us.begin(), us.end());
    return {us, before, after};
}

template <class B>
int sdpa(std::int64_t batch, std::int64_t heads, std::int64_t T, std::int64_t D, int steps, int threads) {
    mg::Generator gen(7);
    const mg::Shape shape{batch, heads, T, D};
    auto q = mg::Tensor<mg::Cpu>::uniform(shape, -1, 1, gen).template to<B>().requires_grad_();
    auto k = mg::Tensor<mg::Cpu>::uniform(shape, -1, 1, gen).template to<B>().requires_grad_();
    auto v = mg::Tensor<mg::Cpu>::uniform(shape, -1, 1, gen).template to<B>().requires_grad_();
    const auto dy = mg::Tensor<mg::Cpu>::uniform(shape, -1, 1, gen).template to<B>();
    const mg::AttentionOptions<B, float> causal{.is_causal = true};
    auto call = [&] {
        q.zero_grad();
        k.zero_grad();
        v.zero_grad();
        auto y = mg::scaled_dot_product_attention(q, k, v, causal);
        mg::sum(y * dy).backward();
    };
    const auto [us, before, after] = time_calls<B>(call, steps);
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    fmt::print("minigrad sdpa {} B={} H={} T={} D={} causal ({} thread{}): median {:.1f} us/call, min {:.1f}; storage allocations per call after "
               "the first 2: {}; peak rss {:.1f} MB\n",
               B::name, batch, heads, T, D, threads, threads == 1 ? "" : "s", us[us.size() / 2], us.front(),
               static_cast<double>(after.storage_allocs - before.storage_allocs) / steps, static_cast<double>(usage.ru_maxrss) / 1024.0);
    return 0;
}

// One LSTM layer over (T, N, in) input, forward and backward (the output weighed by a fixed dy).
template <class B>
int lstm(std::int64_t batch, std::int64_t T, std::int64_t in, std::int64_t hidden, int steps, int threads) {
    mg::manual_seed(7);
    mg::nn::LSTM<B> layer(in, hidden);
    mg::Generator gen(7);
    auto x = mg::Tensor<mg::Cpu>::uniform({T, batch, in}, -1, 1, gen).template to<B>().requires_grad_();
    const auto dy = mg::Tensor<mg::Cpu>::uniform({T, batch, hidden}, -1, 1, gen).template to<B>();
    auto call = [&] {
        x.zero_grad();
        layer.zero_grad();
        mg::sum(layer(x).output * dy).backward();
    };
    const auto [us, before, after] = time_calls<B>(call, steps);
    fmt::print("minigrad lstm {} N={} T={} {}->{} ({} thread{}): median {:.1f} us/call, min {:.1f}; storage allocations per call after the first 2: "
               "{}; launches per call: {}\n",
               B::name, batch, T, in, hidden, threads, threads == 1 ? "" : "s", us[us.size() / 2], us.front(),
               static_cast<double>(after.storage_allocs - before.storage_allocs) / steps,
               static_cast<double>(after.kernel_launches - before.kernel_launches) / steps);
    return 0;
}

// One training step of examples/charlm's GPT (batch 64, context 16) on a fixed random batch.
template <class B>
int gpt(std::int64_t batch, int steps, int threads) {
    mg::manual_seed(7);
    examples::charlm::Gpt<B> model;
    mg::optim::AdamW opt(model.param_groups(0.1), {.lr = 1e-3, .weight_decay = 0.1});
    const auto params = model.parameters();
    const auto block = model.config.block_size, vocab = model.config.vocab_size;
    std::vector<std::int32_t> xs(static_cast<std::size_t>(batch * block)), ys(xs.size());
    mg::Generator gen(7);
    for (auto& v : xs) v = static_cast<std::int32_t>(gen.uniform(0, static_cast<double>(vocab)));
    for (auto& v : ys) v = static_cast<std::int32_t>(gen.uniform(0, static_cast<double>(vocab)));
    const auto x = mg::Tensor<B, std::int32_t>::from(xs, {batch, block}), y = mg::Tensor<B, std::int32_t>::from(ys, {batch, block});
    auto call = [&] {
        auto loss = model.loss(x, y);
        opt.zero_grad();
        loss.backward();
        mg::optim::clip_grad_norm_(params, 1.0);
        opt.step();
    };
    const auto [us, before, after] = time_calls<B>(call, steps);
    fmt::print("minigrad gpt step {} batch {} T={} ({} thread{}): median {:.1f} us/call, min {:.1f}; storage allocations per call after the first "
               "2: {}; launches per call: {}\n",
               B::name, batch, block, threads, threads == 1 ? "" : "s", us[us.size() / 2], us.front(),
               static_cast<double>(after.storage_allocs - before.storage_allocs) / steps,
               static_cast<double>(after.kernel_launches - before.kernel_launches) / steps);
    return 0;
}

int main(int argc, char** argv) {
    std::string device = "cpu", what = "sdpa";
    std::int64_t batch = 8, heads = 4, T = 256, D = 32;
    int steps = 20, threads = 1;
    std::int64_t block_rows = 0;
    CLI::App app{"minigrad's sequence-model benchmark: scaled_dot_product_attention forward and backward"};
    app.add_option("--device", device)->check(CLI::IsMember({"cpu", "cuda"}));
    app.add_option("--what", what, "sdpa: attention at --batch --heads --T --D; lstm: one LSTM layer, N=32 T=64 128->256; gpt: charlm's training step at batch 64")
        ->check(CLI::IsMember({"sdpa", "lstm", "gpt"}));
    app.add_option("--batch", batch)->check(CLI::Range(1, 4096));
    app.add_option("--heads", heads)->check(CLI::Range(1, 4096));
    app.add_option("--T", T)->check(CLI::Range(1, 1 << 20));
    app.add_option("--D", D)->check(CLI::Range(1, 4096));
    app.add_option("--steps", steps, "timed calls")->check(CLI::Range(1, 1000000));
    app.add_option("--threads", threads, "CPU threads (mg::set_num_threads)")->check(CLI::Range(1, 1024));
    app.add_option("--block-rows", block_rows, "rows per block of queries; 0 chooses by shape (ops/attention.hpp)")->check(CLI::Range(0, 1 << 30));
    CLI11_PARSE(app, argc, argv);
    return examples::guarded_main([&] {
        mg::set_num_threads(threads);
        mg::detail::attention_block_rows() = block_rows;
#if defined(MINIGRAD_HAS_CUDA)
        if (device == "cuda") {
            if (what == "gpt") return gpt<mg::Cuda>(64, steps, threads);
            return what == "lstm" ? lstm<mg::Cuda>(32, 64, 128, 256, steps, threads) : sdpa<mg::Cuda>(batch, heads, T, D, steps, threads);
        }
#else
        if (device == "cuda") {
            fmt::print(stderr, "error: this build has no CUDA backend\n");
            return 2;
        }
#endif
        if (what == "gpt") return gpt<mg::Cpu>(64, steps, threads);
        return what == "lstm" ? lstm<mg::Cpu>(32, 64, 128, 256, steps, threads) : sdpa<mg::Cpu>(batch, heads, T, D, steps, threads);
    });
}
