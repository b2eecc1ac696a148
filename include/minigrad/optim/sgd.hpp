// SGD as torch.optim.SGD: learning rate, momentum (with dampening, Nesterov) and weight decay.
// One launch updates up to eight parameters (a multi-tensor kernel), so a step costs one or two
// launches, not one per tensor.
#pragma once

#include <initializer_list>
#include <limits>
#include <vector>

#include "../backend/kernels.hpp"
#include "checks.hpp"
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
        detail::check_hyper<T>("SGD", "lr", options.lr, 0.0);
        detail::check_hyper<T>("SGD", "momentum", options.momentum, 0.0);
        detail::check_hyper<T>("SGD", "dampening", options.dampening, -std::numeric_limits<double>::infinity());
        detail::check_hyper<T>("SGD", "weight_decay", options.weight_decay, 0.0);
        if (options.nesterov && (options.momentum <= 0 || options.dampening != 0)) {
            minigrad::detail::fail<ValueError>("SGD: nesterov needs momentum > 0 and dampening = 0 (got momentum={}, dampening={})",
                                               options.momentum, options.dampening);
        }
        detail::check_params("SGD", params_);
        momentum_.resize(params_.size());
    }

    const SgdOptions& options() const { return options_; }
    // Refused unless finite, >= 0 and finite as T; a refused value changes nothing.
    void set_lr(double lr) {
        detail::check_hyper<T>("SGD", "lr", lr, 0.0);
        options_.lr = lr;
    }

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
