// Reverse-mode autograd, define-by-run. Each op's result holds the Node that made it; the Node holds
// its inputs. backward() orders that graph once, runs each Node's rule from the root down, then
// frees the graph as PyTorch does (retain_graph=False).
//
// Gradients accumulate until zero_grad(). zero_grad() does not launch a fill: it marks the buffer
// "logically zero" and the next rule that writes to it overwrites instead of adding. That saves a
// kernel per parameter per step and keeps a captured step correct on every replay.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "backend/kernels.hpp"
#include "error.hpp"
#include "shape.hpp"

namespace minigrad {
namespace detail {

template <class B, class T>
struct TensorImpl;

template <class B, class T>
struct Node {
    std::array<std::shared_ptr<TensorImpl<B, T>>, 3> inputs{};  // also what the rule reads; unused are null
    std::array<std::uint64_t, 3> input_versions{};  // each input's version when the op ran
    virtual ~Node() = default;
    // Reads out.grad and adds each input's share to that input's grad.
    virtual void backward(TensorImpl<B, T>& out) = 0;
    // As backward(out) where out is backward()'s root, with out's gradient 1 and not stored: a rule
    // that can take the 1 as given (a loss) does so and returns true, saving the launch that would
    // write it. The default returns false and backward() writes the 1.
    virtual bool backward_from_one(TensorImpl<B, T>& /*out*/) { return false; }
    // As backward(out), run in the launch of the matrix product g that makes out's gradient (g.c),
    // as that product's epilogue (B::gemm_then), where the rule can be (an activation's): returns
    // true. The default returns false, and the product launches alone. Only product_into_grad
    // calls it, when nothing else adds to out's gradient.
    virtual bool backward_in_product(TensorImpl<B, T>& /*out*/, const kernels::GemmElement<T>& /*g*/) { return false; }
    // The inputs whose values the rule reads (bit i: inputs[i]), with the op's name for messages:
    // those must not have changed in place since the forward pass.
    virtual unsigned saved_inputs() const { return 0; }
    virtual const char* op_name() const { return "op"; }
};

// One tensor's storage and autograd state. Storage comes from the backend's caching allocator.
template <class B, class T>
struct TensorImpl {
    Shape shape;
    T* data = nullptr;
    int device = 0;
    bool requires_grad = false;
    bool grad_is_zero = true;  // grad holds no value yet: the next accumulation overwrites it
    std::shared_ptr<TensorImpl> grad;
    std::shared_ptr<Node<B, T>> grad_fn;  // null for leaves
    std::uint64_t visit_mark = 0;
    std::uint32_t consumers = 0;  // in the backward() walk of visit_mark: the edges to this tensor
    std::uint64_t rule_ran_mark = 0;  // == visit_mark: grad_fn's rule already ran in that walk (product_into_grad)
    bool graph_freed = false;  // an op's result whose Node a backward() has run and freed
    std::uint64_t version = 0;  // bumped by every in-place write (optimizer step, load): see mark_modified
    std::shared_ptr<TensorImpl> storage_owner;  // set for a view (detach) of another tensor's storage

    TensorImpl(const Shape& s, int dev) : shape(s), device(dev) {
        data = static_cast<T*>(B::allocate(bytes(), device));
    }
    // Long-lived state made between steps (an optimizer's buffers): a new block, never one the
    // step's tensors just freed (CachingAllocator::allocate's reuse), so step 2 allocates nothing.
    struct StateStorage {};
    TensorImpl(const Shape& s, int dev, StateStorage) : shape(s), device(dev) {
        data = static_cast<T*>(B::allocate_state(bytes(), device));
    }
    explicit TensorImpl(std::shared_ptr<TensorImpl> owner)
        : shape(owner->shape), data(owner->data), device(owner->device), storage_owner(std::move(owner)) {}
    TensorImpl(const TensorImpl&) = delete;
    TensorImpl& operator=(const TensorImpl&) = delete;
    ~TensorImpl() {
        if (!storage_owner) B::deallocate(data, bytes(), device);
    }

    std::size_t bytes() const { return static_cast<std::size_t>(shape.numel()) * sizeof(T); }
    std::int64_t numel() const { return shape.numel(); }
};

// Per thread, as PyTorch's grad mode: a NoGradGuard in one thread leaves the others recording.
inline bool& grad_mode_flag() {
    thread_local bool enabled = true;
    return enabled;
}

// Each backward() takes a mark no other walk, in any thread, has used, so a tensor marked by one
// walk is never mistaken for visited by another (tensors may change threads between walks).
inline std::uint64_t next_visit_mark() {
    static std::atomic<std::uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

// Where a rule writes its gradient for `impl`, and whether it overwrites (first write since
// zero_grad) or adds.
template <class B, class T>
struct GradSlot {
    T* data;
    bool overwrite;
};

template <class B, class T>
GradSlot<B, T> grad_slot(TensorImpl<B, T>& impl) {
    if (!impl.grad) {
        impl.grad = std::make_shared<TensorImpl<B, T>>(impl.shape, impl.device);
        impl.grad_is_zero = true;
    }
    GradSlot<B, T> slot{impl.grad->data, impl.grad_is_zero};
    impl.grad_is_zero = false;
    return slot;
}

// Makes a logically-zero gradient real, for a user who reads it.
// The buffer stays "logically zero": reading a gradient must not change what the next step does
// (an optimizer skips a parameter whose gradient is logically zero, as PyTorch skips a None grad).
template <class B, class T>
void materialize_grad(TensorImpl<B, T>& impl) {
    if (impl.grad && impl.grad_is_zero) B::launch(impl.numel(), kernels::Fill<T>{impl.grad->data, T(0)}, impl.device);
}

// Called by whatever writes a tensor's values in place outside autograd (optimizer steps,
// loading), so that a backward() through a graph that read the old values is refused.
// A write through a view (detach) changes its owner's values too, so the owner's version moves.
template <class B, class T>
void mark_modified(TensorImpl<B, T>& impl) {
    for (TensorImpl<B, T>* p = &impl; p; p = p->storage_owner.get()) ++p->version;
}

// Whether an op on these tensors records a Node: grad mode is on and some input needs a gradient.
template <class... Tensors>
bool wants_grad(const Tensors&... tensors) {
    return grad_mode_flag() && (... || (tensors.defined() && tensors.requires_grad()));
}

template <class B, class T, class N>
void attach(TensorImpl<B, T>& out, std::shared_ptr<N> node) {
    for (std::size_t i = 0; i < node->inputs.size(); ++i)
        if (node->inputs[i]) node->input_versions[i] = node->inputs[i]->version;
    out.requires_grad = true;
    out.grad_fn = std::move(node);
}

// A matrix product whose result is x's gradient (g.c). Where x is an activation's result that
// nothing else reads in this backward(), the product makes x's whole gradient, so x's own rule can
// run now, as the product's epilogue in the same launch; the walk then skips it. That saves the
// activation's launch in every mode (eager, graph, compiled) for any model with an activation
// between two products (not beside cuBLAS, whose product is a launch of its own: B::gemm_then).
template <class B, class T>
void product_into_grad(TensorImpl<B, T>& x, const kernels::GemmElement<T>& g) {
    if (x.grad_fn && x.consumers == 1 && x.grad_fn->backward_in_product(x, g)) {
        x.rule_ran_mark = x.visit_mark;
        return;
    }
    B::gemm(g, x.device);
}

inline constexpr const char* freed_graph_message =
    "backward: this graph was already run and freed by an earlier backward(); compute the result again "
    "from its inputs (as in PyTorch without retain_graph, a graph is freed once backward() has run through it)";

template <class B, class T>
void run_backward(const std::shared_ptr<TensorImpl<B, T>>& root) {
    if (root->numel() != 1) {
        fail<ShapeError>(
            "backward: the tensor has shape {} ({} elements), expected a scalar (1 element); "
            "reduce it first, e.g. with sum() or mean()",
            root->shape, root->numel());
    }
    if (!root->requires_grad) {
        fail<Error>("backward: the tensor does not require grad and has no grad_fn; "
                    "was it computed under no_grad, or from tensors without requires_grad?");
    }
    if (root->graph_freed) throw Error(freed_graph_message);
    // Per-thread buffers, kept between calls so a step's walk allocates nothing.
    thread_local std::vector<TensorImpl<B, T>*> order;  // children before parents
    thread_local std::vector<std::pair<TensorImpl<B, T>*, int>> stack;
    const std::uint64_t mark = next_visit_mark();
    order.clear();
    stack.clear();
    stack.emplace_back(root.get(), 0);
    root->visit_mark = mark;
    root->consumers = 0;
    while (!stack.empty()) {
        auto& [impl, next] = stack.back();
        Node<B, T>* node = impl->grad_fn.get();
        if (node && next < static_cast<int>(node->inputs.size())) {
            TensorImpl<B, T>* child = node->inputs[next++].get();
            if (!child || !child->requires_grad) continue;
            if (child->visit_mark == mark) {
                ++child->consumers;
                continue;
            }
            // Found before any rule runs, so a refused backward() changes no gradient.
            if (child->graph_freed) throw Error(freed_graph_message);
            child->visit_mark = mark;
            child->consumers = 1;
            stack.emplace_back(child, 0);
            continue;
        }
        order.push_back(impl);
        stack.pop_back();
    }

    // Also before any rule runs: a rule must not read values changed since its forward pass.
    for (TensorImpl<B, T>* impl : order) {
        const Node<B, T>* node = impl->grad_fn.get();
        if (!node) continue;
        for (unsigned saved = node->saved_inputs(), i = 0; saved; saved >>= 1, ++i) {
            const auto* input = node->inputs[i].get();
            if ((saved & 1u) && input && input->version != node->input_versions[i]) [[unlikely]] {
                fail<Error>("backward: argument #{} of {} (shape {}) was modified in place after the forward pass that used it "
                            "(by an optimizer step or a load); compute the result again from the new values",
                            i + 1, node->op_name(), input->shape);
            }
        }
    }

    // The root's gradient is 1: where its rule can take that as a given (a loss), no launch writes it.
    Node<B, T>* root_rule = root->grad_fn.get();
    const bool seeded = root_rule && !root->grad && root_rule->backward_from_one(*root);
    if (!seeded) {
        auto seed = grad_slot(*root);
        B::launch(1, kernels::AddScalar<T>{seed.data, T(1), seed.overwrite}, root->device);
    }
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        TensorImpl<B, T>& impl = **it;
        if (impl.grad_fn && !(seeded && &impl == root.get()) && impl.rule_ran_mark != mark) impl.grad_fn->backward(impl);
    }

    // Free the graph children-first, so every pointer in `order` stays valid while we walk it.
    for (TensorImpl<B, T>* impl : order) {
        if (impl->grad_fn) {
            impl->grad_fn.reset();
            impl->graph_freed = true;
            impl->grad.reset();  // as PyTorch, only leaves keep their .grad
        }
    }
}

}  // namespace detail

// Turns graph recording off in this thread for its lifetime, as torch.no_grad(): for evaluation.
class NoGradGuard {
  public:
    NoGradGuard() : previous_(detail::grad_mode_flag()) { detail::grad_mode_flag() = false; }
    ~NoGradGuard() { detail::grad_mode_flag() = previous_; }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

  private:
    bool previous_;
};

// Whether this thread records graphs.
inline bool is_grad_enabled() { return detail::grad_mode_flag(); }

}  // namespace minigrad
