// SGD as torch.optim.SGD: learning rate, momentum (with dampening, Nesterov) and weight decay.
// One launch updates up to eight parameters (a multi-tensor kernel), so a step costs one or two
// launches, not one per tensor. save_state/load_state keep its state in a safetensors file, so
// training resumes exactly.
#pragma once

#include <charconv>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "../backend/kernels.hpp"
#include "../io/safetensors.hpp"
#include "checks.hpp"
#include "state_file.hpp"
#include "optimizer.hpp"
#include "../tensor.hpp"

namespace minigrad::kernels {

// Up to `capacity` tensors updated in one launch; offsets are their starts in one flat index range.
template <class T>
struct SgdTable {
    static constexpr int capacity = 8;
    T* param[capacity];
    const T* grad[capacity];
    T* momentum[capacity];  // null when momentum is 0
    index_t offset[capacity + 1];
    int count;
};

// As torch.optim.SGD: g = grad + wd*p; buf = first ? g : mu*buf + (1-dampening)*g;
// p -= lr * (nesterov ? g + mu*buf : buf) (buf = g without momentum). i over the table's elements.
template <class T>
struct SgdUpdate {
    SgdTable<T> table;
    const T* lr;  // (1), read at run time: a captured step follows set_lr between replays
    T momentum, dampening, weight_decay;
    bool nesterov, first_step;
    MINIGRAD_HD void operator()(index_t i) const {
        int t = 0;
        while (i >= table.offset[t + 1]) ++t;
        const index_t j = i - table.offset[t];
        if (table.momentum[t])
            element<true>(table.param[t], table.grad[t], table.momentum[t], j, lr[0]);
        else
            element<false>(table.param[t], table.grad[t], nullptr, j, lr[0]);
    }
    // Indices [begin, end) as operator() computes them, the host's loop (Cpu::launch calls it):
    // a tensor's run of indices at a time, so the table lookup and the momentum test leave the
    // inner loop and it vectorises; the same element(), so the same bits.
    MINIGRAD_HD_INLINE void range(index_t begin, index_t end) const {
        const T rate = lr[0];  // lr is a tensor of its own: no parameter write changes it
        for (int t = 0; t < table.count; ++t) {
            const index_t lo = begin > table.offset[t] ? begin : table.offset[t];
            const index_t hi = end < table.offset[t + 1] ? end : table.offset[t + 1];
            if (lo >= hi) continue;
            const index_t first = lo - table.offset[t], count = hi - lo;  // tensor t's elements first..first+count
            T* __restrict p = table.param[t] + first;
            const T* __restrict grad = table.grad[t] + first;
            if (table.momentum[t]) {
                T* __restrict buf = table.momentum[t] + first;
                for (index_t j = 0; j < count; ++j) element<true>(p, grad, buf, j, rate);
            } else {
                for (index_t j = 0; j < count; ++j) element<false>(p, grad, nullptr, j, rate);
            }
        }
    }
    // element j of one tensor: buf is its momentum buffer (Momentum) or unused
    template <bool Momentum>
    MINIGRAD_HD_INLINE void element(T* p, const T* grad, T* buf, index_t j, T rate) const {
        T g = grad[j] + weight_decay * p[j];
        if constexpr (Momentum) {
            buf[j] = first_step ? g : momentum * buf[j] + (T(1) - dampening) * g;
            g = nesterov ? g + momentum * buf[j] : buf[j];
        }
        p[j] -= rate * g;
    }
};

// The functors SGD launches, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using SgdFunctors = Functors<SgdUpdate<T>>;

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
class SGD : public Optimizer {
  public:
    SGD(std::initializer_list<Tensor<B, T>> params, SgdOptions options)
        : SGD(std::vector<Tensor<B, T>>(params), options) {}
    SGD(std::vector<Tensor<B, T>> params, SgdOptions options) : params_(std::move(params)), options_(options) {
        check_options(options, "SGD");
        detail::check_params("SGD", params_);
        momentum_.resize(params_.size());
        // Made now, not in the first step(): made there, after that step's graph was freed, it
        // would take a block the next step's forward pass needs, and step 2 would allocate.
        for (const auto& p : params_) lr_on(p.device());
    }

    const SgdOptions& options() const { return options_; }
    // Refused unless finite, >= 0 and finite as T; a refused value changes nothing. The update
    // reads the rate from backend memory when it runs, so a change also reaches the replays of a
    // step captured earlier (StepGraph), as a learning-rate schedule needs. Not during a capture.
    void set_lr(double lr) override {
        detail::check_at_least<T>("SGD", "lr", lr, 0.0);
        options_.lr = lr;
        const T value = static_cast<T>(lr);
        for (auto& rate : lr_) B::upload(rate.data(), &value, sizeof(T), rate.device());
    }
    double get_lr() const override { return options_.lr; }

    // Marks every gradient logically zero (no kernel runs): the next backward overwrites it.
    void zero_grad() {
        for (auto& p : params_) p.zero_grad();
    }

    // Updates every parameter that requires grad and received a gradient since zero_grad(), as
    // PyTorch skips those whose .grad is None (detail::is_stepped).
    void step() {
        kernels::SgdTable<T> table{};
        bool fresh = false;
        int device = 0;
        auto flush = [&] {
            if (table.count == 0) return;
            B::launch(table.offset[table.count],
                      kernels::SgdUpdate<T>{table, lr_on(device), T(options_.momentum), T(options_.dampening),
                                            T(options_.weight_decay), options_.nesterov, fresh},
                      device);
            table = {};
            fresh = false;
        };
        for (std::size_t i = 0; i < params_.size(); ++i) {
            auto& impl = params_[i].impl();
            if (!detail::is_stepped(impl)) continue;
            bool first = false;
            if (options_.momentum != 0 && !momentum_[i].defined()) {
                momentum_[i] = minigrad::detail::state_tensor<B, T>(impl.shape, impl.device);
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
            minigrad::detail::mark_modified(impl);
            table.grad[t] = impl.grad->data;
            table.momentum[t] = momentum_[i].defined() ? momentum_[i].data() : nullptr;
            table.offset[t + 1] = table.offset[t] + impl.numel();
        }
        flush();
    }

    // Writes the optimizer's state as PyTorch's SGD state_dict names it: a tensor
    // "state.<i>.momentum_buffer" for each parameter i (by position) whose buffer exists yet, and
    // in the metadata the hyper-parameters ("lr", "momentum", "dampening", "weight_decay",
    // "nesterov"; fmt's "{}" prints a double's shortest text that reads back to the same bits) and
    // "param_shapes", the JSON list of every parameter's shape, which load_state checks. Atomic, as
    // every save (host reads).
    void save_state(const std::filesystem::path& path) const {
        std::vector<io::TensorData> tensors;
        for (std::size_t i = 0; i < params_.size(); ++i) {
            if (!momentum_[i].defined()) continue;
            std::vector<std::int64_t> shape(params_[i].shape().begin(), params_[i].shape().end());
            const auto values = momentum_[i].to_vector();
            tensors.push_back(io::TensorData::from<T>(fmt::format("state.{}.momentum_buffer", i), shape, values));
        }
        io::save_safetensors(path, tensors,
                             {{"optimizer", "SGD"},
                              {"lr", fmt::format("{}", options_.lr)},
                              {"momentum", fmt::format("{}", options_.momentum)},
                              {"dampening", fmt::format("{}", options_.dampening)},
                              {"weight_decay", fmt::format("{}", options_.weight_decay)},
                              {"nesterov", options_.nesterov ? "true" : "false"},
                              {"param_shapes", detail::param_shapes_json(params_)}});
    }

    // Restores what save_state wrote: the momentum buffers (and which exist) and the
    // hyper-parameters, lr included, as PyTorch's load_state_dict does; it accepts exactly the
    // settings the constructor accepts (each a finite number, then check_options). The parameters'
    // count and shapes must match this optimizer's. Checks the whole file before changing anything.
    void load_state(const std::filesystem::path& path) {
        const detail::StateFile state(path, "SGD");
        const auto& file = state.file;
        auto fail = [&](const std::string& why) { state.fail(why); };
        SgdOptions options{state.number("lr"), state.number("momentum"), state.number("dampening"), state.number("weight_decay"),
                           state.flag("nesterov")};
        check_options(options, state.who);
        state.check_param_shapes(params_);
        std::vector<std::vector<T>> buffers(params_.size());
        std::vector<bool> present(params_.size(), false);
        for (const auto& t : file.tensors) {
            std::size_t i = 0;
            for (; i < params_.size(); ++i)
                if (t.name == fmt::format("state.{}.momentum_buffer", i)) break;
            if (i == params_.size()) fail(fmt::format("stores {}, which is no momentum buffer of this optimizer's {} parameters", io::detail::quote(t.name), params_.size()));
            if (!std::equal(t.shape.begin(), t.shape.end(), params_[i].shape().begin(), params_[i].shape().end())) {
                fail(fmt::format("stores '{}' with shape {}, parameter #{} has {}", t.name, io::detail::shape_text(t.shape), i, params_[i].shape()));
            }
            buffers[i] = io::to_floating<T>(t, "SGD::load_state", path);
            present[i] = true;
        }
        if (options.momentum == 0 && file.tensors.size() > 0) fail("stores momentum buffers but its momentum is 0");

        for (std::size_t i = 0; i < params_.size(); ++i) {
            momentum_[i] = present[i] ? Tensor<B, T>::from(std::span<const T>(buffers[i]), params_[i].shape(), params_[i].device()) : Tensor<B, T>();
        }
        options_ = options;
        set_lr(options.lr);
    }

  private:
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

    // The learning rate as a scalar in backend memory on `device` (made for every parameter's device
    // by the constructor).
    const T* lr_on(int device) {
        for (auto& rate : lr_)
            if (rate.device() == device) return rate.data();
        lr_.push_back(Tensor<B, T>::full(Shape{}, static_cast<T>(options_.lr), device));
        return lr_.back().data();
    }

    std::vector<Tensor<B, T>> params_;
    std::vector<Tensor<B, T>> momentum_;
    SgdOptions options_;
    std::vector<Tensor<B, T>> lr_;  // one per device the parameters are on
};

}  // namespace minigrad::optim
