// SGD as torch.optim.SGD: learning rate, momentum (with dampening, Nesterov) and weight decay.
// One launch updates up to eight parameters (a multi-tensor kernel), so a step costs one or two
// launches, not one per tensor.
#pragma once

#include <initializer_list>
#include <vector>

#include "../backend/kernels.hpp"
#include "../tensor.hpp"

namespace minigrad::optim {

struct SgdOptions {
    double lr = 0.01;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;
};

template <class B, class T>
class SGD {
  public:
    SGD(std::initializer_list<Tensor<B, T>> params, SgdOptions options)
        : SGD(std::vector<Tensor<B, T>>(params), options) {}
    SGD(std::vector<Tensor<B, T>> params, SgdOptions options) : params_(std::move(params)), options_(options) {
        if (!(options.lr >= 0)) minigrad::detail::fail<ValueError>("SGD: lr={} must be >= 0", options.lr);
        if (!(options.momentum >= 0)) minigrad::detail::fail<ValueError>("SGD: momentum={} must be >= 0", options.momentum);
        if (!(options.weight_decay >= 0)) minigrad::detail::fail<ValueError>("SGD: weight_decay={} must be >= 0", options.weight_decay);
        if (options.nesterov && (options.momentum <= 0 || options.dampening != 0)) {
            minigrad::detail::fail<ValueError>("SGD: nesterov needs momentum > 0 and dampening = 0 (got momentum={}, dampening={})",
                                               options.momentum, options.dampening);
        }
        for (std::size_t i = 0; i < params_.size(); ++i) {
            if (!params_[i].defined() || !params_[i].requires_grad()) {
                minigrad::detail::fail<ValueError>("SGD: parameter #{} does not require grad; optimizing it would do nothing", i);
            }
        }
        momentum_.resize(params_.size());
    }

    const SgdOptions& options() const { return options_; }
    void set_lr(double lr) { options_.lr = lr; }

    // Marks every gradient logically zero (no kernel runs): the next backward overwrites it.
    void zero_grad() {
        for (auto& p : params_)
            if (p.impl().grad) p.impl().grad_is_zero = true;
    }

    // Updates every parameter that received a gradient since zero_grad(), as PyTorch skips those
    // whose .grad is None.
    void step() {
        kernels::SgdTable<T> table{};
        bool fresh = false;
        int device = 0;
        auto flush = [&] {
            if (table.count == 0) return;
            B::launch(table.offset[table.count],
                      kernels::SgdUpdate<T>{table, T(options_.lr), T(options_.momentum), T(options_.dampening),
                                            T(options_.weight_decay), options_.nesterov, fresh},
                      device);
            table = {};
            fresh = false;
        };
        for (std::size_t i = 0; i < params_.size(); ++i) {
            auto& impl = params_[i].impl();
            if (!impl.grad || impl.grad_is_zero) continue;
            bool first = false;
            if (options_.momentum != 0 && !momentum_[i].defined()) {
                momentum_[i] = Tensor<B, T>::empty(impl.shape, impl.device);
                first = true;
            }
            // A table holds buffers that are all fresh or all not, so one flag serves it.
            if (table.count == kernels::SgdTable<T>::capacity || (table.count > 0 && first != fresh) ||
                (table.count > 0 && impl.device != device)) {
                flush();
            }
            const int t = table.count++;
            fresh = first;
            device = impl.device;
            table.param[t] = impl.data;
            table.grad[t] = impl.grad->data;
            table.momentum[t] = momentum_[i].defined() ? momentum_[i].data() : nullptr;
            table.offset[t + 1] = table.offset[t] + impl.numel();
        }
        flush();
    }

  private:
    std::vector<Tensor<B, T>> params_;
    std::vector<Tensor<B, T>> momentum_;
    SgdOptions options_;
};

}  // namespace minigrad::optim
