// Learning-rate schedules as torch.optim.lr_scheduler (torch 1.13), driving any optimizer through
// its set_lr/get_lr. Each step() is host arithmetic plus one tiny upload (set_lr), so call it
// between StepGraph replays: the captured step reads the rate from backend memory and follows.
// As in PyTorch, the rate is computed from the optimizer's current one (the "chainable" form), so
// a set_lr by hand between steps carries on.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

#include "../error.hpp"
#include "../scalar_checks.hpp"
#include "optimizer.hpp"

namespace minigrad::optim::lr_scheduler {

// lr * gamma every step_size steps.
class StepLR {
  public:
    StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1) : optimizer_(optimizer), step_size_(step_size), gamma_(gamma) {
        if (step_size < 1) minigrad::detail::fail<ValueError>("StepLR: step_size={} must be >= 1", step_size);
        minigrad::detail::check_at_least<double>("StepLR", "gamma", gamma, 0.0);
    }
    void step() {
        ++last_epoch_;
        if (last_epoch_ % step_size_ == 0) optimizer_.set_lr(optimizer_.get_lr() * gamma_);
    }
    double get_lr() const { return optimizer_.get_lr(); }
    std::int64_t last_epoch() const { return last_epoch_; }

  private:
    Optimizer& optimizer_;
    std::int64_t step_size_;
    double gamma_;
    std::int64_t last_epoch_ = 0;
};

// eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2, by PyTorch's recursive formula
// (which keeps going past T_max: the rate climbs back, period 2 T_max).
class CosineAnnealingLR {
  public:
    CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min = 0.0)
        : optimizer_(optimizer), t_max_(T_max), eta_min_(eta_min), base_lr_(optimizer.get_lr()) {
        if (T_max < 1) minigrad::detail::fail<ValueError>("CosineAnnealingLR: T_max={} must be >= 1", T_max);
        minigrad::detail::check_at_least<double>("CosineAnnealingLR", "eta_min", eta_min, 0.0);
    }
    void step() {
        ++last_epoch_;
        const double pi = std::numbers::pi, t = static_cast<double>(last_epoch_), t_max = static_cast<double>(t_max_);
        const double lr = optimizer_.get_lr();
        double next;
        // (last_epoch - 1 - T_max) a multiple of 2 T_max, without 2 * T_max (which overflows for a T_max past INT64_MAX / 2)
        const std::int64_t since_max = last_epoch_ - 1 - t_max_;
        if (since_max % t_max_ == 0 && (since_max / t_max_) % 2 == 0) {
            next = lr + (base_lr_ - eta_min_) * (1 - std::cos(pi / t_max)) / 2;
        } else {
            next = (1 + std::cos(pi * t / t_max)) / (1 + std::cos(pi * (t - 1) / t_max)) * (lr - eta_min_) + eta_min_;
        }
        optimizer_.set_lr(next);
    }
    double get_lr() const { return optimizer_.get_lr(); }
    std::int64_t last_epoch() const { return last_epoch_; }

  private:
    Optimizer& optimizer_;
    std::int64_t t_max_;
    double eta_min_, base_lr_;
    std::int64_t last_epoch_ = 0;
};

}  // namespace minigrad::optim::lr_scheduler
