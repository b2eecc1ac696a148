// BatchNorm1d and BatchNorm2d as torch.nn's: weight (C, initialised to 1) and bias (C, to 0)
// where affine; the buffers running_mean (0), running_var (1) and num_batches_tracked (0) where
// track_running_stats, saved and loaded under PyTorch's state_dict names and moved by to<B2>().
// In training each forward normalises by the batch's statistics and moves the running ones (by
// momentum, or as a cumulative average where momentum is nullopt, PyTorch's None); in eval it
// normalises by the running ones. Without running statistics it always uses the batch's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "../ops/batch_norm.hpp"
#include "module.hpp"

namespace minigrad::nn {

struct BatchNormModuleOptions {
    double eps = 1e-5;
    std::optional<double> momentum = 0.1;
    bool affine = true;
    bool track_running_stats = true;
};

namespace detail {
// What BatchNorm1d and BatchNorm2d share; Rank says which inputs they take (1: (N, C) or
// (N, C, L); 2: (N, C, H, W)).
template <class B, class T, int Rank>
class BatchNorm : public Module<B, T> {
  public:
    Tensor<B, T> weight;  // (C), undefined unless affine
    Tensor<B, T> bias;
    Tensor<B, T> running_mean;  // (C), undefined unless track_running_stats
    Tensor<B, T> running_var;
    Tensor<B, std::int64_t> num_batches_tracked;  // a scalar

    explicit BatchNorm(std::int64_t num_features, BatchNormModuleOptions options = {}) : num_features_(num_features), options_(options) {
        if (num_features <= 0) minigrad::detail::fail<ValueError>("{}: num_features={} must be positive", name(), num_features);
        minigrad::detail::check_positive<T>(name(), "eps", options.eps);
        if (options.momentum && !(*options.momentum >= 0 && *options.momentum <= 1)) {
            minigrad::detail::fail<ValueError>("{}: momentum={} must be in [0, 1]", name(), *options.momentum);
        }
        const Shape shape{num_features};
        if (options.affine) {  // no random draws: skip_init leaves these as they are
            weight = Tensor<B, T>::ones(shape);
            bias = Tensor<B, T>::zeros(shape);
            weight.requires_grad_();
            bias.requires_grad_();
        }
        if (options.track_running_stats) {
            running_mean = Tensor<B, T>::zeros(shape);
            running_var = Tensor<B, T>::ones(shape);
            num_batches_tracked = Tensor<B, std::int64_t>::zeros(Shape{});
        }
    }

    std::int64_t num_features() const { return num_features_; }
    const BatchNormModuleOptions& options() const { return options_; }

    template <class BX, class TX>
    auto forward(const Tensor<BX, TX>& x) const {
        if constexpr (std::is_same_v<BX, B> && std::is_same_v<TX, T>) {
            const int n = x.ndim();
            if (x.defined() && (Rank == 1 ? n != 2 && n != 3 : n != 4)) {
                minigrad::detail::fail<ShapeError>("{}: expected {} input, got shape {} ({} dims)", name(),
                                                   Rank == 1 ? "(N, C) or (N, C, L)" : "(N, C, H, W)", x.shape(), n);
            }
            if (x.defined() && x.size(1) != num_features_) {
                minigrad::detail::fail<ShapeError>("{}: input of shape {} has {} channels, this layer has num_features={}", name(), x.shape(),
                                                   x.size(1), num_features_);
            }
            // As PyTorch: batch statistics in training, or always where there are no running ones;
            // the running ones move only in training.
            const bool use_batch = this->training_ || !running_mean.defined();
            const bool update = this->training_ && running_mean.defined();
            const BatchNormOptions op{use_batch, options_.momentum.value_or(-1.0), options_.eps};
            return minigrad::detail::batch_norm(x, update || !use_batch ? running_mean : Tensor<B, T>{},
                                                update || !use_batch ? running_var : Tensor<B, T>{}, weight, bias, op,
                                                update ? num_batches_tracked : Tensor<B, std::int64_t>{});
        } else {
            minigrad::detail::reject_mix<B, T, BX, TX, 1>();
            return Tensor<B, T>{};
        }
    }
    template <class BX, class TX>
    auto operator()(const Tensor<BX, TX>& x) const {
        return forward(x);
    }

    void visit_parameters(ParameterVisitor& visitor, const std::string& prefix) override {
        detail::visit_members(visitor, prefix, "weight, bias", weight, bias);
        detail::visit_buffer(visitor, prefix + "running_mean", running_mean);
        detail::visit_buffer(visitor, prefix + "running_var", running_var);
        detail::visit_buffer(visitor, prefix + "num_batches_tracked", num_batches_tracked);
    }

  private:
    static const char* name() { return Rank == 1 ? "BatchNorm1d" : "BatchNorm2d"; }
    std::int64_t num_features_;
    BatchNormModuleOptions options_;
};
}  // namespace detail

template <class B, class T = float>
class BatchNorm1d : public detail::BatchNorm<B, T, 1> {
  public:
    using detail::BatchNorm<B, T, 1>::BatchNorm;
    template <class B2>
    BatchNorm1d<B2, T> to() const {
        return nn::to<B2>(*this, this->num_features(), this->options());
    }
};

template <class B, class T = float>
class BatchNorm2d : public detail::BatchNorm<B, T, 2> {
  public:
    using detail::BatchNorm<B, T, 2>::BatchNorm;
    template <class B2>
    BatchNorm2d<B2, T> to() const {
        return nn::to<B2>(*this, this->num_features(), this->options());
    }
};

}  // namespace minigrad::nn
