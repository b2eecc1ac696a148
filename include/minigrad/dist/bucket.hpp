// Data-parallel gradients and weights: every parameter packed into one contiguous bucket, one
// collective over the bucket, then unpacked. One call per step instead of one per tensor, which
// is what makes a small model's step cost one latency instead of one per layer.
//
//   mg::dist::broadcast_parameters(model);        // once: every rank starts from rank 0's weights
//   ... loss.backward();
//   mg::dist::all_reduce_gradients(model);        // every grad becomes the mean over ranks
//   opt.step();
//
// The bucket is one per backend, element type and device, kept for the process and grown when a
// larger model comes: after the first step no step allocates backend memory.
//
// Set-up checks. broadcast_parameters, and the first all_reduce_gradients of a set of parameters,
// compare every rank's parameter names, shapes and types with rank 0's (one extra collective) and
// throw the same ShapeError on every rank, naming the first difference; later calls over the same
// tensors skip it. A parameter no backward reached (no grad, or one zero_grad() cleared) counts
// as zeros, and after the call it has a gradient on every rank: the mean of the others', as in
// PyTorch DDP with find_unused_parameters. Frozen parameters (no requires_grad) are left out.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "../autograd.hpp"
#include "../tensor.hpp"
#include "mpi.hpp"

namespace minigrad::dist {

namespace detail {

// One parameter as ranks compare it: "'fc1.weight' [16, 8] float on Cpu".
template <class B, class T>
std::string describe(const std::string& name, const Tensor<B, T>& p) {
    return minigrad::detail::format("'{}' {} {} on {}{}", name, p.shape(), std::is_same_v<T, float> ? "float" : "double", B::name,
                       p.requires_grad() ? "" : " (frozen)");
}

// Throws the same ShapeError on every rank when any rank's list differs from rank 0's, naming the
// first difference and both sides.
inline void check_same_parameters(const std::vector<std::string>& entries, const char* op) {
    std::string joined;
    for (const auto& e : entries) joined += e + '\0';  // a NUL cannot appear in a description
    const auto all = all_gather(joined, op);
    auto split = [](const std::string& text) {
        std::vector<std::string> out;
        for (std::size_t start = 0, end; start < text.size(); start = end + 1) {
            end = text.find('\0', start);
            out.push_back(text.substr(start, end - start));
        }
        return out;
    };
    const auto first = split(all[0]);
    for (std::size_t r = 1; r < all.size(); ++r) {
        const auto mine = split(all[r]);
        for (std::size_t i = 0; i < std::max(first.size(), mine.size()); ++i) {
            if (i < first.size() && i < mine.size()) {
                if (first[i] == mine[i]) continue;
                minigrad::detail::fail<ShapeError>("{}: parameter #{} differs between ranks: rank 0 has {}, rank {} has {}; every rank must build "
                                                   "the same model",
                                                   op, i, first[i], r, mine[i]);
            }
            minigrad::detail::fail<ShapeError>("{}: rank {} has {} parameters, rank 0 has {}; parameter #{} is {} on rank {} and missing on rank {}; "
                                               "every rank must build the same model",
                                               op, r, mine.size(), first.size(), i, i < first.size() ? first[i] : mine[i],
                                               i < first.size() ? 0 : r, i < first.size() ? r : 0);
        }
    }
}

template <class B, class T>
struct Bucket {
    Tensor<B, T> buffer;  // grows, never shrinks
    // Smaller buffers a growth replaced: kept, not freed, because a step captured in a StepGraph
    // before the growth still copies into and reduces its buffer at every replay.
    std::vector<Tensor<B, T>> retired;
    std::vector<std::pair<const void*, Shape>> checked;  // the parameters last compared between ranks

    T* reserve(std::int64_t n, int device) {
        if (!buffer.defined() || buffer.numel() < n) {
            if (buffer.defined()) retired.push_back(std::move(buffer));
            buffer = minigrad::detail::state_tensor<B, T>(Shape{n}, device);
        }
        return buffer.data();
    }
    bool already_checked(std::span<const Tensor<B, T>> params) const {
        if (checked.size() != params.size()) return false;
        for (std::size_t i = 0; i < params.size(); ++i) {
            if (checked[i].first != &params[i].impl() || checked[i].second != params[i].shape()) return false;
        }
        return true;
    }
    void mark_checked(std::span<const Tensor<B, T>> params) {
        checked.clear();
        for (const auto& p : params) checked.emplace_back(&p.impl(), p.shape());
    }
};

// Never destroyed: a device bucket freed by a static destructor would outlive the CUDA runtime.
template <class B, class T>
Bucket<B, T>& bucket(int device) {
    static auto* buckets = new std::map<int, Bucket<B, T>>();
    return (*buckets)[device];
}

template <class B, class T>
std::vector<std::string> descriptions(std::span<const Tensor<B, T>> params, const std::vector<std::string>* names) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < params.size(); ++i) out.push_back(describe(names ? (*names)[i] : minigrad::detail::format("#{}", i), params[i]));
    return out;
}

// The device every parameter is on (one bucket serves one device).
template <class B, class T>
int common_device(std::span<const Tensor<B, T>> params, const char* op) {
    const int device = params.empty() ? B::current_device() : params[0].device();
    for (std::size_t i = 1; i < params.size(); ++i) {
        if (params[i].device() != device) {
            minigrad::detail::fail<DeviceError>("{}: parameter #{} is on {} device {} but parameter #0 on device {}; a rank's model must be on "
                                                "one device",
                                                op, i, B::name, params[i].device(), device);
        }
    }
    return device;
}

// A model's parameter names and tensors as two lists, in visit order.
template <class M>
std::pair<std::vector<std::string>, std::vector<typename M::Parameter>> names_and_parameters(const M& model) {
    std::pair<std::vector<std::string>, std::vector<typename M::Parameter>> out;
    for (auto& [name, p] : model.named_parameters()) {
        out.first.push_back(name);
        out.second.push_back(p);
    }
    return out;
}

template <class B, class T>
void all_reduce_gradients(std::span<const Tensor<B, T>> params, const std::vector<std::string>* names) {
    constexpr const char* op = "all_reduce_gradients";
    const auto& s = require_init(op);
    if (s.world_size == 1) return;  // the mean over one rank is its own gradient
    const int device = common_device(params, op);
    auto& b = bucket<B, T>(device);
    if (!b.already_checked(params)) {
        check_same_parameters(descriptions(params, names), op);
        b.mark_checked(params);
    }
    std::int64_t total = 0;
    for (const auto& p : params)
        if (p.requires_grad()) total += p.numel();
    T* buffer = b.reserve(total, device);
    std::int64_t offset = 0;
    for (const auto& p : params) {
        auto& impl = p.impl();
        if (!impl.requires_grad) continue;
        if (impl.grad && !impl.grad_is_zero)
            B::copy(buffer + offset, impl.grad->data, impl.bytes(), device);
        else if (impl.numel() > 0)
            B::launch(impl.numel(), kernels::Fill<T>{buffer + offset, T(0)}, device);
        offset += impl.numel();
    }
    Transport<B>::all_reduce_mean(buffer, total, device, op);
    offset = 0;
    for (const auto& p : params) {
        auto& impl = p.impl();
        if (!impl.requires_grad) continue;
        const auto slot = minigrad::detail::grad_slot(impl);  // makes the grad of a parameter no backward reached
        B::copy(slot.data, buffer + offset, impl.bytes(), device);
        offset += impl.numel();
    }
}
}  // namespace detail

// Every gradient of `params` becomes its mean over the ranks: one collective over one bucket.
// With one rank it changes nothing. Takes the list an optimizer takes (model.parameters(), made
// once), so a step allocates nothing on the host either.
template <class B, class T>
void all_reduce_gradients(const std::vector<Tensor<B, T>>& params) {
    detail::all_reduce_gradients<B, T>(std::span<const Tensor<B, T>>(params), nullptr);
}

// The same for a model's parameters; a set-up difference between ranks is named by parameter
// name ("fc1.weight"). Lists the model's parameters on every call.
template <class M>
    requires requires(const M& m) { m.named_parameters(); }
void all_reduce_gradients(const M& model) {
    using P = typename M::Parameter;
    const auto [names, params] = detail::names_and_parameters(model);
    detail::all_reduce_gradients<typename P::backend_type, typename P::value_type>(std::span<const P>(params), &names);
}

// Every rank's parameters become rank `root`'s values, after checking that every rank has the
// same parameter names, shapes and types. Call it once after building the model (and before the
// optimizer's first step), so every rank starts from the same weights.
template <class M>
    requires requires(const M& m) { m.named_parameters(); }
void broadcast_parameters(M& model, int root = 0) {
    using P = typename M::Parameter;
    using B = typename P::backend_type;
    using T = typename P::value_type;
    constexpr const char* op = "broadcast_parameters";
    const auto& s = detail::require_init(op);
    if (root < 0 || root >= s.world_size) {
        minigrad::detail::fail<ValueError>("{}: root {} is not a rank of this job (world size {}, ranks 0..{})", op, root, s.world_size,
                                           s.world_size - 1);
    }
    auto [names, params] = detail::names_and_parameters(model);
    const std::span<const P> all(params);
    const int device = detail::common_device(all, op);
    auto& b = detail::bucket<B, T>(device);
    detail::check_same_parameters(detail::descriptions(all, &names), op);
    b.mark_checked(all);
    if (s.world_size == 1) return;
    std::int64_t total = 0;
    for (const auto& p : params) total += p.numel();
    T* buffer = b.reserve(total, device);
    std::int64_t offset = 0;
    for (const auto& p : params) {
        B::copy(buffer + offset, p.data(), p.impl().bytes(), device);
        offset += p.numel();
    }
    detail::Transport<B>::broadcast(buffer, total, root, device, op);
    offset = 0;
    for (auto& p : params) {
        B::copy(p.data(), buffer + offset, p.impl().bytes(), device);
        minigrad::detail::mark_modified(p.impl());
        offset += p.numel();
    }
}

}  // namespace minigrad::dist
