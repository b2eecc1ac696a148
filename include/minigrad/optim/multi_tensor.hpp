// What SGD, Adam, AdamW and RMSprop share: one launch updates up to eight parameters, each parameter's
// step count lives in backend memory and is advanced by that launch, the learning rate is read
// from backend memory, and the state (moments, step counts) goes to and from a safetensors file.
//
// Why "lanes": an update whose factors depend on the step (Adam's bias correction) must read a
// step count that no other thread of the same launch is changing, and a captured step cannot run
// host code to advance it. So a parameter's elements are dealt to `lanes` threads (element j to
// lane j % lanes) and each lane keeps its own copy of the count: a thread reads and advances only
// its lane's, computes the step's factors once and updates its elements. On the GPU a parameter
// gets up to lane_cap lanes (neighbouring threads touch neighbouring elements); on the host one,
// so the factors are computed once per parameter and step.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "../io/safetensors.hpp"
#include "../tensor.hpp"
#include "checks.hpp"
#include "optimizer.hpp"
#include "state_file.hpp"

namespace minigrad::kernels {

// Up to `capacity` parameters updated in one launch; lane_offset are their first lanes in one flat
// lane range. A rule uses up to three buffers of the parameter's shape (null where unused).
template <class T>
struct LaneTable {
    static constexpr int capacity = 8;
    static constexpr int max_buffers = 3;
    T* param[capacity];
    const T* grad[capacity];
    T* buffer[max_buffers][capacity];
    std::int64_t* step[capacity];  // (lanes) per parameter: the updates done so far, one copy per lane
    index_t numel[capacity];
    index_t lane_offset[capacity + 1];
    int count;
};

// param, grad and buffers of table entry t are (numel[t]), step[t] is (lanes); i over the
// table's lanes. Rule gives factors(step) (once per lane and step) and update<V>(factors, j, p, g,
// buf): element j with V = Scalar<T>, elements j..j+3 with V = Lanes4 (kernels.hpp).
template <class T, class Rule>
struct LaneUpdate {
    LaneTable<T> table;
    Rule rule;
    // The elements one launch updates (what a compiled step weighs; capture/tape.hpp).
    MINIGRAD_HD index_t total_work() const {
        index_t total = 0;
        for (int t = 0; t < table.count; ++t) total += table.numel[t];
        return total;
    }
    // Inlined: on an AVX2 host the backend's AVX2 loop then holds it (Cpu::run_avx2).
    MINIGRAD_HD_INLINE void operator()(index_t i) const {
        const Rule r = rule;  // in registers: the loops' stores to p cannot change it, so its flags are tested once
        int t = 0;
        while (i >= table.lane_offset[t + 1]) ++t;
        const index_t lane = i - table.lane_offset[t];
        const index_t lanes = table.lane_offset[t + 1] - table.lane_offset[t];
        const std::int64_t step = table.step[t][lane] + 1;
        table.step[t][lane] = step;
        const auto factors = r.factors(step);
        T* buf[LaneTable<T>::max_buffers] = {table.buffer[0][t], table.buffer[1][t], table.buffer[2][t]};
        T* p = table.param[t];
        const T* g = table.grad[t];
        const index_t n = table.numel[t];
        if (lanes == 1) {  // the host's case: the whole parameter, four floats at a time on x86-64
#if defined(MINIGRAD_LANES4)
            // Subnormal moments and products count as zero here: each would cost the host ~100
            // cycles (kernels::SubnormalsAsZero), where a GPU keeps them at full speed. Results
            // differ from PyTorch's (and the GPU's) only below the smallest normal number.
            const SubnormalsAsZero flush;
            if constexpr (std::is_same_v<T, float>) {
                index_t j = 0;
                for (; j + Lanes4::width <= n; j += Lanes4::width) r.template update<Lanes4>(factors, j, p, g, buf);
                const index_t tail = (n - j) & (Lanes4::width - 1);  // at most three: no loop for the vectoriser to make
                for (index_t k = 0; k < tail; ++k) r.template update<Scalar<T>>(factors, j + k, p, g, buf);
                return;
            }
#endif
            for (index_t j = 0; j < n; ++j) r.template update<Scalar<T>>(factors, j, p, g, buf);
        } else {
            for (index_t j = lane; j < n; j += lanes) r.template update<Scalar<T>>(factors, j, p, g, buf);
        }
    }
};

}  // namespace minigrad::kernels

namespace minigrad::optim {

// A parameter group, as an entry of PyTorch's param_groups: its parameters, and the learning rate
// and weight decay they take where those differ from the optimizer's options (std::nullopt: the
// options' value). An optimizer built from a list of tensors has one group.
//   mg::optim::AdamW opt({{.params = decay}, {.params = no_decay, .weight_decay = 0.0}}, {.lr = 3e-4, .weight_decay = 0.1});
template <class B, class T>
struct ParamGroup {
    std::vector<Tensor<B, T>> params{};
    std::optional<double> lr{};
    std::optional<double> weight_decay{};
};

}  // namespace minigrad::optim

namespace minigrad::optim::detail {

// One group per list of tensors.
template <class B, class T>
std::vector<ParamGroup<B, T>> one_group(std::vector<Tensor<B, T>> params) {
    std::vector<ParamGroup<B, T>> groups(1);
    groups[0].params = std::move(params);
    return groups;
}


template <class B, class T>
class MultiTensorOptimizer : public Optimizer {
  public:
    static constexpr std::int64_t lane_cap = 32768;

    // The first group's rate; set_lr sets every group's.
    double get_lr() const override { return groups_.front().lr; }
    void set_lr(double lr) override {
        check_at_least<T>(name_, "lr", lr, 0.0);
        for (std::size_t g = 0; g < groups_.size(); ++g) set_group_lr(g, lr);
    }
    std::size_t param_groups() const override { return groups_.size(); }
    double group_lr(std::size_t group) const override { return groups_.at(checked_group(group)).lr; }
    void set_group_lr(std::size_t group, double lr) override {
        auto& g = groups_[checked_group(group)];
        check_at_least<T>(name_, minigrad::detail::format("param group #{}'s lr", group), lr, 0.0);
        g.lr = lr;
        for (auto& rate : g.lr_on_device) B::upload(rate.data(), &lr, sizeof(double), rate.device());
    }
    double group_momentum(std::size_t group) const override { return groups_.at(checked_group(group)).momentum; }
    void set_group_momentum(std::size_t group, double momentum) override {
        auto& g = groups_[checked_group(group)];
        check_momentum(minigrad::detail::format("param group #{}'s {}", group, this->momentum_name()), momentum);
        put_momentum(g, momentum);
    }
    double group_weight_decay(std::size_t group) const { return groups_.at(checked_group(group)).weight_decay; }
    // Which parameters (by position, over all groups in order) group `group` holds.
    const std::vector<std::size_t>& group_params(std::size_t group) const { return groups_.at(checked_group(group)).members; }

    // Marks every gradient logically zero (no kernel runs): the next backward overwrites it.
    void zero_grad() {
        for (auto& p : params_) p.zero_grad();
    }

    // How many updates parameter i has had (0 before its first): a host read.
    std::int64_t step_count(std::size_t i) const {
        if (i >= params_.size()) {
            minigrad::detail::fail<ValueError>("{}::step_count: parameter #{} asked, the optimizer has {}", name_, i, params_.size());
        }
        return steps_[i].defined() ? steps_[i].to_vector().front() : 0;
    }

  protected:
    // steps_in_state: whether the state file keeps each parameter's step count ("state.<i>.step",
    // as PyTorch's Adam and RMSprop do). Without it (SGD, whose only use of the count is to know its
    // first step), a loaded parameter with buffers has had a step, and one without has not.
    // lr and weight_decay: the options', for the groups that do not give their own; momentum: every
    // group's (the optimizer's momentum_name()), already checked.
    MultiTensorOptimizer(std::string name, std::vector<ParamGroup<B, T>> groups, double lr, double weight_decay,
                         std::vector<std::string> buffer_names, bool steps_in_state, double momentum)
        : name_(std::move(name)), buffer_names_(std::move(buffer_names)), steps_in_state_(steps_in_state) {
        if (groups.empty()) minigrad::detail::fail<ValueError>("{}: no parameter groups given", name_);
        for (std::size_t g = 0; g < groups.size(); ++g) {
            auto& given = groups[g];
            Group group;
            group.lr = given.lr.value_or(lr);
            group.weight_decay = given.weight_decay.value_or(weight_decay);
            group.momentum = momentum;
            check_at_least<T>(name_, minigrad::detail::format("param group #{}'s lr", g), group.lr, 0.0);
            check_at_least<T>(name_, minigrad::detail::format("param group #{}'s weight_decay", g), group.weight_decay, 0.0);
            for (auto& p : given.params) {
                group.members.push_back(params_.size());
                params_.push_back(std::move(p));
            }
            groups_.push_back(std::move(group));
        }
        check_params(name_, params_);  // a tensor in two groups is one parameter listed twice
        buffers_.resize(params_.size());
        steps_.resize(params_.size());
        // Made now, not in the first step(): made there, after that step's graph was freed, it
        // would take a block the next step's forward pass needs, and step 2 would allocate.
        for (auto& g : groups_)
            for (std::size_t i : g.members) lr_on(g, params_[i].device());
    }

    // A momentum the optimizer refuses (set_group_momentum): its own checks, as its constructor's.
    virtual void check_momentum(const std::string& what, double momentum) const = 0;
    // The rule of SGD's and RMSprop's momentum: >= 0, and able to change only where the buffers exist
    // (momentum > 0 when the optimizer was made or loaded).
    void check_buffered_momentum(const std::string& what, double momentum, bool buffered) const {
        check_at_least<T>(name_, what, momentum, 0.0);
        if (!buffered) {
            minigrad::detail::fail<ValueError>("{}: {} can change only where momentum was > 0 when the optimizer was made (its buffers are "
                                               "made then); got {}",
                                               name_, what, momentum);
        }
    }
    // Every group's momentum, from a state file the optimizer has checked.
    void put_momentum_everywhere(double momentum) {
        for (auto& g : groups_) put_momentum(g, momentum);
    }

    // One step: every parameter that requires grad and received a gradient since zero_grad() is
    // updated (PyTorch skips those whose .grad is None; is_stepped) by kernels::LaneUpdate with the
    // rule make_rule(hyper, weight_decay) gives for its group: the address of the group's learning
    // rate and momentum ({lr, momentum}, two doubles) on the parameter's device, and the group's
    // weight decay. One launch per eight parameters of a
    // group on one device.
    template <class MakeRule>
    void apply(const MakeRule& make_rule) {
        kernels::LaneTable<T> table{};
        int device = 0;
        for (auto& group : groups_) {
            auto flush = [&] {
                if (table.count == 0) return;
                const auto rule = make_rule(lr_on(group, device), group.weight_decay);
                B::launch(table.lane_offset[table.count], kernels::LaneUpdate<T, std::remove_const_t<decltype(rule)>>{table, rule}, device);
                table = {};
            };
            for (std::size_t i : group.members) {
                auto& impl = params_[i].impl();
                if (!is_stepped(impl)) continue;
                if (!steps_[i].defined()) create_state(i);
                if (table.count == kernels::LaneTable<T>::capacity || (table.count > 0 && impl.device != device)) flush();
                const int t = table.count++;
                device = impl.device;
                table.param[t] = impl.data;
                minigrad::detail::mark_modified(impl);
                table.grad[t] = impl.grad->data;
                for (std::size_t k = 0; k < buffer_names_.size(); ++k) table.buffer[k][t] = buffers_[i][k].data();
                table.step[t] = steps_[i].data();
                table.numel[t] = impl.numel();
                table.lane_offset[t + 1] = table.lane_offset[t] + steps_[i].numel();
            }
            flush();
        }
    }

    // Writes "state.<i>.<buffer>" and "state.<i>.step" (as PyTorch's state_dict names them) for
    // each parameter i with state, and in the metadata the optimizer's name, `hyper` (printed so
    // they read back exactly) and "param_shapes", which load_state checks. Atomic (host reads).
    void save(const std::filesystem::path& path, io::Metadata hyper) const {
        std::vector<io::TensorData> tensors;
        for (std::size_t i = 0; i < params_.size(); ++i) {
            if (!steps_[i].defined() || (!steps_in_state_ && buffers_[i].empty())) continue;
            const std::vector<std::int64_t> shape(params_[i].shape().begin(), params_[i].shape().end());
            for (std::size_t k = 0; k < buffer_names_.size(); ++k) {
                const auto values = buffers_[i][k].to_vector();
                tensors.push_back(io::TensorData::from<T>(minigrad::detail::format("state.{}.{}", i, buffer_names_[k]), shape, values));
            }
            if (!steps_in_state_) continue;
            const auto lanes = steps_[i].to_vector();
            MINIGRAD_ASSERT(std::all_of(lanes.begin(), lanes.end(), [&](std::int64_t s) { return s == lanes.front(); }));
            tensors.push_back(io::TensorData::from<std::int64_t>(minigrad::detail::format("state.{}.step", i), {}, std::span(lanes.data(), 1)));
        }
        hyper["optimizer"] = name_;
        hyper["param_shapes"] = shapes_json();
        hyper["param_groups"] = minigrad::detail::format("{}", groups_.size());
        for (std::size_t g = 0; g < groups_.size(); ++g) {
            hyper[minigrad::detail::format("param_group.{}.params", g)] = group_members_text(g);
            hyper[minigrad::detail::format("param_group.{}.lr", g)] = minigrad::detail::format("{}", groups_[g].lr);
            hyper[minigrad::detail::format("param_group.{}.weight_decay", g)] = minigrad::detail::format("{}", groups_[g].weight_decay);
        }
        io::save_safetensors(path, tensors, hyper);
    }

    // Restores what save wrote, for an optimizer whose buffers are now `buffer_names` and whose
    // learning rate is `lr` (both from the file, already checked by the caller). Checks the whole
    // file before changing anything: the parameters' shapes, every tensor's name, shape and dtype,
    // and that a parameter has all its state or none.
    // A file with "param_groups" (saved since groups exist) must have this optimizer's groups, with
    // the same parameters in each ("param_group.<g>.params"); each group's lr and weight_decay are
    // restored from it. Without it (one group), lr and weight_decay apply to every group.
    void restore(const StateFile& state, std::vector<std::string> buffer_names, double lr, double weight_decay) {
        state.check_param_shapes(params_);
        std::vector<std::pair<double, double>> settings(groups_.size(), {lr, weight_decay});
        if (state.file.metadata.count("param_groups")) {
            if (state.meta("param_groups") != minigrad::detail::format("{}", groups_.size())) {
                state.fail(minigrad::detail::format("has {} param groups, this optimizer {}", io::detail::quote(state.meta("param_groups")), groups_.size()));
            }
            for (std::size_t g = 0; g < groups_.size(); ++g) {
                const auto& members = state.meta(minigrad::detail::format("param_group.{}.params", g));
                if (members != group_members_text(g)) {
                    state.fail(minigrad::detail::format("has param group #{} of parameters {}, this optimizer's holds {}", g, io::detail::quote(members),
                                           group_members_text(g)));
                }
                settings[g] = {state.number(minigrad::detail::format("param_group.{}.lr", g)), state.number(minigrad::detail::format("param_group.{}.weight_decay", g))};
                check_at_least<T>(state.who, minigrad::detail::format("param group #{}'s lr", g), settings[g].first, 0.0);
                check_at_least<T>(state.who, minigrad::detail::format("param group #{}'s weight_decay", g), settings[g].second, 0.0);
            }
        }
        const std::size_t per_param = buffer_names.size() + (steps_in_state_ ? 1 : 0);
        const std::string kept = minigrad::detail::join(steps_in_state_ ? with_step(buffer_names) : buffer_names);
        std::vector<std::vector<std::vector<T>>> values(params_.size());
        std::vector<std::int64_t> steps(params_.size(), 0);
        std::vector<std::size_t> found(params_.size(), 0);
        for (const auto& t : state.file.tensors) {
            auto [i, k] = locate(t.name, buffer_names);
            if (i == params_.size()) {
                state.fail(minigrad::detail::format("stores {}, which is no state of this optimizer's {} parameters (kept per parameter: {})",
                                       io::detail::quote(t.name), params_.size(), kept));
            }
            ++found[i];
            if (k == buffer_names.size()) {
                if (t.dtype != io::Dtype::I64 || !t.shape.empty()) {
                    state.fail(minigrad::detail::format("stores '{}' as {} of shape {}, expected an I64 scalar", t.name, io::dtype_name(t.dtype),
                                           io::detail::shape_text(t.shape)));
                }
                steps[i] = t.values<std::int64_t>().front();
                if (steps[i] < 1) state.fail(minigrad::detail::format("stores '{}' = {}, expected a step count >= 1", t.name, steps[i]));
                continue;
            }
            if (!std::equal(t.shape.begin(), t.shape.end(), params_[i].shape().begin(), params_[i].shape().end())) {
                state.fail(minigrad::detail::format("stores '{}' with shape {}, parameter #{} has {}", t.name, io::detail::shape_text(t.shape), i,
                                       params_[i].shape()));
            }
            values[i].resize(buffer_names.size());
            values[i][k] = io::to_floating<T>(t, state.optimizer + "::load_state", state.path);
        }
        for (std::size_t i = 0; i < params_.size(); ++i) {
            if (found[i] != 0 && found[i] != per_param) {
                state.fail(minigrad::detail::format("has {} of the {} state tensors of parameter #{} ({})", found[i], per_param, i, kept));
            }
        }

        buffer_names_ = std::move(buffer_names);
        for (std::size_t i = 0; i < params_.size(); ++i) {
            buffers_[i].clear();
            steps_[i] = Tensor<B, std::int64_t>();
            if (found[i] == 0) continue;
            const int device = params_[i].device();
            for (auto& v : values[i]) buffers_[i].push_back(Tensor<B, T>::from(std::span<const T>(v), params_[i].shape(), device));
            steps_[i] = Tensor<B, std::int64_t>::full(Shape{lanes_for(params_[i].numel())}, steps_in_state_ ? steps[i] : 1, device);
        }
        for (std::size_t g = 0; g < groups_.size(); ++g) {
            set_group_lr(g, settings[g].first);
            groups_[g].weight_decay = settings[g].second;
        }
    }

    const std::string& name() const { return name_; }

  private:
    static std::int64_t lanes_for(std::int64_t numel) { return B::is_host ? 1 : std::clamp<std::int64_t>(numel, 1, lane_cap); }

    void create_state(std::size_t i) {
        const auto& p = params_[i];
        buffers_[i].clear();
        for (std::size_t k = 0; k < buffer_names_.size(); ++k) buffers_[i].push_back(minigrad::detail::state_tensor<B, T>(p.shape(), p.device(), T(0)));
        steps_[i] = minigrad::detail::state_tensor<B, std::int64_t>(Shape{lanes_for(p.numel())}, p.device(), std::int64_t{0});
    }

    // "state.<i>.<name>" -> (i, index of name in buffer_names, or buffer_names.size() for "step");
    // (params_.size(), 0) when it is no such name.
    std::pair<std::size_t, std::size_t> locate(const std::string& tensor, const std::vector<std::string>& buffer_names) const {
        for (std::size_t i = 0; i < params_.size(); ++i) {
            const std::string prefix = minigrad::detail::format("state.{}.", i);
            if (tensor.rfind(prefix, 0) != 0) continue;
            const std::string rest = tensor.substr(prefix.size());
            if (rest == "step" && steps_in_state_) return {i, buffer_names.size()};
            for (std::size_t k = 0; k < buffer_names.size(); ++k)
                if (rest == buffer_names[k]) return {i, k};
        }
        return {params_.size(), 0};
    }

    std::string shapes_json() const { return param_shapes_json(params_); }
    static std::vector<std::string> with_step(std::vector<std::string> names) {
        names.insert(names.begin(), "step");
        return names;
    }

    struct Group {
        std::vector<std::size_t> members;  // positions in params_
        double lr = 0, weight_decay = 0, momentum = 0;
        std::vector<Tensor<B, double>> lr_on_device;  // {lr, momentum}, one per device its parameters are on
    };
    void put_momentum(Group& g, double momentum) {
        g.momentum = momentum;
        for (auto& hyper : g.lr_on_device) B::upload(hyper.data() + 1, &momentum, sizeof(double), hyper.device());
    }

    std::size_t checked_group(std::size_t group) const {
        if (group >= groups_.size()) minigrad::detail::fail<ValueError>("{}: param group #{} asked, the optimizer has {}", name_, group, groups_.size());
        return group;
    }

    // A group's learning rate and momentum, two doubles in backend memory on `device`, made on first use.
    const double* lr_on(Group& group, int device) {
        for (auto& rate : group.lr_on_device)
            if (rate.device() == device) return rate.data();
        group.lr_on_device.push_back(Tensor<B, double>::full(Shape{2}, group.lr, device));
        B::upload(group.lr_on_device.back().data() + 1, &group.momentum, sizeof(double), device);
        return group.lr_on_device.back().data();
    }

    // "[0, 1, 2]": the positions of group g's parameters
    std::string group_members_text(std::size_t g) const { return minigrad::detail::bracketed(groups_[g].members); }

    std::string name_;
    std::vector<Tensor<B, T>> params_;  // every group's, in group order
    std::vector<Group> groups_;
    std::vector<std::string> buffer_names_;
    std::vector<std::vector<Tensor<B, T>>> buffers_;  // per parameter, in buffer_names_ order; empty before its first step
    std::vector<Tensor<B, std::int64_t>> steps_;      // per parameter: (lanes); undefined before its first step
    bool steps_in_state_;
};

}  // namespace minigrad::optim::detail
