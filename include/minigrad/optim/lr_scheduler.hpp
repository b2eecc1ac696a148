// Learning-rate schedules as torch.optim.lr_scheduler (torch 1.13): StepLR, CosineAnnealingLR,
// LambdaLR, LinearLR, OneCycleLR and ReduceLROnPlateau, driving any optimizer's parameter groups through its
// group_lr/set_group_lr. Each step() is host arithmetic plus one tiny upload (set_lr), so call it
// between StepGraph replays: the captured step reads the rate from backend memory and follows.
// As in PyTorch, the rate is computed from the optimizer's current one (the "chainable" form), so
// a set_lr by hand between steps carries on.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../scalar_checks.hpp"
#include "optimizer.hpp"

namespace minigrad::optim::lr_scheduler {

namespace detail {

// What every scheduler keeps: the optimizer, its groups' initial rates and the steps taken.
class SchedulerBase {
  public:
    double get_lr() const { return optimizer_.get_lr(); }
    // Each group's current rate, as PyTorch's get_last_lr().
    std::vector<double> get_last_lr() const {
        std::vector<double> rates;
        for (std::size_t g = 0; g < optimizer_.param_groups(); ++g) rates.push_back(optimizer_.group_lr(g));
        return rates;
    }
    std::int64_t last_epoch() const { return last_epoch_; }

  protected:
    explicit SchedulerBase(Optimizer& optimizer) : optimizer_(optimizer) {
        for (std::size_t g = 0; g < optimizer.param_groups(); ++g) base_lrs_.push_back(optimizer.group_lr(g));
    }
    // Sets each group's rate to rate(group, its current rate).
    template <class F>
    void set_each(F&& rate) {
        for (std::size_t g = 0; g < optimizer_.param_groups(); ++g) optimizer_.set_group_lr(g, rate(g, optimizer_.group_lr(g)));
    }
    Optimizer& optimizer_;
    std::vector<double> base_lrs_;  // each group's rate when the scheduler was made
    std::int64_t last_epoch_ = 0;
};

}  // namespace detail

// lr * gamma every step_size steps, in every group.
class StepLR : public detail::SchedulerBase {
  public:
    StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1) : SchedulerBase(optimizer), step_size_(step_size), gamma_(gamma) {
        if (step_size < 1) minigrad::detail::fail<ValueError>("StepLR: step_size={} must be >= 1", step_size);
        minigrad::detail::check_at_least<double>("StepLR", "gamma", gamma, 0.0);
    }
    void step() {
        ++last_epoch_;
        if (last_epoch_ % step_size_ == 0) set_each([&](std::size_t, double lr) { return lr * gamma_; });
    }

  private:
    std::int64_t step_size_;
    double gamma_;
};

// eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2 for each group, by PyTorch's
// recursive formula (which keeps going past T_max: the rate climbs back, period 2 T_max).
class CosineAnnealingLR : public detail::SchedulerBase {
  public:
    CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min = 0.0) : SchedulerBase(optimizer), t_max_(T_max), eta_min_(eta_min) {
        if (T_max < 1) minigrad::detail::fail<ValueError>("CosineAnnealingLR: T_max={} must be >= 1", T_max);
        minigrad::detail::check_at_least<double>("CosineAnnealingLR", "eta_min", eta_min, 0.0);
    }
    void step() {
        ++last_epoch_;
        const double pi = std::numbers::pi, t = static_cast<double>(last_epoch_), t_max = static_cast<double>(t_max_);
        // (last_epoch - 1 - T_max) a multiple of 2 T_max, without 2 * T_max (which overflows for a T_max past INT64_MAX / 2)
        const std::int64_t since_max = last_epoch_ - 1 - t_max_;
        const bool restart = since_max % t_max_ == 0 && (since_max / t_max_) % 2 == 0;
        set_each([&](std::size_t g, double lr) {
            if (restart) return lr + (base_lrs_[g] - eta_min_) * (1 - std::cos(pi / t_max)) / 2;
            return (1 + std::cos(pi * t / t_max)) / (1 + std::cos(pi * (t - 1) / t_max)) * (lr - eta_min_) + eta_min_;
        });
    }

  private:
    std::int64_t t_max_;
    double eta_min_;
};

// Each group's rate is its initial rate times lr_lambda(step), from step 0 (set when the scheduler
// is made, as PyTorch's): a warmup, a cosine, or both.
//   LambdaLR sched(opt, [](std::int64_t s) { return s < 100 ? (s + 1) / 100.0 : 0.5 * (1 + std::cos(...)); });
class LambdaLR : public detail::SchedulerBase {
  public:
    LambdaLR(Optimizer& optimizer, std::function<double(std::int64_t)> lr_lambda) : SchedulerBase(optimizer), lambda_(std::move(lr_lambda)) {
        if (!lambda_) minigrad::detail::fail<ValueError>("LambdaLR: lr_lambda is empty");
        apply();
    }
    void step() {
        ++last_epoch_;
        apply();
    }

  private:
    void apply() {
        const double factor = lambda_(last_epoch_);
        set_each([&](std::size_t g, double) { return base_lrs_[g] * factor; });
    }
    std::function<double(std::int64_t)> lambda_;
};

// A linear warmup (or decay) of each group's rate, as torch.optim.lr_scheduler.LinearLR: the
// factor goes from start_factor at step 0 to end_factor at step total_iters, then stays. PyTorch's
// chainable formula, so a rate set by hand between steps carries on.
class LinearLR : public detail::SchedulerBase {
  public:
    LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0, std::int64_t total_iters = 5)
        : SchedulerBase(optimizer), start_(start_factor), end_(end_factor), total_(total_iters) {
        if (!(start_factor > 0 && start_factor <= 1)) {
            minigrad::detail::fail<ValueError>("LinearLR: start_factor={} must be in (0, 1]", start_factor);
        }
        if (!(end_factor >= 0 && end_factor <= 1)) minigrad::detail::fail<ValueError>("LinearLR: end_factor={} must be in [0, 1]", end_factor);
        if (total_iters < 1) minigrad::detail::fail<ValueError>("LinearLR: total_iters={} must be >= 1", total_iters);
        set_each([&](std::size_t, double lr) { return lr * start_; });
    }
    void step() {
        ++last_epoch_;
        if (last_epoch_ > total_) return;
        const double ratio =
            1 + (end_ - start_) / (static_cast<double>(total_) * start_ + static_cast<double>(last_epoch_ - 1) * (end_ - start_));
        set_each([&](std::size_t, double lr) { return lr * ratio; });
    }

  private:
    double start_, end_;
    std::int64_t total_;
};

struct OneCycleLROptions {
    double pct_start = 0.3;                // the share of the steps spent rising to max_lr
    std::string anneal_strategy = "cos";   // "cos" or "linear"
    double div_factor = 25;                // the first rate is max_lr / div_factor
    double final_div_factor = 1e4;         // the last is that / final_div_factor
    bool three_phase = false;              // rise, fall back to the first rate, then anneal to the last
    // Moves the optimizer's momentum (Adam's beta1) against the rate, from max_momentum down to
    // base_momentum while the rate rises, and back (three_phase: then stays at max_momentum).
    bool cycle_momentum = true;
    double base_momentum = 0.85;
    double max_momentum = 0.95;
};

// The 1cycle policy, as torch.optim.lr_scheduler.OneCycleLR: each group's rate rises from
// max_lr / div_factor to max_lr over the first pct_start of total_steps, then anneals to
// max_lr / (div_factor * final_div_factor) by the last (three_phase: back down to the first rate,
// then to the last). The constructor sets the first rate (it replaces each group's lr); step() may
// be called total_steps - 1 times. max_lrs: one rate for every group, or one per group. With
// cycle_momentum (PyTorch's default) each group's momentum or beta1 (Optimizer::momentum_name) moves
// the other way; SGD and RMSprop must then have been made with momentum > 0.
class OneCycleLR : public detail::SchedulerBase {
  public:
    OneCycleLR(Optimizer& optimizer, double max_lr, std::int64_t total_steps, OneCycleLROptions options = {})
        : OneCycleLR(optimizer, std::vector<double>(optimizer.param_groups(), max_lr), total_steps, std::move(options)) {}
    OneCycleLR(Optimizer& optimizer, std::vector<double> max_lrs, std::int64_t total_steps, OneCycleLROptions options = {})
        : SchedulerBase(optimizer), o_(std::move(options)), total_(total_steps) {
        constexpr const char* who = "OneCycleLR";
        if (total_steps < 1) minigrad::detail::fail<ValueError>("{}: total_steps={} must be >= 1", who, total_steps);
        if (max_lrs.size() != optimizer.param_groups()) {
            minigrad::detail::fail<ValueError>("{}: {} max_lr values for {} parameter groups; give one, or one per group", who, max_lrs.size(),
                                               optimizer.param_groups());
        }
        if (!(o_.pct_start >= 0 && o_.pct_start <= 1)) minigrad::detail::fail<ValueError>("{}: pct_start={} must be in [0, 1]", who, o_.pct_start);
        if (o_.anneal_strategy != "cos" && o_.anneal_strategy != "linear") {
            minigrad::detail::fail<ValueError>("{}: anneal_strategy='{}' must be 'cos' or 'linear'", who, o_.anneal_strategy);
        }
        minigrad::detail::check_positive<double>(who, "div_factor", o_.div_factor);
        minigrad::detail::check_positive<double>(who, "final_div_factor", o_.final_div_factor);
        if (o_.cycle_momentum && !optimizer.momentum_name()) {
            minigrad::detail::fail<ValueError>("{}: cycle_momentum=true (PyTorch's default) needs an optimizer with a momentum or betas; "
                                               "pass {{.cycle_momentum = false}}",
                                               who);
        }
        for (std::size_t g = 0; g < max_lrs.size(); ++g) {
            minigrad::detail::check_positive<double>(who, "max_lr", max_lrs[g]);
            const double initial = max_lrs[g] / o_.div_factor;
            groups_.push_back({initial, max_lrs[g], initial / o_.final_div_factor});
        }
        const double t = static_cast<double>(total_steps);
        const double top = o_.max_momentum, bottom = o_.base_momentum;
        if (o_.three_phase) {
            phases_ = {{o_.pct_start * t - 1, Rate::initial, Rate::max, top, bottom},
                       {2 * o_.pct_start * t - 2, Rate::max, Rate::initial, bottom, top},
                       {t - 1, Rate::initial, Rate::min, top, top}};
        } else {
            phases_ = {{o_.pct_start * t - 1, Rate::initial, Rate::max, top, bottom}, {t - 1, Rate::max, Rate::min, bottom, top}};
        }
        apply();
    }
    void step() {
        if (last_epoch_ + 1 >= total_) {
            minigrad::detail::fail<ValueError>("OneCycleLR: tried to step {} times; the schedule has total_steps={} (steps 0 to {})", last_epoch_ + 2,
                                               total_, total_ - 1);
        }
        ++last_epoch_;
        apply();
    }

  private:
    enum class Rate { initial, max, min };
    struct Group {
        double initial, max, min;
        double of(Rate r) const { return r == Rate::initial ? initial : r == Rate::max ? max : min; }
    };
    struct Phase {
        double end_step;
        Rate start, end;
        double start_momentum, end_momentum;
    };
    double anneal(double start, double end, double pct) const {
        if (o_.anneal_strategy == "cos") return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1);
        return (end - start) * pct + start;
    }
    // The phase of this step and how far into it, as PyTorch's get_lr walks them.
    std::pair<const Phase*, double> where() const {
        const double step = static_cast<double>(last_epoch_);
        double start_step = 0;
        for (std::size_t i = 0; i < phases_.size(); ++i) {
            const auto& phase = phases_[i];
            if (step <= phase.end_step || i + 1 == phases_.size()) return {&phase, (step - start_step) / (phase.end_step - start_step)};
            start_step = phase.end_step;
        }
        return {&phases_.back(), 1.0};  // not reached: the last phase takes every step
    }
    void apply() {
        const auto at = where();  // not a structured binding: clang before 16 cannot capture one in the lambda below
        const Phase* phase = at.first;
        const double pct = at.second;
        if (o_.cycle_momentum) {  // first, so that a momentum the optimizer refuses leaves the rates as they were
            const double momentum = anneal(phase->start_momentum, phase->end_momentum, pct);
            for (std::size_t g = 0; g < optimizer_.param_groups(); ++g) optimizer_.set_group_momentum(g, momentum);
        }
        set_each([&](std::size_t g, double) { return anneal(groups_[g].of(phase->start), groups_[g].of(phase->end), pct); });
    }
    OneCycleLROptions o_;
    std::int64_t total_;
    std::vector<Group> groups_;
    std::vector<Phase> phases_;
};

struct ReduceLROnPlateauOptions {
    std::string mode = "min";  // "min": a lower metric is better; "max": higher
    double factor = 0.1;
    std::int64_t patience = 10;
    double threshold = 1e-4;
    std::string threshold_mode = "rel";  // "rel" or "abs"
    std::int64_t cooldown = 0;
    double min_lr = 0.0;
    double eps = 1e-8;
};

// Each group's rate times factor once the metric has not improved for `patience` steps, as
// torch.optim.lr_scheduler.ReduceLROnPlateau. step(metric) takes the metric as a number, so the
// caller reads it from the device (a host sync: call it once per epoch, not per step).
class ReduceLROnPlateau : public detail::SchedulerBase {
  public:
    explicit ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {}) : SchedulerBase(optimizer), o_(std::move(options)) {
        constexpr const char* who = "ReduceLROnPlateau";
        if (o_.mode != "min" && o_.mode != "max") minigrad::detail::fail<ValueError>("{}: mode='{}' must be 'min' or 'max'", who, o_.mode);
        if (o_.threshold_mode != "rel" && o_.threshold_mode != "abs") {
            minigrad::detail::fail<ValueError>("{}: threshold_mode='{}' must be 'rel' or 'abs'", who, o_.threshold_mode);
        }
        if (!(o_.factor >= 0 && o_.factor < 1)) minigrad::detail::fail<ValueError>("{}: factor={} must be in [0, 1)", who, o_.factor);
        if (o_.patience < 0 || o_.cooldown < 0) {
            minigrad::detail::fail<ValueError>("{}: patience={} and cooldown={} must be >= 0", who, o_.patience, o_.cooldown);
        }
        minigrad::detail::check_at_least<double>(who, "min_lr", o_.min_lr, 0.0);
        best_ = o_.mode == "min" ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
    }
    void step(double metric) {
        ++last_epoch_;
        if (better(metric)) {
            best_ = metric;
            bad_epochs_ = 0;
        } else {
            ++bad_epochs_;
        }
        if (cooldown_counter_ > 0) {
            --cooldown_counter_;
            bad_epochs_ = 0;
        }
        if (bad_epochs_ > o_.patience) {
            set_each([&](std::size_t, double lr) {
                const double reduced = std::max(lr * o_.factor, o_.min_lr);
                return lr - reduced > o_.eps ? reduced : lr;
            });
            cooldown_counter_ = o_.cooldown;
            bad_epochs_ = 0;
        }
    }
    std::int64_t num_bad_epochs() const { return bad_epochs_; }

  private:
    bool better(double metric) const {
        const bool rel = o_.threshold_mode == "rel";
        if (o_.mode == "min") return metric < (rel ? best_ * (1 - o_.threshold) : best_ - o_.threshold);
        return metric > (rel ? best_ * (1 + o_.threshold) : best_ + o_.threshold);
    }
    ReduceLROnPlateauOptions o_;
    double best_;
    std::int64_t bad_epochs_ = 0, cooldown_counter_ = 0;
};

}  // namespace minigrad::optim::lr_scheduler
