// The small interface every optimizer shares, so that a learning-rate scheduler can drive any of
// them: the learning rate, read from backend memory by the update, so a change reaches the
// replays of a step captured earlier (StepGraph).
#pragma once

namespace minigrad::optim {

class Optimizer {
  public:
    virtual ~Optimizer() = default;
    // Refused unless finite, >= 0 and finite as the parameters' type; a refused value changes
    // nothing. Not during a capture (it writes backend memory from the host).
    virtual void set_lr(double lr) = 0;
    virtual double get_lr() const = 0;
};

}  // namespace minigrad::optim
