// The small interface every optimizer shares, so that a learning-rate scheduler can drive any of
// them: the learning rate (and the momentum), read from backend memory by the update, so a change
// reaches the replays of a step captured earlier (StepGraph).
#pragma once

#include <cstddef>

namespace minigrad::optim {

class Optimizer {
  public:
    virtual ~Optimizer() = default;
    // Refused unless finite, >= 0 and finite as the parameters' type; a refused value changes
    // nothing. Not during a capture (it writes backend memory from the host).
    virtual void set_lr(double lr) = 0;  // every parameter group's
    virtual double get_lr() const = 0;   // the first group's
    // Parameter groups (PyTorch's param_groups): how many, and each one's learning rate, which a
    // scheduler scales group by group.
    virtual std::size_t param_groups() const { return 1; }
    virtual double group_lr(std::size_t) const { return get_lr(); }
    virtual void set_group_lr(std::size_t, double lr) { set_lr(lr); }
    // The momentum a scheduler may cycle (OneCycleLR's cycle_momentum): "momentum" (SGD, RMSprop)
    // or "beta1" (Adam, AdamW: betas[0]), null for an optimizer without one. Read from backend
    // memory by the update, as the rate is; set_group_momentum checks the value as the
    // optimizer's constructor checks its own, and changes nothing where it refuses.
    virtual const char* momentum_name() const { return nullptr; }
    virtual double group_momentum(std::size_t) const { return 0; }
    virtual void set_group_momentum(std::size_t, double) {}
};

}  // namespace minigrad::optim
