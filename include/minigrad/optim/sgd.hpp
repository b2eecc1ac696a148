// SGD as torch.optim.SGD: learning rate, momentum (with dampening, Nesterov) and weight decay.
// On the multi-tensor base of Adam and RMSprop (optim/multi_tensor.hpp): one launch updates up to
// eight parameters, so a step costs one or two launches, not one per tensor, and the learning rate
// is a double in backend memory. save_state/load_state keep its state in a safetensors file, so
// training resumes exactly.
#pragma once

#include <charconv>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "multi_tensor.hpp"

namespace minigrad::kernels {

// The per-element rule of SGD for kernels::LaneUpdate, as torch.optim.SGD: g = grad + wd*p;
// buf = first ? g : mu*buf + (1-dampening)*g; p -= lr * (nesterov ? g + mu*buf : buf) (buf = g
// without momentum). p, g and the momentum buffer (buf[0], unused without momentum) are (n), j
// over n. The first step is the parameter's first update (its step count is 1).
template <class T>
struct SgdRule {
    const double* hyper;  // (2) {lr, momentum}, read when the update runs
    T dampening, weight_decay;
    bool nesterov, with_momentum;  // with_momentum: the buffers exist (momentum > 0 when made)
    struct Factors {
        T neg_rate, momentum;
        bool first;
    };
    MINIGRAD_HD Factors factors(std::int64_t step) const {
        return {static_cast<T>(-static_cast<T>(hyper[0])), static_cast<T>(hyper[1]), step == 1};
    }
    // Element j (V = Scalar<T>) or elements j..j+3 (V = Lanes4); see kernels::Scalar.
    template <class V>
    MINIGRAD_HD_INLINE void update(const Factors& f, index_t j, T* p, const T* grad, T* const* buf) const {
        using v = typename V::type;
        const v param = V::load(p + j);
        v g = V::load(grad + j) + weight_decay * param;
        if (with_momentum) {
            const v b = f.first ? g : V::load(buf[0] + j) * f.momentum + (T(1) - dampening) * g;
            V::store(buf[0] + j, b);
            g = nesterov ? g + f.momentum * b : b;
        }
        V::store(p + j, param + f.neg_rate * g);
    }
};

// The functors SGD launches, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using SgdFunctors = Functors<LaneUpdate<T, SgdRule<T>>>;

}  // namespace minigrad::kernels

namespace minigrad::optim {

struct SgdOptions {
    double lr = 0.01;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;
};

template <class B, class T>
class SGD : public detail::MultiTensorOptimizer<B, T> {
    using Base = detail::MultiTensorOptimizer<B, T>;

  public:
    SGD(std::initializer_list<Tensor<B, T>> params, SgdOptions options)
        : SGD(std::vector<Tensor<B, T>>(params), options) {}
    // Parameter groups with their own lr and weight_decay (ParamGroup, multi_tensor.hpp); the
    // options give the rest, and the lr and weight_decay of groups that do not give theirs.
    SGD(std::vector<ParamGroup<B, T>> groups, SgdOptions options)
        : Base((check_options(options, "SGD"), "SGD"), std::move(groups), options.lr, options.weight_decay, buffer_names(options), false,
               options.momentum),
          options_(options) {}
    SGD(std::vector<Tensor<B, T>> params, SgdOptions options) : SGD(detail::one_group(std::move(params)), options) {}

    const SgdOptions& options() const { return options_; }
    // A rate is refused unless finite, >= 0 and finite as T; a refused value changes nothing. The
    // update reads the rate from backend memory when it runs, so a change also reaches the replays
    // of a step captured earlier (StepGraph), as a learning-rate schedule needs. Not during a
    // capture. options().lr follows the first group's rate, as set_lr and the schedulers move it.
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

    // Updates every parameter that requires grad and received a gradient since zero_grad(), as
    // PyTorch skips those whose .grad is None (detail::is_stepped): one launch per eight
    // parameters.
    void step() {
        this->apply([&](const double* hyper, double weight_decay) {
            const auto& o = options_;
            return kernels::SgdRule<T>{hyper, static_cast<T>(o.dampening), static_cast<T>(weight_decay), o.nesterov, with_momentum_};
        });
    }

    // Writes the optimizer's state as PyTorch's SGD state_dict names it: a tensor
    // "state.<i>.momentum_buffer" for each parameter i (by position) whose buffer exists yet, and
    // in the metadata the hyper-parameters ("lr", "momentum", "dampening", "weight_decay",
    // "nesterov"; fmt's "{}" prints a double's shortest text that reads back to the same bits) and
    // "param_shapes", the JSON list of every parameter's shape, which load_state checks. Atomic, as
    // every save (host reads).
    void save_state(const std::filesystem::path& path) const {
        const auto& o = options_;
        this->save(path, {{"lr", minigrad::detail::format("{}", o.lr)},
                          {"momentum", minigrad::detail::format("{}", o.momentum)},
                          {"dampening", minigrad::detail::format("{}", o.dampening)},
                          {"weight_decay", minigrad::detail::format("{}", o.weight_decay)},
                          {"nesterov", o.nesterov ? "true" : "false"}});
    }

    // Restores what save_state wrote: the momentum buffers (and which exist) and the
    // hyper-parameters, lr included, as PyTorch's load_state_dict does; it accepts exactly the
    // settings the constructor accepts (each a finite number, then check_options). The parameters'
    // count and shapes must match this optimizer's. Checks the whole file before changing anything.
    void load_state(const std::filesystem::path& path) {
        const detail::StateFile state(path, "SGD");
        SgdOptions options{state.number("lr"), state.number("momentum"), state.number("dampening"), state.number("weight_decay"),
                           state.flag("nesterov")};
        check_options(options, state.who);
        if (options.momentum == 0 && !state.file.tensors.empty()) state.fail("stores momentum buffers but its momentum is 0");
        this->restore(state, buffer_names(options), options.lr, options.weight_decay);
        this->put_momentum_everywhere(options.momentum);
        options_ = options;
        with_momentum_ = options.momentum != 0;
    }

  protected:
    void check_momentum(const std::string& what, double momentum) const override {
        this->check_buffered_momentum(what, momentum, with_momentum_);
    }

  private:
    static std::vector<std::string> buffer_names(const SgdOptions& options) {
        return options.momentum != 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{};
    }
    // The settings every entry point refuses alike: the constructor, load_state.
    static void check_options(const SgdOptions& options, const std::string& who) {
        detail::check_at_least<T>(who, "lr", options.lr, 0.0);
        detail::check_at_least<T>(who, "momentum", options.momentum, 0.0);
        detail::check_at_least<T>(who, "dampening", options.dampening, -std::numeric_limits<double>::infinity());
        detail::check_at_least<T>(who, "weight_decay", options.weight_decay, 0.0);
        if (options.nesterov && (options.momentum <= 0 || options.dampening != 0)) {
            minigrad::detail::fail<ValueError>("{}: nesterov needs momentum > 0 and dampening = 0 (got momentum={}, dampening={})", who,
                                               options.momentum, options.dampening);
        }
    }

    SgdOptions options_;
    bool with_momentum_ = options_.momentum != 0;
};

}  // namespace minigrad::optim
