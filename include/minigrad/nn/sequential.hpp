// Sequential: layers applied in order, named "0", "1", ... as in torch.nn.Sequential.
// The layer types are part of the type, so each call is resolved (and inlined) at compile time.
#pragma once

#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "module.hpp"

namespace minigrad::nn {
namespace detail {
template <class L, class = void>
struct has_backend : std::false_type {};
template <class L>
struct has_backend<L, std::void_t<typename L::backend_type>> : std::true_type {};

template <class... Layers>
struct first_module;
template <class L, class... Rest>
struct first_module<L, Rest...> {
    using type = std::conditional_t<has_backend<L>::value, L, typename first_module<Rest...>::type>;
};
template <class L>
struct first_module<L> {
    static_assert(has_backend<L>::value, "minigrad: a Sequential needs at least one layer with parameters (e.g. a Linear)");
    using type = L;
};
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

    template <std::size_t I>
    auto& layer() {
        return std::get<I>(layers_);
    }

  private:
    template <std::size_t I, class Input>
    auto apply(const Input& x) {
        if constexpr (I == sizeof...(Layers))
            return x;
        else
            return apply<I + 1>(std::get<I>(layers_)(x));
    }
    template <std::size_t I>
    void visit(ParameterVisitor& visitor, const std::string& prefix) {
        if constexpr (I < sizeof...(Layers)) {
            detail::visit_member(visitor, prefix + std::to_string(I), std::get<I>(layers_));
            visit<I + 1>(visitor, prefix);
        }
    }

    std::tuple<Layers...> layers_;
};

}  // namespace minigrad::nn
