// Module: the base of every layer and model. A model lists its members once with
// MINIGRAD_MODULE(fc1, fc2); that gives it parameters()/named_parameters() (names as PyTorch's:
// "fc1.weight"), operator() calling its forward(), to<B2>() that rebuilds it on another backend
// with the same parameter values and train/eval modes, train()/eval() that switch every layer in
// the tree (Dropout), and save()/load() in safetensors with PyTorch's state_dict names.
#pragma once

#include <algorithm>
#include <cstdint>
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
    // A buffer: state that is saved, loaded and moved with the module but is not trained
    // (BatchNorm's running statistics). A Tensor<B, T> or a Tensor<B, std::int64_t> (a count).
    // Visitors that want parameters only leave it as it is.
    virtual void buffer(const std::string& /*name*/, void* /*tensor*/, const std::type_info& /*type*/) {}
};

// What to do with names that a file and a model do not share (Module::load).
struct LoadOptions {
    bool strict = true;  // as load_state_dict: false skips them and reports them
};
// The names load() skipped, as load_state_dict's result: the model's names the file lacks and the
// file's names the model lacks.
struct LoadReport {
    std::vector<std::string> missing_keys;
    std::vector<std::string> unexpected_keys;
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
    // Every buffer by name: values of T (running statistics) and counts (num_batches_tracked).
    struct NamedBuffers {
        std::vector<std::pair<std::string, Tensor<B, T>>> values;
        std::vector<std::pair<std::string, Tensor<B, std::int64_t>>> counts;
    };
    NamedBuffers named_buffers() const {
        struct Collect : ParameterVisitor {
            NamedBuffers out;
            void parameter(const std::string&, void*, const std::type_info&) override {}
            void buffer(const std::string& name, void* tensor, const std::type_info& type) override {
                if (type == typeid(Tensor<B, T>)) {
                    out.values.emplace_back(name, *static_cast<Tensor<B, T>*>(tensor));
                } else if (type == typeid(Tensor<B, std::int64_t>)) {
                    out.counts.emplace_back(name, *static_cast<Tensor<B, std::int64_t>*>(tensor));
                } else {
                    minigrad::detail::fail<Error>("named_buffers: buffer '{}' has another backend or element type than its module", name);
                }
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
        auto my_buffers = named_buffers();
        const auto their_buffers = other.named_buffers();
        auto check_buffers = [](const auto& a, const auto& b) {
            if (a.size() != b.size()) {
                minigrad::detail::fail<ShapeError>("load_parameters_from: the source has {} buffers, this model has {}", b.size(), a.size());
            }
            for (std::size_t i = 0; i < a.size(); ++i) {
                if (a[i].first != b[i].first || a[i].second.shape() != b[i].second.shape()) {
                    minigrad::detail::fail<ShapeError>("load_parameters_from: buffer #{} is '{}' {} here but '{}' {} in the source", i, a[i].first,
                                                       a[i].second.shape(), b[i].first, b[i].second.shape());
                }
            }
        };
        check_buffers(my_buffers.values, their_buffers.values);
        check_buffers(my_buffers.counts, their_buffers.counts);
        auto copy = [](auto& dst, const auto& src) {
            if (src.numel() > 0) minigrad::detail::transfer<B, B2>(dst.data(), dst.device(), src.data(), src.device(), src.impl().bytes());
            minigrad::detail::mark_modified(dst.impl());
        };
        for (std::size_t i = 0; i < mine.size(); ++i) copy(mine[i].second, theirs[i].second);
        for (std::size_t i = 0; i < my_buffers.values.size(); ++i) copy(my_buffers.values[i].second, their_buffers.values[i].second);
        for (std::size_t i = 0; i < my_buffers.counts.size(); ++i) copy(my_buffers.counts[i].second, their_buffers.counts[i].second);
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
        const auto buffers = named_buffers();
        for (auto& [name, b] : buffers.values) {
            const auto values = b.to_vector();
            tensors.push_back(io::TensorData::from<T>(name, std::vector<std::int64_t>(b.shape().begin(), b.shape().end()), values));
        }
        for (auto& [name, b] : buffers.counts) {
            const auto values = b.to_vector();
            tensors.push_back(io::TensorData::from<std::int64_t>(name, std::vector<std::int64_t>(b.shape().begin(), b.shape().end()), values));
        }
        io::save_safetensors(path, tensors, {{"format", "pt"}});
    }

    // Reads a safetensors file of this model's parameters and buffers, as load_state_dict: F32,
    // F64, F16 and BF16 are converted to T, counts read from I64 or I32. The file is checked whole
    // before anything changes. Strict (the default), every name must match both ways; with
    // {.strict = false}, names only one side has are skipped and returned. A shape that differs is
    // an error either way.
    LoadReport load(const std::filesystem::path& path, LoadOptions options = {}) {
        const auto file = io::load_safetensors(path);
        LoadReport report;
        std::vector<std::string> known;
        auto find = [&](const std::string& name, const Shape& shape) -> const io::TensorData* {
            known.push_back(name);
            const auto* t = file.find(name);
            if (!t) {
                if (options.strict) {
                    minigrad::detail::fail<IoError>("load: {} has no tensor '{}' (shape {}) for this model", io::detail::quote_path(path), name, shape);
                }
                report.missing_keys.push_back(name);
                return nullptr;
            }
            if (!std::equal(t->shape.begin(), t->shape.end(), shape.begin(), shape.end())) {
                minigrad::detail::fail<ShapeError>("load: {} stores '{}' with shape {}, this model's is {}", io::detail::quote_path(path), name,
                                                   io::detail::shape_text(t->shape), shape);
            }
            return t;
        };
        std::map<std::string, HostArray<T>> values;
        auto params = named_parameters();
        for (auto& [name, p] : params) {
            if (const auto* t = find(name, p.shape())) values[name] = {p.shape(), io::to_floating<T>(*t, "load", path)};
        }
        auto buffers = named_buffers();
        std::vector<std::vector<T>> buffer_values(buffers.values.size());
        std::vector<std::vector<std::int64_t>> count_values(buffers.counts.size());
        for (std::size_t i = 0; i < buffers.values.size(); ++i) {
            if (const auto* t = find(buffers.values[i].first, buffers.values[i].second.shape())) buffer_values[i] = io::to_floating<T>(*t, "load", path);
        }
        for (std::size_t i = 0; i < buffers.counts.size(); ++i) {
            if (const auto* t = find(buffers.counts[i].first, buffers.counts[i].second.shape())) count_values[i] = io::to_integers(*t, "load", path);
        }
        for (const auto& t : file.tensors) {
            if (std::find(known.begin(), known.end(), t.name) != known.end()) continue;
            if (options.strict) {
                minigrad::detail::fail<IoError>("load: {} stores {}, which is not a parameter or buffer of this model", io::detail::quote_path(path),
                                                io::detail::quote(t.name));
            }
            report.unexpected_keys.push_back(t.name);
        }
        for (auto& [name, p] : params) {
            auto it = values.find(name);
            if (it == values.end()) continue;
            if (!it->second.values.empty()) B::upload(p.data(), it->second.values.data(), it->second.values.size() * sizeof(T), p.device());
            minigrad::detail::mark_modified(p.impl());
        }
        auto upload = [](auto& tensor, const auto& host) {
            if (host.empty()) return;  // skipped (not strict), or no elements
            B::upload(tensor.data(), host.data(), host.size() * sizeof(host[0]), tensor.device());
            minigrad::detail::mark_modified(tensor.impl());
        };
        for (std::size_t i = 0; i < buffers.values.size(); ++i) upload(buffers.values[i].second, buffer_values[i]);
        for (std::size_t i = 0; i < buffers.counts.size(); ++i) upload(buffers.counts[i].second, count_values[i]);
        return report;
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
template <class X>
struct is_std_vector : std::false_type {};
template <class X, class A>
struct is_std_vector<std::vector<X, A>> : std::true_type {};

// A member is a parameter (a Tensor), a child module (recursed into), a std::vector of either (as
// torch.nn.ModuleList / ParameterList: element i is named "<member>.<i>"), or stateless (ReLU):
// skipped.
template <class X>
void visit_member(ParameterVisitor& v, const std::string& name, X& member) {
    if constexpr (minigrad::detail::is_tensor<X>::value) {
        if (member.defined()) v.parameter(name, &member, typeid(X));
    } else if constexpr (requires { member.visit_parameters(v, name); }) {
        member.visit_parameters(v, name + ".");
    } else if constexpr (is_std_vector<X>::value) {
        for (std::size_t i = 0; i < member.size(); ++i) visit_member(v, name + "." + std::to_string(i), member[i]);
    }
}

// A buffer (a layer's visit_parameters reports its own with this): skipped where undefined.
template <class X>
void visit_buffer(ParameterVisitor& v, const std::string& name, X& tensor) {
    if (tensor.defined()) v.buffer(name, &tensor, typeid(X));
}

// A member with a mode (a Module, Dropout) reports it and its children's; others are skipped.
template <class X>
void visit_member(ModuleVisitor& v, const std::string& name, X& member) {
    if constexpr (requires { member.visit_modules(v, name); }) {
        member.visit_modules(v, name);
    } else if constexpr (is_std_vector<X>::value) {
        for (std::size_t i = 0; i < member.size(); ++i) visit_member(v, name + "." + std::to_string(i), member[i]);
    }
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
