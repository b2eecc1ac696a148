// Module: the base of every layer and model. A model lists its members once with
// MINIGRAD_MODULE(fc1, fc2); that gives it parameters()/named_parameters() (names as PyTorch's:
// "fc1.weight"), operator() calling its forward(), to<B2>() that rebuilds it on another backend
// with the same parameter values and train/eval modes, train()/eval() that switch every layer in
// the tree (Dropout), and save()/load() in safetensors with PyTorch's state_dict names.
#pragma once

#include <filesystem>
#include <limits>
#include <type_traits>
#include <map>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "../io/safetensors.hpp"
#include "../tensor.hpp"

namespace minigrad::nn {

// Sees every parameter of a module tree. Type-erased so that a model's visit function, written by
// MINIGRAD_MODULE inside a class template, needs no dependent types.
class ParameterVisitor {
  public:
    virtual ~ParameterVisitor() = default;
    virtual void parameter(const std::string& name, void* tensor, const std::type_info& type) = 0;
};

// Sees every module of a tree (itself first, then its children in order) with its training flag:
// how train()/eval() reach layers that are not Modules (Dropout) and how to<B2>() carries modes.
class ModuleVisitor {
  public:
    virtual ~ModuleVisitor() = default;
    virtual void module(const std::string& name, bool& training) = 0;
};

// A parameter's values on the host with their shape.
template <class T>
struct HostArray {
    Shape shape;
    std::vector<T> values;
    friend bool operator==(const HostArray&, const HostArray&) = default;
};

namespace detail {
// While set, a layer's constructor skips random initialisation: its values are about to be
// overwritten (to<B2>(), loading), and drawing them would move the global generator. Per thread:
// another thread's constructions still draw.
inline bool& skip_init_flag() {
    thread_local bool skip = false;
    return skip;
}
struct SkipInitGuard {
    bool previous = skip_init_flag();
    SkipInitGuard() { skip_init_flag() = true; }
    ~SkipInitGuard() { skip_init_flag() = previous; }
};
}  // namespace detail

template <class B, class T = float>
class Module {
  public:
    using backend_type = B;
    using value_type = T;
    using Parameter = Tensor<B, T>;

    virtual ~Module() = default;

    // Reports each parameter (and recurses into child modules) with its dotted name.
    virtual void visit_parameters(ParameterVisitor& visitor, const std::string& prefix) = 0;

    // Reports this module's training flag, then each child's (recursing), with dotted names.
    // Modules with children (MINIGRAD_MODULE, Sequential) override it.
    virtual void visit_modules(ModuleVisitor& visitor, const std::string& prefix) { visitor.module(prefix, training_); }

    // As PyTorch: train(false) is eval(); both set every module of the tree and return this one.
    Module& train(bool on = true) {
        struct Set : ModuleVisitor {
            bool on;
            void module(const std::string&, bool& training) override { training = on; }
        } set;
        set.on = on;
        visit_modules(set, "");
        return *this;
    }
    Module& eval() { return train(false); }
    bool is_training() const { return training_; }

    std::vector<std::pair<std::string, Parameter>> named_parameters() const {
        struct Collect : ParameterVisitor {
            std::vector<std::pair<std::string, Parameter>> out;
            void parameter(const std::string& name, void* tensor, const std::type_info& type) override {
                if (type != typeid(Parameter)) {
                    minigrad::detail::fail<Error>("named_parameters: parameter '{}' has another backend or element type than its module", name);
                }
                out.emplace_back(name, *static_cast<Parameter*>(tensor));
            }
        } collect;
        const_cast<Module*>(this)->visit_parameters(collect, "");
        return std::move(collect.out);
    }
    std::vector<Parameter> parameters() const {
        std::vector<Parameter> out;
        for (auto& [name, p] : named_parameters()) out.push_back(p);
        return out;
    }
    void zero_grad() {
        for (auto& p : parameters()) p.zero_grad();
    }

    // Host copies of every parameter by name, with shapes (host reads).
    std::map<std::string, HostArray<T>> parameter_values() const {
        std::map<std::string, HostArray<T>> out;
        for (auto& [name, p] : named_parameters()) out[name] = {p.shape(), p.to_vector()};
        return out;
    }

    // Sets parameters from host arrays by name. Every name, shape and size is checked before any
    // parameter is written, so a bad argument changes nothing.
    void load_parameters(const std::map<std::string, HostArray<T>>& values) {
        auto params = named_parameters();
        for (auto& [name, p] : params) {
            auto it = values.find(name);
            if (it == values.end()) {
                minigrad::detail::fail<ValueError>("load_parameters: no values given for parameter '{}' (shape {})", name, p.shape());
            }
            if (it->second.shape != p.shape()) {
                minigrad::detail::fail<ShapeError>("load_parameters: '{}' is given with shape {}, this model's is {}", name,
                                                   it->second.shape, p.shape());
            }
            if (static_cast<std::int64_t>(it->second.values.size()) != p.numel()) {
                minigrad::detail::fail<ShapeError>("load_parameters: '{}' has {} values, expected {} for shape {}", name,
                                                   it->second.values.size(), p.numel(), p.shape());
            }
        }
        for (auto& [name, v] : values) {
            bool known = false;
            for (auto& [pname, p] : params) known = known || pname == name;
            if (!known) minigrad::detail::fail<ValueError>("load_parameters: '{}' is not a parameter of this model", name);
        }
        for (auto& [name, p] : params) {
            const auto& v = values.at(name).values;
            if (!v.empty()) B::upload(p.data(), v.data(), v.size() * sizeof(T), p.device());
            minigrad::detail::mark_modified(p.impl());
        }
    }

    // Copies every parameter's values from a module of the same structure on any backend.
    template <class B2>
    void load_parameters_from(const Module<B2, T>& other) {
        auto mine = named_parameters();
        auto theirs = other.named_parameters();
        if (mine.size() != theirs.size()) {
            minigrad::detail::fail<ShapeError>("load_parameters_from: the source has {} parameters, this model has {}", theirs.size(), mine.size());
        }
        for (std::size_t i = 0; i < mine.size(); ++i) {
            if (mine[i].first != theirs[i].first || mine[i].second.shape() != theirs[i].second.shape()) {
                minigrad::detail::fail<ShapeError>("load_parameters_from: parameter #{} is '{}' {} here but '{}' {} in the source", i,
                                                   mine[i].first, mine[i].second.shape(), theirs[i].first, theirs[i].second.shape());
            }
        }
        for (std::size_t i = 0; i < mine.size(); ++i) {
            const auto& src = theirs[i].second;
            auto& dst = mine[i].second;
            minigrad::detail::transfer<B, B2>(dst.data(), dst.device(), src.data(), src.device(), src.impl().bytes());
            minigrad::detail::mark_modified(dst.impl());
        }
    }

    // Writes every parameter to `path` as safetensors, atomically, named as PyTorch's state_dict
    // ("fc1.weight") and with its metadata {"format": "pt"}, so safetensors.torch.load_file and
    // load_state_dict take it as it is.
    void save(const std::filesystem::path& path) const {
        std::vector<io::TensorData> tensors;
        for (auto& [name, p] : named_parameters()) {
            const auto values = p.to_vector();
            tensors.push_back(io::TensorData::from<T>(name, std::vector<std::int64_t>(p.shape().begin(), p.shape().end()), values));
        }
        io::save_safetensors(path, tensors, {{"format", "pt"}});
    }

    // Reads a safetensors file of exactly this model's parameters (F32 or F64, converted to T as
    // load_state_dict converts). The file is checked whole before any parameter changes.
    void load(const std::filesystem::path& path) {
        const auto file = io::load_safetensors(path);
        std::map<std::string, HostArray<T>> values;
        for (auto& [name, p] : named_parameters()) {
            const auto* t = file.find(name);
            if (!t) minigrad::detail::fail<IoError>("load: {} has no tensor '{}' (shape {}) for this model", io::detail::quote_path(path), name, p.shape());
            if (!std::equal(t->shape.begin(), t->shape.end(), p.shape().begin(), p.shape().end())) {
                minigrad::detail::fail<ShapeError>("load: {} stores '{}' with shape {}, this model's is {}", io::detail::quote_path(path), name,
                                                   io::detail::shape_text(t->shape), p.shape());
            }
            values[name] = {p.shape(), io::to_floating<T>(*t, "load", path)};
        }
        for (const auto& t : file.tensors) {
            if (!values.count(t.name)) {
                minigrad::detail::fail<IoError>("load: {} stores {}, which is not a parameter of this model", io::detail::quote_path(path), io::detail::quote(t.name));
            }
        }
        load_parameters(values);
    }

    // Each module's training flags, in visit order (for to<B2>(), which rebuilds a tree of the same
    // structure on another backend and gives every module its source's mode back).
    std::vector<bool> training_flags() const {
        struct Collect : ModuleVisitor {
            std::vector<bool> flags;
            void module(const std::string&, bool& training) override { flags.push_back(training); }
        } collect;
        const_cast<Module*>(this)->visit_modules(collect, "");
        return std::move(collect.flags);
    }
    void set_training_flags(const std::vector<bool>& flags) {
        struct Set : ModuleVisitor {
            const std::vector<bool>* flags;
            std::size_t next = 0;
            void module(const std::string&, bool& training) override {
                MINIGRAD_ASSERT(next < flags->size());
                training = (*flags)[next++];
            }
        } set;
        set.flags = &flags;
        visit_modules(set, "");
    }

  protected:
    bool training_ = true;  // as torch.nn.Module: a module is built in training mode
};

namespace detail {
// A member is a parameter (a Tensor), a child module (recursed into), or stateless (ReLU): skipped.
template <class X>
void visit_member(ParameterVisitor& v, const std::string& name, X& member) {
    if constexpr (minigrad::detail::is_tensor<X>::value) {
        if (member.defined()) v.parameter(name, &member, typeid(X));
    } else if constexpr (requires { member.visit_parameters(v, name); }) {
        member.visit_parameters(v, name + ".");
    }
}

// A member with a mode (a Module, Dropout) reports it and its children's; others are skipped.
template <class X>
void visit_member(ModuleVisitor& v, const std::string& name, X& member) {
    if constexpr (requires { member.visit_modules(v, name); }) member.visit_modules(v, name);
}

// names is the stringised member list "fc1, fc2"; members are those members in order. Visitor is
// a ParameterVisitor (names get a "." before a child's own) or a ModuleVisitor.
template <class Visitor, class... Members>
void visit_members(Visitor& v, const std::string& prefix, std::string_view names, Members&... members) {
    auto next_name = [&names]() {
        while (!names.empty() && (names.front() == ' ' || names.front() == ',')) names.remove_prefix(1);
        const auto end = names.find(',');
        std::string_view name = names.substr(0, end);
        while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
        names.remove_prefix(end == std::string_view::npos ? names.size() : end);
        return std::string(name);
    };
    if constexpr (std::is_base_of_v<ModuleVisitor, Visitor>) {
        // a child's name is its dotted path ("block.drop"), as in named_modules()
        const std::string dot = prefix.empty() ? "" : prefix + ".";
        (visit_member(v, dot + next_name(), members), ...);
    } else {
        (visit_member(v, prefix + next_name(), members), ...);
    }
}

template <class M, class B2>
struct rebind_backend;
template <template <class, class...> class M, class B, class... Rest, class B2>
struct rebind_backend<M<B, Rest...>, B2> {
    using type = M<B2, Rest...>;
};
}  // namespace detail

// A module built with no random draws, as torch.nn.utils.skip_init: for weights about to be loaded
// (load(), load_parameters()). Construction does not move the generator, so what a program draws
// afterwards does not depend on whether it loaded a model. Until loaded, every parameter is NaN, so
// a forgotten load shows as a NaN loss instead of training on whatever memory held.
//   auto model = mg::nn::skip_init<MLP<mg::Cpu>>(hidden);  model.load("model.safetensors");
template <class M, class... Args>
M skip_init(Args&&... args) {
    M module = [&] {
        detail::SkipInitGuard skip;
        return M(std::forward<Args>(args)...);
    }();
    for (auto& p : module.parameters()) {
        using P = std::remove_cvref_t<decltype(p)>;
        using T = typename P::value_type;
        P::backend_type::launch(p.numel(), kernels::Fill<T>{p.data(), std::numeric_limits<T>::quiet_NaN()}, p.device());
    }
    return module;
}

// `module` rebuilt on backend B2 (constructed with `args`, no random init) with its values and
// every module's train/eval mode.
template <class B2, class M, class... Args>
auto to(const M& module, Args&&... args) {
    using Out = typename detail::rebind_backend<M, B2>::type;
    auto out = [&] {
        detail::SkipInitGuard skip;
        return Out(std::forward<Args>(args)...);
    }();
    out.load_parameters_from(module);
    const auto flags = module.training_flags();
    if (flags.size() != out.training_flags().size()) {
        minigrad::detail::fail<Error>("to: the rebuilt model has {} modules, the source {}; build it with the same arguments",
                                      out.training_flags().size(), flags.size());
    }
    out.set_training_flags(flags);
    return out;
}

}  // namespace minigrad::nn

// Lists a model's members (layers, parameters). Stateless layers may be listed or not; a layer
// with a mode (Dropout) must be listed for train()/eval() to reach it.
#define MINIGRAD_MODULE(...)                                                                          \
    void visit_parameters(::minigrad::nn::ParameterVisitor& visitor, const std::string& prefix) override { \
        ::minigrad::nn::detail::visit_members(visitor, prefix, #__VA_ARGS__, __VA_ARGS__);            \
    }                                                                                                 \
    void visit_modules(::minigrad::nn::ModuleVisitor& visitor, const std::string& prefix) override {  \
        visitor.module(prefix, this->training_);                                                      \
        ::minigrad::nn::detail::visit_members(visitor, prefix, #__VA_ARGS__, __VA_ARGS__);            \
    }                                                                                                 \
    template <class Input>                                                                            \
    auto operator()(const Input& input) {                                                             \
        return this->forward(input);                                                                  \
    }                                                                                                 \
    template <class ToBackend, class... Args>                                                         \
    auto to(Args&&... args) const {                                                                   \
        return ::minigrad::nn::to<ToBackend>(*this, std::forward<Args>(args)...);                     \
    }
