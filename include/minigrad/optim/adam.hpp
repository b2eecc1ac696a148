// Adam and AdamW as torch.optim.Adam / torch.optim.AdamW (torch 1.13, amsgrad off): the moments
// exp_avg and exp_avg_sq, bias correction computed in double from the step count as PyTorch
// computes it in Python, L2 weight decay added to the gradient (Adam) or decoupled, applied to the
// parameter before the update (AdamW). One launch per step updates up to eight parameters; the
// step count and the learning rate live in backend memory (optim/multi_tensor.hpp), so a captured
// StepGraph stays right on every replay and follows set_lr.
#pragma once

#include <array>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <vector>

#include "multi_tensor.hpp"

namespace minigrad::kernels {

// The per-element rule of Adam/AdamW for kernels::LaneUpdate; p, g, exp_avg (buf[0]) and
// exp_avg_sq (buf[1]) are (n), j over n. The factors are torch's Python-side doubles:
// step_size = lr / (1 - beta1^t), bias_correction2_sqrt = sqrt(1 - beta2^t), and AdamW's
// decay = 1 - lr * weight_decay. beta1 is read with the rate, as PyTorch reads the group's betas
// at every step (OneCycleLR cycles it).
template <class T>
struct AdamRule {
    const double* hyper;  // (2) {lr, beta1}, read when the update runs
    double beta2, weight_decay;
    T beta2_t, one_minus_beta2, eps, l2;  // l2: Adam's weight decay, 0 for AdamW
    bool decoupled;
    struct Factors {
        T neg_step_size, bias_correction2_sqrt, decay, beta1, one_minus_beta1;
    };
    MINIGRAD_HD Factors factors(std::int64_t step) const {
        const double t = static_cast<double>(step), lr = hyper[0], beta1 = hyper[1];
        const double bias_correction1 = 1 - std::pow(beta1, t);
        const double bias_correction2 = 1 - std::pow(beta2, t);
        return {static_cast<T>(-(lr / bias_correction1)), static_cast<T>(std::sqrt(bias_correction2)),
                static_cast<T>(decoupled ? 1 - lr * weight_decay : 1.0), static_cast<T>(beta1), static_cast<T>(1 - beta1)};
    }
    // Element j (V = Scalar<T>) or elements j..j+3 (V = Lanes4); see kernels::Scalar.
    template <class V>
    MINIGRAD_HD_INLINE void update(const Factors& f, index_t j, T* p, const T* grad, T* const* buf) const {
        using v = typename V::type;
        v g = V::load(grad + j);
        v param = V::load(p + j);
        if (decoupled) {
            param = param * f.decay;
        } else {
            g = g + l2 * param;
        }
        const v m = V::load(buf[0] + j) * f.beta1 + f.one_minus_beta1 * g;
        const v var = V::load(buf[1] + j) * beta2_t + one_minus_beta2 * g * g;
        V::store(buf[0] + j, m);
        V::store(buf[1] + j, var);
        const v denom = V::sqrt(var) / f.bias_correction2_sqrt + eps;
        V::store(p + j, param + f.neg_step_size * m / denom);
    }
};

// The functors Adam and AdamW launch, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using AdamFunctors = Functors<LaneUpdate<T, AdamRule<T>>>;

}  // namespace minigrad::kernels

namespace minigrad::optim {

struct AdamOptions {
    double lr = 1e-3;
    std::array<double, 2> betas = {0.9, 0.999};
    double eps = 1e-8;
    double weight_decay = 0.0;
};

struct AdamWOptions {
    double lr = 1e-3;
    std::array<double, 2> betas = {0.9, 0.999};
    double eps = 1e-8;
    double weight_decay = 0.01;
};

namespace detail {

// Adam (Decoupled = false) and AdamW (true): the same moments and factors, differing only in how
// weight decay enters.
template <class B, class T, class Options, bool Decoupled>
class AdamFamily : public MultiTensorOptimizer<B, T> {
    using Base = MultiTensorOptimizer<B, T>;

  public:
    static constexpr const char* optimizer_name = Decoupled ? "AdamW" : "Adam";

    AdamFamily(std::vector<ParamGroup<B, T>> groups, Options options)
        : Base((check_options(options, optimizer_name), optimizer_name), std::move(groups), options.lr, options.weight_decay,
               {"exp_avg", "exp_avg_sq"}, true, options.betas[0]),
          options_(options) {}

    const Options& options() const { return options_; }
    // options().lr follows the first group's rate, as set_lr and the schedulers move it
    void set_group_lr(std::size_t group, double lr) override {
        Base::set_group_lr(group, lr);
        if (group == 0) options_.lr = lr;
    }
    // betas[0], which OneCycleLR cycles; options().betas[0] follows the first group's
    const char* momentum_name() const override { return "beta1"; }
    void set_group_momentum(std::size_t group, double beta1) override {
        Base::set_group_momentum(group, beta1);
        if (group == 0) options_.betas[0] = beta1;
    }

    void step() {
        this->apply([&](const double* hyper, double weight_decay) {
            const auto& o = options_;
            return kernels::AdamRule<T>{hyper,
                                        o.betas[1],
                                        weight_decay,
                                        static_cast<T>(o.betas[1]),
                                        static_cast<T>(1 - o.betas[1]),
                                        static_cast<T>(o.eps),
                                        static_cast<T>(Decoupled ? 0.0 : weight_decay),
                                        Decoupled};
        });
    }

    // The moments and step count of every parameter stepped so far ("state.<i>.exp_avg",
    // "state.<i>.exp_avg_sq", "state.<i>.step") and the hyper-parameters "lr", "beta1", "beta2",
    // "eps", "weight_decay" in the metadata.
    void save_state(const std::filesystem::path& path) const {
        const auto& o = options_;
        this->save(path, {{"lr", minigrad::detail::format("{}", o.lr)},
                          {"beta1", minigrad::detail::format("{}", o.betas[0])},
                          {"beta2", minigrad::detail::format("{}", o.betas[1])},
                          {"eps", minigrad::detail::format("{}", o.eps)},
                          {"weight_decay", minigrad::detail::format("{}", o.weight_decay)}});
    }
    // Restores what save_state wrote, hyper-parameters included (as PyTorch's load_state_dict);
    // checks the whole file first and changes nothing if it is refused.
    void load_state(const std::filesystem::path& path) {
        const StateFile file(path, optimizer_name);
        Options options;
        options.lr = file.number("lr");
        options.betas = {file.number("beta1"), file.number("beta2")};
        options.eps = file.number("eps");
        options.weight_decay = file.number("weight_decay");
        check_options(options, file.who);
        this->restore(file, {"exp_avg", "exp_avg_sq"}, options.lr, options.weight_decay);
        this->put_momentum_everywhere(options.betas[0]);
        options_ = options;
    }

  protected:
    void check_momentum(const std::string& what, double beta1) const override { check_fraction<T>(optimizer_name, what, beta1); }

  private:
    static void check_options(const Options& options, const std::string& who) {
        check_at_least<T>(who, "lr", options.lr, 0.0);
        check_fraction<T>(who, "betas[0]", options.betas[0]);
        check_fraction<T>(who, "betas[1]", options.betas[1]);
        check_positive<T>(who, "eps", options.eps);
        check_at_least<T>(who, "weight_decay", options.weight_decay, 0.0);
    }

    Options options_;
};

}  // namespace detail

template <class B, class T>
class Adam : public detail::AdamFamily<B, T, AdamOptions, false> {
  public:
    // Parameter groups with their own lr and weight_decay (ParamGroup, multi_tensor.hpp); the
    // options give the rest, and the lr and weight_decay of groups that do not give theirs.
    Adam(std::vector<ParamGroup<B, T>> groups, AdamOptions options = {})
        : detail::AdamFamily<B, T, AdamOptions, false>(std::move(groups), options) {}
    Adam(std::vector<Tensor<B, T>> params, AdamOptions options = {}) : Adam(detail::one_group(std::move(params)), options) {}
    Adam(std::initializer_list<Tensor<B, T>> params, AdamOptions options = {}) : Adam(std::vector<Tensor<B, T>>(params), options) {}
};

template <class B, class T>
class AdamW : public detail::AdamFamily<B, T, AdamWOptions, true> {
  public:
    // Parameter groups with their own lr and weight_decay (ParamGroup, multi_tensor.hpp), as
    // nanoGPT's AdamW decays matrices but not biases and norms; the options give the rest.
    AdamW(std::vector<ParamGroup<B, T>> groups, AdamWOptions options = {})
        : detail::AdamFamily<B, T, AdamWOptions, true>(std::move(groups), options) {}
    AdamW(std::vector<Tensor<B, T>> params, AdamWOptions options = {}) : AdamW(detail::one_group(std::move(params)), options) {}
    AdamW(std::initializer_list<Tensor<B, T>> params, AdamWOptions options = {})
        : AdamW(std::vector<Tensor<B, T>>(params), options) {}
};

}  // namespace minigrad::optim
