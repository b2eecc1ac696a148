// scaled_dot_product_attention(q, k, v, {.attn_mask, .attn_bias, .is_causal, .dropout_p, .scale}),
// as torch.nn.functional.scaled_dot_product_attention: softmax(q k^T * scale + mask) v over the
// last two dims, every leading dim a batch entry (heads included).
//
// It never holds the (L, S) score matrix of a whole batch entry: the queries go in blocks of rows
// (attention_rows), each block's scores (rows, S') in a scratch, S' the keys the block can see (a
// causal block sees the keys up to its last row). Per
// block: scores = q_blk k^T (the backend's product: OpenBLAS, cuBLAS), AttentionSoftmax turns them
// into probabilities in place and keeps each row's logsumexp, then o_blk = p v. Backward recomputes
// each block's probabilities from the logsumexp (nothing of size L x S is saved), then dv += p^T
// do, dp = do v^T, AttentionScoreGrad makes ds = p (dp - rowsum(do o)) scale in place, dq = ds k,
// dk += ds^T q. Memory: the inputs, the output, L logsumexps per entry and the fixed scratch.
//
// dropout_p > 0 drops each probability with that chance and scales the rest by 1 / (1 - p) before
// o = p v, as PyTorch's; the mask is a hash of the score's flat index (ops/dropout.hpp's
// DropoutMask), so backward recomputes it: dv += (p z)^T do, and ds = p (z dp - rowsum(do o)) scale
// with z the mask's factor (rowsum(do o) is still the row's sum of p z dp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>

#include "broadcast.hpp"
#include "checks.hpp"
#include "dropout.hpp"
#include "matmul.hpp"

namespace minigrad {
namespace kernels {

// How a block's score at (row r, key j) is masked: the score's flat index in the (batch, L, S)
// score tensor is ((entry * L) + i0 + r) * S + j, read through each mask's broadcast strides. A
// bool mask takes part where true; a bias is added; causal hides keys j > i.
template <class T>
struct AttentionMask {
    const bool* keep = nullptr;
    StridedIndex keep_at;
    const T* bias = nullptr;
    StridedIndex bias_at;
    bool causal = false;
    // the score with the mask applied: -inf where hidden
    MINIGRAD_HD T apply(T score, index_t flat, index_t i, index_t j) const {
        if (causal && j > i) return -std::numeric_limits<T>::infinity();
        if (keep && !keep[keep_at.offset(flat)]) return -std::numeric_limits<T>::infinity();
        if (bias) score += bias[bias_at.offset(flat)];
        return score;
    }
};

// s is a block's (rows, cols) raw scores q k^T, rows i0 .. i0 + rows - 1 of batch entry `entry`
// (L queries, S keys of which the block sees cols). Forward (!recompute): s becomes the softmax of
// (s * scale, masked), and lse[entry * L + i] each row's logsumexp. Backward (recompute): s becomes
// the same probabilities, from the stored lse. A row with every key hidden gives NaN, as PyTorch's.
// r over rows
template <class T>
struct AttentionSoftmax {
    T* s;
    T* lse;
    AttentionMask<T> mask;
    index_t entry, i0, cols, L, S;
    T scale;
    bool recompute;
    MINIGRAD_HD index_t work_per_index() const { return cols; }
    MINIGRAD_HD void operator()(index_t r) const {
        T* row = s + r * cols;
        const index_t i = i0 + r, flat0 = (entry * L + i) * S;
        if (recompute) {
            const T total = lse[entry * L + i];
            for (index_t j = 0; j < cols; ++j) row[j] = std::exp(mask.apply(row[j] * scale, flat0 + j, i, j) - total);
            return;
        }
        T best = -std::numeric_limits<T>::infinity();
        for (index_t j = 0; j < cols; ++j) {
            row[j] = mask.apply(row[j] * scale, flat0 + j, i, j);
            best = row[j] > best ? row[j] : best;
        }
        T sum = 0;
        for (index_t j = 0; j < cols; ++j) {
            row[j] = std::exp(row[j] - best);
            sum += row[j];
        }
        const T inv = T(1) / sum;
        for (index_t j = 0; j < cols; ++j) row[j] *= inv;
        lse[entry * L + i] = best + std::log(sum);
    }
};

// The dropout of a block's probabilities: the mask and its factor 1 / (1 - p), and where the block
// sits (entry, first row i0, of L rows and S keys), for the scores' flat indices.
template <class T>
struct AttentionDropoutMask {
    DropoutMask mask;
    T keep_scale;
    index_t entry, i0, L, S;
    // fn(j, factor) for the row's keys j < cols, factor 0 or keep_scale
    template <class F>
    MINIGRAD_HD void row(index_t r, index_t cols, F&& fn) const {
        const index_t flat0 = (entry * L + i0 + r) * S;
        for (index_t j0 = 0; j0 < cols;) {
            const DropoutMask::Run run = mask.run(flat0 + j0, flat0 + cols);
            const index_t end = run.end - flat0;
            for (index_t j = j0; j < end; ++j) fn(j, run.keep(flat0 + j) ? keep_scale : T(0));
            j0 = end;
        }
    }
};

// p is a block's (rows, cols) probabilities: each is dropped or scaled by the mask. r over rows
template <class T>
struct AttentionDropout {
    T* p;
    AttentionDropoutMask<T> drop;
    index_t cols;
    MINIGRAD_HD index_t work_per_index() const { return cols; }
    MINIGRAD_HD void operator()(index_t r) const {
        T* row = p + r * cols;
        drop.row(r, cols, [&](index_t j, T factor) { row[j] *= factor; });
    }
};

// p and dp are a block's (rows, cols) probabilities and do v^T; o and d_o its (rows, ev) output and
// output gradient. dp becomes ds = p (z dp - sum_e d_o o) scale, the gradient of the raw scores,
// with z the dropout's factor (1 without dropout). r over rows
template <class T>
struct AttentionScoreGrad {
    const T* p;
    T* dp;
    const T* o;
    const T* d_o;
    index_t cols, ev;
    T scale;
    bool dropout = false;
    AttentionDropoutMask<T> drop{};
    MINIGRAD_HD index_t work_per_index() const { return cols + ev; }
    MINIGRAD_HD void operator()(index_t r) const {
        T dot = 0;
        for (index_t e = 0; e < ev; ++e) dot += d_o[r * ev + e] * o[r * ev + e];
        if (dropout) {
            drop.row(r, cols, [&](index_t j, T factor) { dp[r * cols + j] = p[r * cols + j] * (factor * dp[r * cols + j] - dot) * scale; });
            return;
        }
        for (index_t j = 0; j < cols; ++j) dp[r * cols + j] = p[r * cols + j] * (dp[r * cols + j] - dot) * scale;
    }
};

// The functors this file's op launches besides products, for compiled steps (kernels::Functors,
// backend/kernels.hpp).
template <class T>
using AttentionFunctors = Functors<AttentionSoftmax<T>, AttentionScoreGrad<T>, AttentionDropout<T>>;

}  // namespace kernels

// PyTorch's arguments. attn_mask is its boolean form (true takes part); attn_bias its float form
// (added to the scores; no gradient flows to it). dropout_p > 0 draws a mask from
// mg::default_generator() at every call, as PyTorch's applies it whenever given (a caller in eval
// passes 0, as nn::MultiheadAttention does).
template <class B, class T>
struct AttentionOptions {
    Tensor<B, bool> attn_mask{};
    Tensor<B, T> attn_bias{};
    double dropout_p = 0.0;
    bool is_causal = false;
    std::optional<double> scale{};  // 1 / sqrt(E) when not given
};

namespace detail {

// The blocking of one call: batch entries of L queries and S keys; E and Ev the widths of q/k and v.
struct AttentionShape {
    std::int64_t batch, L, S, E, Ev, block_rows;
    bool causal;
    // the keys a block of rows starting at i0 sees
    std::int64_t cols(std::int64_t i0) const {
        if (!causal) return S;
        const std::int64_t last = i0 + block_rows;  // rows up to last - 1 see keys up to last - 1
        return last < S ? last : S;
    }
    std::int64_t rows(std::int64_t i0) const { return L - i0 < block_rows ? L - i0 : block_rows; }
};

// Rows per block of queries: 0 (the default) chooses by shape, any other number is used as it is
// (the tests make blocks of one and two rows out of small inputs). A reference, so they can set it.
inline std::int64_t& attention_block_rows() {
    static std::int64_t rows = 0;
    return rows;
}

// The rows of a block of queries: as many as keep its scores within 8192 elements (32 KiB in
// float, in cache while softmax and the second product read them), but at least 32, so each
// product stays a matrix product; no more than L. Measured on this project's 2-core CPU (bench/
// seq_bench.cpp --block-rows, causal B=8 H=4 T=256 D=32 forward and backward, one thread): one
// block of 256 rows 20.2 ms, blocks of 32 rows 12.4 ms, as a causal block then skips the keys
// after its last row; at T=1024, 32 rows was as fast as 16 to 128.
inline std::int64_t attention_rows(std::int64_t L, std::int64_t S) {
    if (attention_block_rows() > 0) return std::min(std::max<std::int64_t>(L, 1), attention_block_rows());
    const std::int64_t fit = S > 0 ? 8192 / S : L;
    return std::max<std::int64_t>(1, std::min(L, std::max<std::int64_t>(32, fit)));
}

template <class B, class T>
kernels::AttentionMask<T> attention_mask(const AttentionOptions<B, T>& o, const Shape& scores) {
    kernels::AttentionMask<T> m;
    m.causal = o.is_causal;
    if (o.attn_mask.defined()) {
        m.keep = o.attn_mask.data();
        m.keep_at = broadcast_read(o.attn_mask.shape(), scores);
    }
    if (o.attn_bias.defined()) {
        m.bias = o.attn_bias.data();
        m.bias_at = broadcast_read(o.attn_bias.shape(), scores);
    }
    return m;
}

// q (batch, L, E), k (batch, S, E), v (batch, S, Ev), o (batch, L, Ev) as raw arrays
template <class B, class T>
struct AttentionNode : Node<B, T> {
    AttentionShape shape;
    AttentionOptions<B, T> options;
    Shape scores;
    Tensor<B, T> lse;  // (batch, L)
    T scale;
    bool dropout = false;
    kernels::DropoutMask drop_mask{};
    T keep_scale = 0;
    unsigned saved_inputs() const override { return 0b111; }
    const char* op_name() const override { return "scaled_dot_product_attention"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& q = *this->inputs[0];
        auto& k = *this->inputs[1];
        auto& v = *this->inputs[2];
        const auto& a = shape;
        const int device = q.device;
        const auto mask = attention_mask(options, scores);
        const auto scratch_size = Shape{a.block_rows * a.S};
        auto p = std::make_shared<TensorImpl<B, T>>(scratch_size, device);
        auto dp = std::make_shared<TensorImpl<B, T>>(scratch_size, device);
        std::optional<GradSlot<B, T>> dq, dk, dv;
        if (q.requires_grad) dq = grad_slot(q);
        if (k.requires_grad) dk = grad_slot(k);
        if (v.requires_grad) dv = grad_slot(v);
        // dk and dv add up over the blocks: zeroed first when they are to be overwritten
        if (dk && dk->overwrite) B::launch(k.numel(), kernels::Fill<T>{dk->data, T(0)}, device);
        if (dv && dv->overwrite) B::launch(v.numel(), kernels::Fill<T>{dv->data, T(0)}, device);
        const T* d_o = out.grad->data;
        for (std::int64_t b = 0; b < a.batch; ++b) {
            const T* qb = q.data + b * a.L * a.E;
            const T* kb = k.data + b * a.S * a.E;
            const T* vb = v.data + b * a.S * a.Ev;
            for (std::int64_t i0 = 0; i0 < a.L; i0 += a.block_rows) {
                const std::int64_t rows = a.rows(i0), cols = a.cols(i0);
                const T* q_blk = qb + i0 * a.E;
                const T* o_blk = out.data + (b * a.L + i0) * a.Ev;
                const T* do_blk = d_o + (b * a.L + i0) * a.Ev;
                // p (rows, cols) = the block's probabilities, recomputed from q k^T and lse
                gemm<B>(p->data, q_blk, false, kb, true, (const T*)nullptr, rows, cols, a.E, true, device);
                B::launch(rows, kernels::AttentionSoftmax<T>{p->data, lse.data(), mask, b, i0, cols, a.L, a.S, scale, true}, device);
                const kernels::AttentionDropoutMask<T> drop{drop_mask, keep_scale, b, i0, a.L, a.S};
                if (dv && !dropout)  // dv[0:cols] (cols, Ev) += p^T do_blk
                    gemm<B>(dv->data + b * a.S * a.Ev, p->data, true, do_blk, false, (const T*)nullptr, cols, a.Ev, rows, false, device);
                if (dq || dk) {
                    // dp (rows, cols) = do_blk v^T, then ds in its place
                    gemm<B>(dp->data, do_blk, false, vb, true, (const T*)nullptr, rows, cols, a.Ev, true, device);
                    B::launch(rows, kernels::AttentionScoreGrad<T>{p->data, dp->data, o_blk, do_blk, cols, a.Ev, scale, dropout, drop}, device);
                }
                if (dv && dropout) {  // p becomes the dropped probabilities the forward pass used
                    B::launch(rows, kernels::AttentionDropout<T>{p->data, drop, cols}, device);
                    gemm<B>(dv->data + b * a.S * a.Ev, p->data, true, do_blk, false, (const T*)nullptr, cols, a.Ev, rows, false, device);
                }
                if (dq)  // dq_blk (rows, E) = ds k[0:cols]
                    gemm<B>(dq->data + (b * a.L + i0) * a.E, dp->data, false, kb, false, (const T*)nullptr, rows, a.E, cols, dq->overwrite, device);
                if (dk)  // dk[0:cols] (cols, E) += ds^T q_blk
                    gemm<B>(dk->data + b * a.S * a.E, dp->data, true, q_blk, false, (const T*)nullptr, cols, a.E, rows, false, device);
            }
        }
    }
};

// The leading dims of an attention input, and the product of their sizes.
inline std::int64_t leading_count(const Shape& s) {
    std::int64_t n = 1;
    for (int d = 0; d + 2 < s.ndim(); ++d) n *= s[d];
    return n;
}
inline bool same_leading(const Shape& a, const Shape& b) {
    if (a.ndim() != b.ndim()) return false;
    for (int d = 0; d + 2 < a.ndim(); ++d)
        if (a[d] != b[d]) return false;
    return true;
}

}  // namespace detail

// q is (..., L, E), k (..., S, E), v (..., S, Ev), with the same leading dims; the result is
// (..., L, Ev). Its gradient reaches q, k and v.
template <class B, class T>
Tensor<B, T> scaled_dot_product_attention(const Tensor<B, T>& q, const Tensor<B, T>& k, const Tensor<B, T>& v,
                                          const AttentionOptions<B, T>& options = {}) {
    constexpr const char* op = "scaled_dot_product_attention";
    detail::require_floating<T>();
    detail::check_defined(op, q, 1, "query");
    detail::check_defined(op, k, 2, "key");
    detail::check_defined(op, v, 3, "value");
    detail::check_same_device(op, q, "query", k, 2, "key");
    detail::check_same_device(op, q, "query", v, 3, "value");
    if (q.ndim() < 2) detail::fail<ShapeError>("{}: argument #1 'query' has shape {}, expected at least 2 dims [..., L, E]", op, q.shape());
    const int nd = q.ndim();
    if (!detail::same_leading(q.shape(), k.shape()) || k.size(nd - 1) != q.size(nd - 1)) {
        detail::fail<ShapeError>("{}: argument #2 'key' has shape {}, expected [..., S, {}] with the leading dims of argument #1 'query' of shape {}", op,
                                 k.shape(), q.size(nd - 1), q.shape());
    }
    if (!detail::same_leading(q.shape(), v.shape()) || v.size(nd - 2) != k.size(nd - 2)) {
        detail::fail<ShapeError>("{}: argument #3 'value' has shape {}, expected [..., {}, Ev] with the leading dims of argument #1 'query' of shape {}",
                                 op, v.shape(), k.size(nd - 2), q.shape());
    }
    detail::check_fraction<double>(op, "dropout_p", options.dropout_p);
    if (options.is_causal && (options.attn_mask.defined() || options.attn_bias.defined())) {
        detail::fail<ValueError>("{}: is_causal=true and an explicit attn_mask or attn_bias cannot be given together (as PyTorch)", op);
    }
    if (options.scale && !(std::isfinite(*options.scale))) detail::fail<ValueError>("{}: scale={} must be finite", op, *options.scale);
    detail::AttentionShape a{detail::leading_count(q.shape()), q.size(nd - 2), k.size(nd - 2), q.size(nd - 1), v.size(nd - 1), 1, options.is_causal};
    std::int64_t scores_dims[Shape::max_dims];
    for (int d = 0; d + 2 < nd; ++d) scores_dims[d] = q.size(d);
    scores_dims[nd - 2] = a.L;
    scores_dims[nd - 1] = a.S;
    const Shape scores = detail::make_shape(scores_dims, nd);
    const auto check_mask = [&](const Shape& s, const char* name) {
        bool fits = s.ndim() <= nd;
        for (int d = 0; fits && d < s.ndim(); ++d) {
            const std::int64_t size = s[s.ndim() - 1 - d];
            fits = size == 1 || size == scores[nd - 1 - d];
        }
        if (!fits) {
            detail::fail<ShapeError>("{}: options '{}' has shape {}, which does not broadcast to the scores' shape {} (query {}, key {})", op, name, s,
                                     scores, q.shape(), k.shape());
        }
    };
    if (options.attn_mask.defined()) {
        detail::check_same_device(op, q, "query", options.attn_mask, 4, "attn_mask");
        check_mask(options.attn_mask.shape(), "attn_mask");
    }
    if (options.attn_bias.defined()) {
        detail::check_same_device(op, q, "query", options.attn_bias, 4, "attn_bias");
        check_mask(options.attn_bias.shape(), "attn_bias");
        if (options.attn_bias.requires_grad()) {
            detail::fail<ValueError>("{}: options 'attn_bias' requires grad, and its gradient is not computed; pass attn_bias.detach()", op);
        }
    }
    const T scale = static_cast<T>(options.scale ? *options.scale : 1.0 / std::sqrt(static_cast<double>(a.E)));
    a.block_rows = detail::attention_rows(a.L, a.S);
    Shape out_shape = q.shape();
    {
        std::int64_t dims[Shape::max_dims];
        for (int d = 0; d < nd; ++d) dims[d] = q.size(d);
        dims[nd - 1] = a.Ev;
        out_shape = detail::make_shape(dims, nd);
    }
    auto y = Tensor<B, T>::empty(out_shape, q.device());
    auto lse = Tensor<B, T>::empty(Shape{a.batch, a.L}, q.device());
    const bool dropout = options.dropout_p != 0.0 && y.numel() > 0 && a.S > 0;
    kernels::DropoutMask drop_mask{};
    const T keep_scale = static_cast<T>(1.0 / (1.0 - options.dropout_p));
    if (dropout) drop_mask = detail::dropout_mask<B>(options.dropout_p, a.batch * a.L * a.S, default_generator(), q.device());
    if (y.numel() > 0) {
        const auto mask = detail::attention_mask(options, scores);
        auto p = std::make_shared<detail::TensorImpl<B, T>>(Shape{a.block_rows * a.S}, q.device());
        for (std::int64_t b = 0; b < a.batch; ++b) {
            for (std::int64_t i0 = 0; i0 < a.L; i0 += a.block_rows) {
                const std::int64_t rows = a.rows(i0), cols = a.cols(i0);
                detail::gemm<B>(p->data, q.data() + (b * a.L + i0) * a.E, false, k.data() + b * a.S * a.E, true, (const T*)nullptr, rows, cols, a.E, true,
                                q.device());
                B::launch(rows, kernels::AttentionSoftmax<T>{p->data, lse.data(), mask, b, i0, cols, a.L, a.S, scale, false}, q.device());
                if (dropout) {
                    B::launch(rows, kernels::AttentionDropout<T>{p->data, {drop_mask, keep_scale, b, i0, a.L, a.S}, cols}, q.device());
                }
                detail::gemm<B>(y.data() + (b * a.L + i0) * a.Ev, p->data, false, v.data() + b * a.S * a.Ev, false, (const T*)nullptr, rows, a.Ev, cols,
                                true, q.device());
            }
        }
    }
    if (detail::wants_grad(q, k, v)) {
        auto node = std::make_shared<detail::AttentionNode<B, T>>();
        node->inputs = {q.impl_ptr(), k.impl_ptr(), v.impl_ptr()};
        node->shape = a;
        node->options = options;
        node->scores = scores;
        node->lse = std::move(lse);
        node->scale = scale;
        node->dropout = dropout;
        node->drop_mask = drop_mask;
        node->keep_scale = keep_scale;
        detail::attach(y.impl(), std::move(node));
    }
    return y;
}

}  // namespace minigrad
