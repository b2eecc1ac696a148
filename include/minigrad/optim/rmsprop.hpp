// RMSprop as torch.optim.RMSprop (torch 1.13): square_avg, and where asked a momentum_buffer
// (momentum > 0) and a grad_avg (centered). One launch per step updates up to eight parameters;
// the learning rate and step count live in backend memory (optim/multi_tensor.hpp).
#pragma once

#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include "multi_tensor.hpp"

namespace minigrad::kernels {

// The per-element rule of RMSprop for kernels::LaneUpdate; p, g and the buffers are (n), j over n.
// buf[0] is square_avg, then momentum_buffer if momentum > 0, then grad_avg if centered.
template <class T>
struct RmspropRule {
    const double* hyper;  // (2) {lr, momentum}, read when the update runs
    T alpha, one_minus_alpha, eps, weight_decay;
    bool with_momentum, centered;  // with_momentum: the momentum buffers exist (momentum > 0 when made)
    struct Factors {
        T neg_lr, momentum;
    };
    MINIGRAD_HD Factors factors(std::int64_t) const { return {static_cast<T>(-hyper[0]), static_cast<T>(hyper[1])}; }
    // Element j (V = Scalar<T>) or elements j..j+3 (V = Lanes4); see kernels::Scalar.
    template <class V>
    MINIGRAD_HD_INLINE void update(const Factors& f, index_t j, T* p, const T* grad, T* const* buf) const {
        using v = typename V::type;
        v param = V::load(p + j);
        const v g = V::load(grad + j) + weight_decay * param;
        const v square_avg = V::load(buf[0] + j) * alpha + one_minus_alpha * g * g;
        V::store(buf[0] + j, square_avg);
        v avg;
        if (centered) {
            T* grad_avg_at = buf[with_momentum ? 2 : 1] + j;
            const v grad_avg = V::load(grad_avg_at) * alpha + one_minus_alpha * g;
            V::store(grad_avg_at, grad_avg);
            avg = V::sqrt(square_avg - grad_avg * grad_avg);
        } else {
            avg = V::sqrt(square_avg);
        }
        avg = avg + eps;
        if (with_momentum) {
            const v momentum_buffer = V::load(buf[1] + j) * f.momentum + g / avg;
            V::store(buf[1] + j, momentum_buffer);
            V::store(p + j, param + f.neg_lr * momentum_buffer);
        } else {
            V::store(p + j, param + f.neg_lr * g / avg);
        }
    }
};

// The functors RMSprop launches, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using RmspropFunctors = Functors<LaneUpdate<T, RmspropRule<T>>>;

}  // namespace minigrad::kernels

namespace minigrad::optim {

struct RmspropOptions {
    double lr = 1e-2;
    double alpha = 0.99;
    double eps = 1e-8;
    double weight_decay = 0.0;
    double momentum = 0.0;
    bool centered = false;
};

template <class B, class T>
class RMSprop : public detail::MultiTensorOptimizer<B, T> {
    using Base = detail::MultiTensorOptimizer<B, T>;

  public:
    // Parameter groups with their own lr and weight_decay (ParamGroup, multi_tensor.hpp); the
    // options give the rest, and the lr and weight_decay of groups that do not give theirs.
    RMSprop(std::vector<ParamGroup<B, T>> groups, RmspropOptions options = {})
        : Base((check_options(options, "RMSprop"), "RMSprop"), std::move(groups), options.lr, options.weight_decay, buffer_names(options),
               true, options.momentum),
          options_(options) {}
    RMSprop(std::vector<Tensor<B, T>> params, RmspropOptions options = {}) : RMSprop(detail::one_group(std::move(params)), options) {}
    RMSprop(std::initializer_list<Tensor<B, T>> params, RmspropOptions options = {})
        : RMSprop(std::vector<Tensor<B, T>>(params), options) {}

    const RmspropOptions& options() const { return options_; }
    // options().lr follows the first group's rate, as set_lr and the schedulers move it
    void set_group_lr(std::size_t group, double lr) override {
        Base::set_group_lr(group, lr);
        if (group == 0) options_.lr = lr;
    }
    // The momentum, which OneCycleLR cycles: only where it was > 0 when the optimizer was made (or
    // loaded), which is when its buffers are made. options().momentum follows the first group's.
    const char* momentum_name() const override { return "momentum"; }
    void set_group_momentum(std::size_t group, double momentum) override {
        Base::set_group_momentum(group, momentum);
        if (group == 0) options_.momentum = momentum;
    }

    void step() {
        this->apply([&](const double* hyper, double weight_decay) {
            const auto& o = options_;
            return kernels::RmspropRule<T>{hyper,
                                           static_cast<T>(o.alpha),
                                           static_cast<T>(1 - o.alpha),
                                           static_cast<T>(o.eps),
                                           static_cast<T>(weight_decay),
                                           with_momentum_,
                                           o.centered};
        });
    }

    // The buffers and step count of every parameter stepped so far ("state.<i>.square_avg", and
    // "momentum_buffer", "grad_avg" where used, "state.<i>.step") and the hyper-parameters in the
    // metadata.
    void save_state(const std::filesystem::path& path) const {
        const auto& o = options_;
        this->save(path, {{"lr", minigrad::detail::format("{}", o.lr)},
                          {"alpha", minigrad::detail::format("{}", o.alpha)},
                          {"eps", minigrad::detail::format("{}", o.eps)},
                          {"weight_decay", minigrad::detail::format("{}", o.weight_decay)},
                          {"momentum", minigrad::detail::format("{}", o.momentum)},
                          {"centered", o.centered ? "true" : "false"}});
    }
    // Restores what save_state wrote, hyper-parameters included; checks the whole file first and
    // changes nothing if it is refused.
    void load_state(const std::filesystem::path& path) {
        const detail::StateFile file(path, "RMSprop");
        const RmspropOptions options{file.number("lr"),           file.number("alpha"),    file.number("eps"),
                                     file.number("weight_decay"), file.number("momentum"), file.flag("centered")};
        check_options(options, file.who);
        this->restore(file, buffer_names(options), options.lr, options.weight_decay);
        this->put_momentum_everywhere(options.momentum);
        options_ = options;
        with_momentum_ = options.momentum > 0;
    }

  protected:
    void check_momentum(const std::string& what, double momentum) const override {
        this->check_buffered_momentum(what, momentum, with_momentum_);
    }

  private:
    static std::vector<std::string> buffer_names(const RmspropOptions& options) {
        std::vector<std::string> names{"square_avg"};
        if (options.momentum > 0) names.push_back("momentum_buffer");
        if (options.centered) names.push_back("grad_avg");
        return names;
    }
    static void check_options(const RmspropOptions& options, const std::string& who) {
        detail::check_at_least<T>(who, "lr", options.lr, 0.0);
        detail::check_fraction<T>(who, "alpha", options.alpha);
        detail::check_positive<T>(who, "eps", options.eps);
        detail::check_at_least<T>(who, "weight_decay", options.weight_decay, 0.0);
        detail::check_at_least<T>(who, "momentum", options.momentum, 0.0);
    }

    RmspropOptions options_;
    bool with_momentum_ = options_.momentum > 0;
};

}  // namespace minigrad::optim
