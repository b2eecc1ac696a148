// Sequential: layers applied in order, named "0", "1", ... as in torch.nn.Sequential.
// The layer types are part of the type, so each call is resolved (and inlined) at compile time.
// Any layer goes: a Module (Linear, LayerNorm, Embedding, a model), a layer with a mode (Dropout)
// or a stateless one (ReLU, Tanh). to<B2>() moves the whole stack in one call.
#pragma once

#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "linear.hpp"
#include "module.hpp"

namespace minigrad::nn {
namespace detail {
template <class L, class = void>
struct has_backend : std::false_type {};
template <class L>
struct has_backend<L, std::void_t<typename L::backend_type>> : std::true_type {};

template <class...>
inline constexpr bool no_layer_has_parameters = false;

// The first layer with a backend, looked at lazily: layers after it may have none (a trailing ReLU).
template <class... Layers>
struct first_module {
    static_assert(no_layer_has_parameters<Layers...>, "minigrad: a Sequential needs at least one layer with parameters (e.g. a Linear)");
};
template <class L, class... Rest>
struct first_module<L, Rest...> {
    using type = typename std::conditional_t<has_backend<L>::value, std::type_identity<L>, first_module<Rest...>>::type;
};

// Whether Layer, given Input, takes Next as its product's epilogue: a Linear, then ReLU, Tanh,
// Sigmoid or GELU. Next is void past the last layer.
template <class Layer, class Next, class Input>
constexpr bool takes_epilogue() {
    if constexpr (is_linear<Layer> && requires { typename Input::value_type; })
        return EpilogueActivation<Next, typename Input::value_type>;
    return false;
}

// A layer on backend B2: a Module rebuilds itself there; a layer without a backend is copied.
template <class B2, class L>
auto layer_to(const L& layer) {
    if constexpr (has_backend<L>::value) {
        static_assert(requires { layer.template to<B2>(); },
                      "minigrad: this Sequential layer has parameters but no to<B2>() taking no arguments; give it one");
        return layer.template to<B2>();
    } else {
        return layer;
    }
}
}  // namespace detail

template <class... Layers>
class Sequential : public Module<typename detail::first_module<Layers...>::type::backend_type,
                                 typename detail::first_module<Layers...>::type::value_type> {
  public:
    explicit Sequential(Layers... layers) : layers_(std::move(layers)...) {}

    template <class Input>
    auto forward(const Input& x) {
        return apply<0>(x);
    }
    template <class Input>
    auto operator()(const Input& x) {
        return forward(x);
    }

    void visit_parameters(ParameterVisitor& visitor, const std::string& prefix) override {
        visit<0>(visitor, prefix);
    }
    void visit_modules(ModuleVisitor& visitor, const std::string& prefix) override {
        visitor.module(prefix, this->training_);
        visit<0>(visitor, prefix.empty() ? prefix : prefix + ".");
    }

    // This stack on backend B2: every layer moved (its values and mode kept), no argument repeated.
    template <class B2>
    auto to() const {
        auto out = std::apply([](const Layers&... layers) { return Sequential<decltype(detail::layer_to<B2>(layers))...>(detail::layer_to<B2>(layers)...); },
                              layers_);
        out.set_training_flags(this->training_flags());
        return out;
    }

    template <std::size_t I>
    auto& layer() {
        return std::get<I>(layers_);
    }

  private:
    template <std::size_t I>
    using layer_type = std::tuple_element_t<I, std::tuple<Layers..., void>>;  // void past the last

    // A layer that takes the next one as its epilogue (a Linear, then ReLU, Tanh, Sigmoid or GELU)
    // runs both in one launch.
    template <std::size_t I, class Input>
    auto apply(const Input& x) {
        if constexpr (I == sizeof...(Layers)) {
            return x;
        } else if constexpr (detail::takes_epilogue<layer_type<I>, layer_type<I + 1>, Input>()) {
            return apply<I + 2>(std::get<I>(layers_).forward(x, std::get<I + 1>(layers_)));
        } else {
            return apply<I + 1>(std::get<I>(layers_)(x));
        }
    }
    template <std::size_t I, class Visitor>
    void visit(Visitor& visitor, const std::string& prefix) {
        if constexpr (I < sizeof...(Layers)) {
            detail::visit_member(visitor, prefix + std::to_string(I), std::get<I>(layers_));
            visit<I + 1>(visitor, prefix);
        }
    }

    std::tuple<Layers...> layers_;
};

}  // namespace minigrad::nn
