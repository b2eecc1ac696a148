// A character-level GPT trained on a word list (Debian's wamerican, /usr/share/dict/words), then
// asked for new words: makemore's task with nanoGPT's model (examples/common/charlm_model.hpp: token
// and position embeddings, 4 pre-norm blocks of causal self-attention and a GELU MLP, n_embd 128,
// 4 heads, context 16). AdamW with two parameter groups (weight decay on the matrices only), a
// linear warmup then a cosine decay (LambdaLR), gradients clipped to norm 1.
//
// Outputs in --out: loss.csv and loss.svg (the training loss, the mean of each interval's steps, and
// the validation loss, every --eval-every steps), steps.csv (every step's training loss) and
// model.safetensors (PyTorch's state_dict names: bench/torch_charlm.py loads it). Then it samples
// --samples words and says which are new (in neither set).
//
// Host reads: the training losses are kept on the backend (a LossLog) and read once per interval,
// with the validation loss. bench/torch_charlm.py trains the same recipe in PyTorch, on the same
// split and batches; given --init, both start from the same weights.
//
// This file is compiled by g++ (Cpu only) or, when CMake finds CUDA, by nvcc (Cpu and Cuda).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numbers>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <minigrad/minigrad.hpp>

#include "../common/charlm_data.hpp"
#include "../common/charlm_model.hpp"
#include "../common/device.hpp"
#include "../common/flags.hpp"
#include "../common/guarded_main.hpp"
#include "../common/output.hpp"
#include "../common/svg_plot.hpp"
#include "../common/text_file.hpp"

namespace mg = minigrad;
namespace lm = examples::charlm;

namespace {

struct Options {
    std::string device = "cpu";
    std::string data = "/usr/share/dict/words";
    std::string out = "out";
    std::string init;  // safetensors of the initial weights; empty: minigrad's own init from --seed
    int steps = 3000;
    int batch_size = 64;
    double lr = 2e-3;  // the peak rate, after the warmup
    double weight_decay = 0.1;
    int warmup = 100;
    double min_lr_ratio = 0.1;  // the cosine ends at lr * min_lr_ratio
    int eval_every = 250;
    std::uint32_t seed = 42;        // the weights and the batches
    std::uint32_t split_seed = 42;  // the train/validation split
    int samples = 20;
    double temperature = 1.0;
};

// The rate's factor at a step (LambdaLR): a linear warmup from 1/warmup to 1, then half a cosine
// down to min_ratio at the last step. bench/torch_charlm.py uses the same function.
double schedule(std::int64_t step, const Options& o) {
    if (step < o.warmup) return static_cast<double>(step + 1) / o.warmup;
    const double span = std::max(1, o.steps - o.warmup);
    const double t = std::min(1.0, static_cast<double>(step - o.warmup) / span);
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + std::cos(std::numbers::pi * t));
}

// The mean loss over the validation windows, in batches of up to 512 windows: one host read.
template <class B>
double validation_loss(lm::Gpt<B>& model, const lm::Windows& val, std::int64_t block) {
    mg::NoGradGuard no_grad;
    model.eval();
    mg::Tensor<B> total = mg::Tensor<B>::zeros({1});
    const std::int64_t chunk = 512;
    for (std::int64_t at = 0; at < val.count; at += chunk) {
        const auto n = std::min(chunk, val.count - at);
        const auto offset = static_cast<std::ptrdiff_t>(at * block);
        const std::vector<std::int32_t> xs(val.x.begin() + offset, val.x.begin() + offset + n * block);
        const std::vector<std::int32_t> ys(val.y.begin() + offset, val.y.begin() + offset + n * block);
        const auto x = mg::Tensor<B, std::int32_t>::from(xs, {n, block}), y = mg::Tensor<B, std::int32_t>::from(ys, {n, block});
        total = total + model.loss(x, y) * static_cast<float>(n);
    }
    model.train();
    return static_cast<double>(total.item()) / static_cast<double>(val.count);
}

// One word, drawn a character at a time from the model's distribution (temperature-scaled) until
// it predicts the end of the word, from the context '.' (the start of a word).
template <class B>
std::string sample_word(lm::Gpt<B>& model, mg::Generator& gen, double temperature) {
    mg::NoGradGuard no_grad;
    std::vector<std::int32_t> context{0};
    std::string word;
    while (word.size() < 40) {
        const auto t = static_cast<std::int64_t>(std::min<std::size_t>(context.size(), static_cast<std::size_t>(model.config.block_size)));
        const std::vector<std::int32_t> window(context.end() - t, context.end());
        const auto logits = model(mg::Tensor<B, std::int32_t>::from(window, {1, t}));
        const auto last = mg::narrow(logits, 1, t - 1, 1).reshape({model.config.vocab_size});
        const auto next = mg::multinomial(mg::softmax(last / static_cast<float>(temperature), 0), 1, false, gen).item();
        if (next == 0) break;
        word += lm::token_char(next);
        context.push_back(static_cast<std::int32_t>(next));
    }
    return word;
}

template <class B>
int train(const Options& o, const lm::Words& words) {
    mg::manual_seed(o.seed);
    const lm::GptConfig config;
    auto model = o.init.empty() ? lm::Gpt<B>(config) : mg::nn::skip_init<lm::Gpt<B>>(config);
    if (!o.init.empty()) model.load(o.init);
    std::int64_t n_params = 0;
    for (auto& p : model.parameters()) n_params += p.numel();

    mg::optim::AdamW opt(model.param_groups(o.weight_decay), {.lr = o.lr, .weight_decay = o.weight_decay});
    mg::optim::lr_scheduler::LambdaLR scheduler(opt, [&o](std::int64_t step) { return schedule(step, o); });
    const auto params = model.parameters();

    const auto train_stream = lm::encode(words.train), val_stream = lm::encode(words.val);
    const auto block = config.block_size;
    const auto val = lm::windows(val_stream, block);
    lm::Batches batches(train_stream, block, o.seed);
    auto x = mg::Tensor<B, std::int32_t>::empty({o.batch_size, block}), y = mg::Tensor<B, std::int32_t>::empty({o.batch_size, block});
    std::vector<std::int32_t> x_host, y_host;

    fmt::print("Training a character-level GPT on {} ({}): {} parameters; {} training words ({} tokens), {} validation words ({} windows of {})\n",
               B::name, B::is_host ? "host" : "device", n_params, words.train.size(), train_stream.size(), words.val.size(), val.count, block);
    fmt::print("AdamW lr {} (warmup {} steps, cosine to {}), weight decay {} on the matrices, batch {}, {} steps\n", o.lr, o.warmup,
               o.lr * o.min_lr_ratio, o.weight_decay, o.batch_size, o.steps);

    mg::LossLog log(o.steps);
    std::vector<double> at_step, train_curve, val_curve;
    std::size_t read = 0;
    double seconds = 0;
    auto start = std::chrono::steady_clock::now();
    model.train();
    for (int step = 1; step <= o.steps; ++step) {
        batches.fill(o.batch_size, x_host, y_host);
        B::upload(x.data(), x_host.data(), x_host.size() * sizeof(std::int32_t), x.device());
        B::upload(y.data(), y_host.data(), y_host.size() * sizeof(std::int32_t), y.device());
        auto loss = model.loss(x, y);
        opt.zero_grad();
        loss.backward();
        mg::optim::clip_grad_norm_(params, 1.0);
        opt.step();
        scheduler.step();
        log.record(loss);
        if (step % o.eval_every == 0 || step == o.steps) {
            const auto losses = log.values();  // the host read that waits for the interval's steps
            double sum = 0;
            for (std::size_t i = read; i < losses.size(); ++i) sum += losses[i];
            const double mean = sum / static_cast<double>(losses.size() - read);
            read = losses.size();
            seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (!std::isfinite(mean)) {
                fmt::print(stderr, "error: the training loss became {} by step {}; try a smaller --lr than {}\n", mean, step, o.lr);
                return 3;
            }
            const double v = validation_loss(model, val, block);
            at_step.push_back(step);
            train_curve.push_back(mean);
            val_curve.push_back(v);
            fmt::print("step {:>5}  train loss {:.4f}  val loss {:.4f}  lr {:.2e}  {:.1f} ms/step\n", step, mean, v, opt.group_lr(0),
                       seconds * 1e3 / step);
            std::fflush(stdout);  // progress shows as it comes, also when stdout is a file
            start = std::chrono::steady_clock::now();
        }
    }
    fmt::print("Training time: {:.2f} s ({:.1f} ms/step, validation not counted)\n", seconds, seconds * 1e3 / o.steps);
    fmt::print("Final validation loss: {:.6f}\n", val_curve.back());

    mg::Generator gen(o.seed);
    model.eval();
    const std::set<std::string> known(words.train.begin(), words.train.end()), known_val(words.val.begin(), words.val.end());
    fmt::print("{} sampled words (temperature {}):\n", o.samples, o.temperature);
    int fresh = 0;
    for (int i = 0; i < o.samples; ++i) {
        const auto w = sample_word(model, gen, o.temperature);
        const char* where = known.count(w) ? "in the training set" : known_val.count(w) ? "a validation word" : "new";
        fresh += *where == 'n';
        fmt::print("  {:<20} {}\n", w, where);
    }
    fmt::print("{} of {} samples are in neither set\n", fresh, o.samples);

    std::fflush(stdout);
    const std::filesystem::path dir(o.out);
    std::string csv = "step,train_loss,val_loss\n";
    for (std::size_t i = 0; i < at_step.size(); ++i) csv += fmt::format("{},{:.9g},{:.9g}\n", at_step[i], train_curve[i], val_curve[i]);
    examples::write_text_file((dir / "loss.csv").string(), csv);
    std::string steps_csv = "step,loss\n";
    const auto losses = log.values();
    for (std::size_t i = 0; i < losses.size(); ++i) steps_csv += fmt::format("{},{:.9g}\n", i + 1, losses[i]);
    examples::write_text_file((dir / "steps.csv").string(), steps_csv);
    examples::write_svg((dir / "loss.svg").string(),
                        {fmt::format("Character-level GPT on {} words ({}, AdamW lr {}, batch {})", words.train.size(), B::name, o.lr, o.batch_size),
                         "Step", "Cross-entropy loss (nats per character)", at_step, train_curve, "training",
                         {{"validation", at_step, val_curve}}});
    model.save(dir / "model.safetensors");
    fmt::print("Wrote {0}/loss.csv, {0}/loss.svg, {0}/steps.csv and {0}/model.safetensors\n", o.out);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return examples::guarded_main([&] {
        Options o;
        CLI::App app{"Train a character-level GPT on a word list, then sample new words"};
        app.failure_message([](const CLI::App*, const CLI::Error& e) { return fmt::format("error: {}\nRun with --help for more information.\n", e.what()); });
        app.add_option("--device", o.device, "cpu, cuda, or auto (cuda when a GPU is usable, else cpu)")
            ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
            ->capture_default_str();
        app.add_option("--data", o.data, "the word list, one word per line")->capture_default_str();
        app.add_option("--out", o.out, "folder for loss.csv, loss.svg, steps.csv and model.safetensors")->capture_default_str();
        app.add_option("--init", o.init, "start from these weights (safetensors with PyTorch's names, e.g. from bench/torch_charlm.py)");
        app.add_option("--steps", o.steps, "training steps")->check(examples::whole_number(1, 10'000'000))->capture_default_str();
        app.add_option("--batch-size", o.batch_size, "windows per batch")->check(examples::whole_number(1, 1'000'000))->capture_default_str();
        app.add_option("--lr", o.lr, "AdamW's peak learning rate")
            ->check(CLI::Validator([](std::string& text) { return examples::check_lr(text); }, "POSITIVE FLOAT"))
            ->capture_default_str();
        app.add_option("--weight-decay", o.weight_decay, "AdamW's weight decay on the matrices")->check(CLI::Range(0.0, 1e3))->capture_default_str();
        app.add_option("--warmup", o.warmup, "steps of linear warmup")->check(examples::whole_number(1, 10'000'000))->capture_default_str();
        app.add_option("--eval-every", o.eval_every, "steps between validation losses (and progress lines)")
            ->check(examples::whole_number(1, 10'000'000))
            ->capture_default_str();
        app.add_option("--seed", o.seed, "seed of the weights, the batches and the samples")->capture_default_str();
        app.add_option("--split-seed", o.split_seed, "seed of the train/validation split")->capture_default_str();
        app.add_option("--samples", o.samples, "words to sample at the end")->check(examples::whole_number(0, 100'000))->capture_default_str();
        app.add_option("--temperature", o.temperature, "the sampling temperature")->check(CLI::Range(1e-3, 1e3))->capture_default_str();
        try {
            app.parse(argc, argv);
        } catch (const CLI::ParseError& e) {
            return app.exit(e, std::cout, std::cerr);
        }
        if (o.out.empty()) {
            fmt::print(stderr, "error: --out is empty: name a folder for the outputs\n");
            return 2;
        }
        examples::prepare_out_dir(o.out);
        const auto words = lm::read_words(o.data, o.split_seed);
        return examples::run_on_device(o.device, [&]<class B>() { return train<B>(o, words); });
    });
}
