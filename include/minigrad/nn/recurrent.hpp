// LSTM and GRU as torch.nn.LSTM and torch.nn.GRU: one or more layers, batch_first, initial states,
// bidirectional, dropout between layers (in training), PyTorch's parameter names (weight_ih_l<k>,
// weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k>, and the same with _reverse for the backward
// direction), gate order (LSTM: input, forget, cell, output; GRU: reset, update, new) and
// initialisation (every parameter uniform in +-1/sqrt(hidden_size)), so PyTorch weights load and
// outputs match.
//
// A layer projects its whole input sequence through weight_ih in one product (every time step a
// row), then per step one product h weight_hh^T for all the gates at once and the gates'
// elementwise arithmetic, written with minigrad's ops, whose gradients are backward through time.
// A bidirectional layer runs a second cell over the reversed sequence and concatenates the two
// outputs at each step. Not yet: proj_size, packed sequences.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../ops/dropout.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/lstm_cell.hpp"
#include "../ops/matmul.hpp"
#include "../ops/shape.hpp"
#include "../ops/unary.hpp"
#include "module.hpp"

namespace minigrad::nn {

struct RecurrentOptions {
    std::int64_t num_layers = 1;
    bool bias = true;
    bool batch_first = false;  // input and output (N, L, H_in) when true, PyTorch's default (L, N, H_in) when false
    double dropout = 0.0;      // on each layer's output but the last, in training
    bool bidirectional = false;
};

// What LSTM and GRU give: output (L, N, D * hidden) (or (N, L, D * hidden) with batch_first), the
// last layer's h at every step, D = 2 directions (forward, then backward) where bidirectional, else
// 1; h_n (D * num_layers, N, hidden), each layer's and direction's last h (layer 0 forward, layer 0
// backward, layer 1 ...); c_n the same for the LSTM's cell state (undefined for a GRU).
template <class B, class T>
struct RecurrentOutput {
    Tensor<B, T> output;
    Tensor<B, T> h_n;
    Tensor<B, T> c_n;
};

namespace detail {

template <class B, class T>
class Recurrent : public Module<B, T> {
  public:
    // per layer and direction (index layer * D + direction): (gates * hidden, in), (gates * hidden,
    // hidden), (gates * hidden) x2
    std::vector<Tensor<B, T>> weight_ih, weight_hh, bias_ih, bias_hh;

    std::int64_t input_size() const { return input_size_; }
    std::int64_t hidden_size() const { return hidden_size_; }
    const RecurrentOptions& options() const { return options_; }

    void visit_parameters(ParameterVisitor& visitor, const std::string& prefix) override {
        for (std::size_t k = 0; k < weight_ih.size(); ++k) {
            const std::string l = std::to_string(k / directions()) + (k % directions() ? "_reverse" : "");
            visit_member(visitor, prefix + "weight_ih_l" + l, weight_ih[k]);
            visit_member(visitor, prefix + "weight_hh_l" + l, weight_hh[k]);
            visit_member(visitor, prefix + "bias_ih_l" + l, bias_ih[k]);
            visit_member(visitor, prefix + "bias_hh_l" + l, bias_hh[k]);
        }
    }

  protected:
    Recurrent(const char* name, std::int64_t gates, std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options, Generator& gen)
        : name_(name), input_size_(input_size), hidden_size_(hidden_size), options_(options) {
        if (input_size <= 0 || hidden_size <= 0 || options.num_layers <= 0) {
            minigrad::detail::fail<ValueError>("{}: input_size={}, hidden_size={} and num_layers={} must all be positive", name, input_size, hidden_size,
                                               options.num_layers);
        }
        minigrad::detail::check_fraction<double>(name, "dropout", options.dropout);
        const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
        const auto make = [&](Shape shape) {
            auto t = skip_init_flag() ? Tensor<B, T>::empty(shape) : Tensor<B, T>::uniform(shape, -bound, bound, gen);
            t.requires_grad_();
            return t;
        };
        for (std::int64_t k = 0; k < options.num_layers; ++k) {  // PyTorch's order: per layer and direction w_ih, w_hh, b_ih, b_hh
            for (std::int64_t d = 0; d < directions(); ++d) {
                weight_ih.push_back(make(Shape{gates * hidden_size, k == 0 ? input_size : directions() * hidden_size}));
                weight_hh.push_back(make(Shape{gates * hidden_size, hidden_size}));
                bias_ih.push_back(options.bias ? make(Shape{gates * hidden_size}) : Tensor<B, T>());
                bias_hh.push_back(options.bias ? make(Shape{gates * hidden_size}) : Tensor<B, T>());
            }
        }
    }
    std::int64_t directions() const { return options_.bidirectional ? 2 : 1; }

    // input (L, N, in) or (N, L, in) as time-major (L, N, in), with its checks
    Tensor<B, T> time_major(const Tensor<B, T>& input) const {
        minigrad::detail::check_defined(name_, input, 1, "input");
        if (input.ndim() != 3 || input.size(2) != input_size_) {
            minigrad::detail::fail<ShapeError>("{}: argument #1 'input' has shape {}, expected {} with input_size {}", name_, input.shape(),
                                               options_.batch_first ? "[N, L, H_in]" : "[L, N, H_in]", input_size_);
        }
        return options_.batch_first ? transpose(input, 0, 1) : input;
    }
    // An initial state (D * num_layers, N, hidden), or zeros where undefined
    Tensor<B, T> initial(const Tensor<B, T>& given, const char* what, std::int64_t batch, int device) const {
        const Shape expected{directions() * options_.num_layers, batch, hidden_size_};
        if (!given.defined()) return Tensor<B, T>::zeros(expected, device);
        if (given.shape() != expected) {
            minigrad::detail::fail<ShapeError>("{}: {} has shape {}, expected {} ({}num_layers, N, hidden_size)", name_, what, given.shape(), expected,
                                               options_.bidirectional ? "2 * " : "");
        }
        return given;
    }
    // every step's projection of a layer's input: (L * N, gates * hidden), one product
    Tensor<B, T> project(const Tensor<B, T>& x, std::size_t k) const {
        const auto rows = x.reshape({x.size(0) * x.size(1), x.size(2)});
        return bias_ih[k].defined() ? linear(rows, weight_ih[k], bias_ih[k]) : linear(rows, weight_ih[k]);
    }
    Tensor<B, T> hidden_product(const Tensor<B, T>& h, std::size_t k) const {
        return bias_hh[k].defined() ? linear(h, weight_hh[k], bias_hh[k]) : linear(h, weight_hh[k]);
    }
    Tensor<B, T> batch_layout(const Tensor<B, T>& output) const { return options_.batch_first ? transpose(output, 0, 1) : output; }
    // Layer and direction k of a time-major (L, N, in) input x, from state h (N, hidden): one product
    // projects every step, then step(projected row block, h) runs the cell and returns the next h,
    // from the first step to the last (from the last to the first for the backward direction). The
    // output (L, N, hidden) in time order; h ends as the last state the cell made.
    template <class Step>
    Tensor<B, T> run_direction(const Tensor<B, T>& x, std::size_t k, Tensor<B, T>& h, Step&& step) const {
        const std::int64_t steps = x.size(0), batch = x.size(1);
        const bool reverse = k % static_cast<std::size_t>(directions()) == 1;
        const auto projected = project(x, k);
        std::vector<Tensor<B, T>> outputs(static_cast<std::size_t>(steps));
        for (std::int64_t i = 0; i < steps; ++i) {
            const std::int64_t t = reverse ? steps - 1 - i : i;
            h = step(narrow(projected, 0, t * batch, batch), h);
            outputs[static_cast<std::size_t>(t)] = h;
        }
        return cat(outputs, 0).reshape({steps, batch, hidden_size_});
    }
    // Every layer over x (L, N, in): run(k, x, state k's h) runs layer and direction k (run_direction)
    // and pushes its last states; the directions' outputs are concatenated along the features, and
    // dropout (in training) follows each layer but the last.
    template <class Run>
    Tensor<B, T> run_layers(Tensor<B, T> x, Run&& run) const {
        const auto dirs = static_cast<std::size_t>(directions());
        for (std::size_t layer = 0; layer < static_cast<std::size_t>(options_.num_layers); ++layer) {
            std::vector<Tensor<B, T>> outputs;
            for (std::size_t d = 0; d < dirs; ++d) outputs.push_back(run(layer * dirs + d, x));
            x = dirs == 1 ? outputs[0] : cat(outputs, 2);
            if (options_.dropout != 0.0 && this->is_training() && layer + 1 < static_cast<std::size_t>(options_.num_layers)) {
                x = minigrad::dropout(x, options_.dropout, true);
            }
        }
        return x;
    }
    // layer k's slice (N, hidden) of a state (num_layers, N, hidden)
    Tensor<B, T> layer_state(const Tensor<B, T>& state, std::size_t k) const {
        return narrow(state, 0, static_cast<std::int64_t>(k), 1).reshape({state.size(1), hidden_size_});
    }

    const char* name_;
    std::int64_t input_size_, hidden_size_;
    RecurrentOptions options_;
};

}  // namespace detail

template <class B, class T = float>
class LSTM : public detail::Recurrent<B, T> {
    using Base = detail::Recurrent<B, T>;

  public:
    LSTM(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options = {}, Generator& gen = default_generator())
        : Base("LSTM", 4, input_size, hidden_size, options, gen) {}

    // h0 and c0 (D * num_layers, N, hidden) are zeros where undefined
    RecurrentOutput<B, T> forward(const Tensor<B, T>& input, const Tensor<B, T>& h0 = {}, const Tensor<B, T>& c0 = {}) const {
        auto x = this->time_major(input);
        const std::int64_t batch = x.size(1), hid = this->hidden_size_;
        const auto h_init = this->initial(h0, "h0", batch, input.device()), c_init = this->initial(c0, "c0", batch, input.device());
        std::vector<Tensor<B, T>> h_last, c_last;
        x = this->run_layers(x, [&](std::size_t k, const Tensor<B, T>& in) {
            auto h = this->layer_state(h_init, k);
            auto hc = cat(std::vector<Tensor<B, T>>{h, this->layer_state(c_init, k)}, 1);  // (N, 2 hidden): [h | c]
            auto out = this->run_direction(in, k, h, [&](const Tensor<B, T>& xi, const Tensor<B, T>& h_prev) {
                hc = minigrad::detail::lstm_cell(xi + this->hidden_product(h_prev, k), hc);  // gates (N, 4 hidden): i, f, g, o
                return narrow(hc, 1, 0, hid);
            });
            h_last.push_back(h.reshape({1, batch, hid}));
            c_last.push_back(narrow(hc, 1, hid, hid).reshape({1, batch, hid}));
            return out;
        });
        return {this->batch_layout(x), cat(h_last, 0), cat(c_last, 0)};
    }
    RecurrentOutput<B, T> operator()(const Tensor<B, T>& input, const Tensor<B, T>& h0 = {}, const Tensor<B, T>& c0 = {}) const {
        return forward(input, h0, c0);
    }

    template <class B2>
    LSTM<B2, T> to() const {
        return nn::to<B2>(*this, this->input_size_, this->hidden_size_, this->options_);
    }
};

template <class B, class T = float>
class GRU : public detail::Recurrent<B, T> {
    using Base = detail::Recurrent<B, T>;

  public:
    GRU(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options = {}, Generator& gen = default_generator())
        : Base("GRU", 3, input_size, hidden_size, options, gen) {}

    // h0 (D * num_layers, N, hidden) is zeros where undefined; the result's c_n is undefined
    RecurrentOutput<B, T> forward(const Tensor<B, T>& input, const Tensor<B, T>& h0 = {}) const {
        auto x = this->time_major(input);
        const std::int64_t batch = x.size(1), hid = this->hidden_size_;
        const auto h_init = this->initial(h0, "h0", batch, input.device());
        std::vector<Tensor<B, T>> h_last;
        x = this->run_layers(x, [&](std::size_t k, const Tensor<B, T>& in) {
            auto h = this->layer_state(h_init, k);
            auto out = this->run_direction(in, k, h, [&](const Tensor<B, T>& xi, const Tensor<B, T>& h_prev) {  // xi: r, z, n of the input
                const auto hh = this->hidden_product(h_prev, k);  // the same of h, its bias included
                const auto r = sigmoid(narrow(xi, 1, 0, hid) + narrow(hh, 1, 0, hid));
                const auto z = sigmoid(narrow(xi, 1, hid, hid) + narrow(hh, 1, hid, hid));
                const auto n = tanh(narrow(xi, 1, 2 * hid, hid) + r * narrow(hh, 1, 2 * hid, hid));
                return n + z * (h_prev - n);  // (1 - z) n + z h
            });
            h_last.push_back(h.reshape({1, batch, hid}));
            return out;
        });
        return {this->batch_layout(x), cat(h_last, 0), Tensor<B, T>()};
    }
    RecurrentOutput<B, T> operator()(const Tensor<B, T>& input, const Tensor<B, T>& h0 = {}) const { return forward(input, h0); }

    template <class B2>
    GRU<B2, T> to() const {
        return nn::to<B2>(*this, this->input_size_, this->hidden_size_, this->options_);
    }
};

}  // namespace minigrad::nn
