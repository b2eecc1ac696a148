#!/usr/bin/env python3
"""Reference values for minigrad's mask, indexing and reduction ops (tests/test_masks.cpp), from
PyTorch, in float64: the ops a sequence model needs before its attention and recurrent layers.

Every input is drawn here from a seeded generator and stored beside the results, so the tests read
the exact same numbers. Each case "<name>" stores its inputs ("<name>.x", ...), its output
("<name>.y"; "<name>.indices" where the op also gives indices), the upstream gradient ("<name>.dy":
the output's gradient is dy, as if the loss were sum(y * dy)) and the gradient of each floating
input ("<name>.grad.x", ...). Masks and indices are stored as int64.

- comparisons (eq ne lt le gt ge) with broadcasting, on values with ties; logical and/or/not;
- where(cond, a, b) and masked_fill(x, mask, value), with a broadcast mask; tril/triu with a
  diagonal, over a batch of matrices;
- gather along each dim, with repeated indices and an index smaller than the input;
- max/min along a dim (values and indices), the whole tensor's max/min (ties share the gradient),
  argmax/argmin (flat and along a dim), topk (largest and smallest), on values with ties;
- var/std, whole and along a dim, unbiased or not, keepdim;
- gelu, exact and tanh forms;
- scaled_dot_product_attention (PyTorch's math form): plain, causal (also with more keys than
  queries), a bool mask broadcast over the batch, a float bias, a given scale, 3-D input;
- nn.MultiheadAttention: cross-attention in both layouts (with and without bias), and causal
  self-attention with a padded key; its parameters are stored as "<name>.<PyTorch's name>";
- cross_entropy over (N, C, d...) with ignore_index, with class weights (mean, sum, none), and with
  class weights and label_smoothing; nll_loss with class weights;
- OneCycleLR cycling the momentum (Adam's beta1, SGD's and RMSprop's momentum) over a short training;
- bidirectional LSTM and GRU with PyTorch's weights (the _reverse parameters too);
  embedding with padding_idx;
- nn.LSTM and nn.GRU: two layers batch_first with initial states, one layer without bias; output,
  h_n, c_n and every gradient;
- parameter groups (AdamW, SGD with momentum), each with its own lr and weight_decay: the
  parameters after each of 5 steps; LinearLR, LambdaLR (warmup then cosine), StepLR,
  CosineAnnealingLR, OneCycleLR (two and three phases) and ReduceLROnPlateau over two groups:
  each group's rate after each step.

The case list is the metadata "cases" (JSON). Writes tests/data/seq_goldens.safetensors. Run with
Debian's python3-torch: /usr/bin/python3 tools/make_seq_goldens.py
"""
import json
import math
import pathlib

import torch
import torch.nn.functional as F

from make_loss_goldens import save  # the safetensors layout, written directly

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "seq_goldens.safetensors"
GEN = torch.Generator().manual_seed(22)


def uniform(*shape, lo=-1.0, hi=1.0):
    return torch.rand(tuple(shape), generator=GEN, dtype=torch.float64) * (hi - lo) + lo


def coarse(*shape):
    """Values on a grid of quarters in [-1, 1]: ties are common."""
    return torch.round(uniform(*shape) * 4) / 4


def mask(*shape, p=0.4):
    return torch.rand(tuple(shape), generator=GEN) < p


def store(out, name, inputs, y, dy=None, leaves=None, indices=None):
    for k, v in inputs.items():
        out[f"{name}.{k}"] = v.to(torch.int64) if v.dtype in (torch.bool, torch.int64) else v
    out[f"{name}.y"] = y.detach().to(torch.int64) if y.dtype == torch.bool else y.detach()
    if indices is not None:
        out[f"{name}.indices"] = indices
    if dy is not None:
        out[f"{name}.dy"] = dy
        for k, leaf in (leaves or {}).items():
            out[f"{name}.grad.{k}"] = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)


def with_grads(out, name, fn, inputs, grad_names, indices_of=None):
    """Runs fn(**inputs) with gradients on the inputs named in grad_names, and stores it under name."""
    leaves = {k: (v.clone().requires_grad_(True) if k in grad_names else v) for k, v in inputs.items()}
    result = fn(**leaves)
    indices = None
    if isinstance(result, tuple):
        result, indices = result
    dy = uniform(*result.shape)
    result.backward(dy)
    store(out, name, inputs, result, dy, {k: leaves[k] for k in grad_names}, indices)


def main():
    out = {}
    listed = []

    def case(name, op, **params):
        listed.append({"name": name, "op": op, **params})
        return name

    def rnn_case(label, kind, layers, batch_first, bias, with_state, bidirectional=False):
        """nn.LSTM or nn.GRU with its weights; the loss weighs output, h_n (and c_n) by stored gradients."""
        torch.manual_seed(7 if bidirectional else 6)
        dirs = 2 if bidirectional else 1
        rnn = getattr(torch.nn, kind)(3, 4, num_layers=layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional).double()
        n, steps = 2, 5
        x = uniform(n, steps, 3) if batch_first else uniform(steps, n, 3)
        inputs = {"x": x}
        if with_state:
            inputs["h0"] = uniform(dirs * layers, n, 4)
            if kind == "LSTM":
                inputs["c0"] = uniform(dirs * layers, n, 4)
        extra = {"bidirectional": True} if bidirectional else {}
        name = case(f"rnn_{label}", "rnn", kind=kind, num_layers=layers, batch_first=batch_first, bias=bias, with_state=with_state, **extra,
                    params=[pname for pname, _ in rnn.named_parameters()])
        for pname, p in rnn.named_parameters():
            out[f"{name}.{pname}"] = p.detach().clone()
        leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
        if kind == "LSTM":
            state = (leaves["h0"], leaves["c0"]) if with_state else None
            y, (h_n, c_n) = rnn(leaves["x"], state)
        else:
            y, h_n = rnn(leaves["x"], leaves.get("h0"))
            c_n = None
        dy, dh = uniform(*y.shape), uniform(*h_n.shape)
        loss = (y * dy).sum() + (h_n * dh).sum()
        out[f"{name}.dh"], out[f"{name}.h_n"] = dh, h_n.detach()
        if c_n is not None:
            dc = uniform(*c_n.shape)
            loss = loss + (c_n * dc).sum()
            out[f"{name}.dc"], out[f"{name}.c_n"] = dc, c_n.detach()
        loss.backward()
        store(out, name, inputs, y, dy, leaves)
        for pname, p in rnn.named_parameters():
            out[f"{name}.grad.{pname}"] = p.grad

    # comparisons: x (3, 4) against other (4) and against a number, on a coarse grid so some are equal
    x, other = coarse(3, 4), coarse(4)
    for op in ["eq", "ne", "lt", "le", "gt", "ge"]:
        name = case(f"{op}_tensor", "compare", fn=op)
        store(out, name, {"x": x, "other": other}, getattr(torch, op)(x, other))
        name = case(f"{op}_number", "compare_number", fn=op, number=0.25)
        store(out, name, {"x": x}, getattr(torch, op)(x, 0.25))
    a, b = mask(2, 3), mask(3)
    for op in ["logical_and", "logical_or"]:
        name = case(op, "logical", fn=op)
        store(out, name, {"a": a, "b": b}, getattr(torch, op)(a, b))
    name = case("logical_not", "logical", fn="logical_not")
    store(out, name, {"a": a}, torch.logical_not(a))

    # where: cond (4, 1) broadcast against a (4, 5) and b (5)
    name = case("where_broadcast", "where")
    with_grads(out, name, lambda cond, a, b: torch.where(cond, a, b), {"cond": mask(4, 1, p=0.5), "a": uniform(4, 5), "b": uniform(5)},
               ["a", "b"])
    name = case("where_same", "where")
    with_grads(out, name, lambda cond, a, b: torch.where(cond, a, b), {"cond": mask(3, 4), "a": uniform(3, 4), "b": uniform(3, 4)}, ["a", "b"])
    # masked_fill: a causal (T, T) mask over (B, H, T, T) scores, and a same-shape mask
    t = 5
    causal = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    name = case("masked_fill_causal", "masked_fill", value=-1e9)
    with_grads(out, name, lambda x, mask: x.masked_fill(mask, -1e9), {"x": uniform(2, 3, t, t), "mask": causal}, ["x"])
    name = case("masked_fill_same", "masked_fill", value=0.5)
    with_grads(out, name, lambda x, mask: x.masked_fill(mask, 0.5), {"x": uniform(3, 4), "mask": mask(3, 4)}, ["x"])

    # tril/triu over (2, 4, 6), diagonals below, on and above the main one
    for op in ["tril", "triu"]:
        for diagonal in [-1, 0, 2]:
            name = case(f"{op}_{diagonal}".replace("-", "m"), op, diagonal=diagonal)
            with_grads(out, name, lambda x: getattr(torch, op)(x, diagonal), {"x": uniform(2, 4, 6)}, ["x"])

    # gather along each dim of (3, 4, 5); index (2, 6, 3) along dim 1 is smaller in the other dims
    xs = (3, 4, 5)
    for dim, index_shape in [(0, (5, 4, 5)), (1, (2, 6, 3)), (2, (3, 4, 7)), (-1, (3, 4, 1))]:
        index = torch.randint(0, xs[dim], index_shape, generator=GEN)
        name = case(f"gather_dim{dim}".replace("-", "m"), "gather", dim=dim)
        with_grads(out, name, lambda x, index: torch.gather(x, dim, index), {"x": uniform(*xs), "index": index}, ["x"])

    # max/min along a dim, with ties (the first wins), and the whole tensor's (ties share the gradient)
    for op in ["max", "min"]:
        for dim, keepdim in [(0, False), (1, True), (-1, False)]:
            name = case(f"{op}_dim{dim}_{int(keepdim)}".replace("-", "m"), f"{op}_dim", dim=dim, keepdim=keepdim)
            with_grads(out, name, lambda x: tuple(getattr(torch, op)(x, dim, keepdim)), {"x": coarse(3, 4, 5)}, ["x"])
        name = case(f"{op}_all", f"{op}_all")
        with_grads(out, name, lambda x: getattr(torch, op)(x), {"x": coarse(3, 4)}, ["x"])
    for op in ["argmax", "argmin"]:
        x = coarse(3, 4, 5)
        name = case(f"{op}_flat", op, dim=None)
        store(out, name, {"x": x}, getattr(torch, op)(x))
        name = case(f"{op}_dim1", op, dim=1)
        store(out, name, {"x": x}, getattr(torch, op)(x, 1))

    # topk: k of a dim, largest and smallest, with ties (index order among equals, as sorted=True gives here)
    for dim, k, largest in [(-1, 3, True), (1, 2, False), (0, 3, True)]:
        name = case(f"topk_dim{dim}_k{k}_{int(largest)}".replace("-", "m"), "topk", dim=dim, k=k, largest=largest)
        x = uniform(3, 4, 5)  # distinct values: PyTorch's order among equal values is not specified
        with_grads(out, name, lambda x: tuple(torch.topk(x, k, dim, largest, True)), {"x": x}, ["x"])

    # var/std: whole and along dims, unbiased or not, keepdim
    for op in ["var", "std"]:
        for unbiased in [True, False]:
            name = case(f"{op}_all_{int(unbiased)}", f"{op}_all", unbiased=unbiased)
            with_grads(out, name, lambda x: getattr(torch, op)(x, unbiased=unbiased), {"x": uniform(3, 5)}, ["x"])
        for dim, unbiased, keepdim in [(0, True, False), (1, False, True), (-1, True, True)]:
            name = case(f"{op}_dim{dim}_{int(unbiased)}{int(keepdim)}".replace("-", "m"), f"{op}_dim", dim=dim, unbiased=unbiased, keepdim=keepdim)
            with_grads(out, name, lambda x: getattr(torch, op)(x, dim, unbiased, keepdim), {"x": uniform(3, 4, 5)}, ["x"])

    # gelu: the exact form (PyTorch's default) and the tanh form, over the tails too
    for approximate in ["none", "tanh"]:
        name = case(f"gelu_{approximate}", "gelu", approximate=approximate)
        with_grads(out, name, lambda x: F.gelu(x, approximate=approximate), {"x": uniform(4, 6, lo=-5, hi=5)}, ["x"])

    # scaled_dot_product_attention, written as PyTorch's math form (torch 1.13 has no fused one):
    # softmax(q k^T * scale + mask) v, over (N, H, L, E) and (N, L, E), with L != S, Ev != E
    def sdpa(q, k, v, mask=None, bias=None, causal=False, scale=None):
        scores = q @ k.transpose(-2, -1) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
        if causal:
            scores = scores.masked_fill(~torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril(), float("-inf"))
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        if bias is not None:
            scores = scores + bias
        return torch.softmax(scores, -1) @ v

    for label, shape_q, shape_k, shape_v, extra in [
        ("plain", (2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 3), {}),
        ("causal", (2, 2, 7, 4), (2, 2, 7, 4), (2, 2, 7, 4), {"causal": True}),
        ("causal_wide", (1, 2, 4, 3), (1, 2, 6, 3), (1, 2, 6, 5), {"causal": True}),
        ("mask", (2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 4), {"mask": (5, 6)}),
        ("bias", (2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 4), {"bias": (1, 3, 5, 6)}),
        ("scale_3d", (3, 5, 4), (3, 5, 4), (3, 5, 2), {"scale": 0.7}),
    ]:
        inputs = {"q": uniform(*shape_q), "k": uniform(*shape_k), "v": uniform(*shape_v)}
        params = {"causal": extra.get("causal", False), "scale": extra.get("scale")}
        if "mask" in extra:
            m = mask(*extra["mask"], p=0.7)
            m[:, 0] = True  # every query sees a key
            inputs["mask"] = m
        if "bias" in extra:
            inputs["bias"] = uniform(*extra["bias"])
        name = case(f"sdpa_{label}", "sdpa", is_causal=params["causal"], scale=params["scale"], mask="mask" in inputs, bias="bias" in inputs)
        with_grads(out, name, lambda q, k, v, mask=None, bias=None: sdpa(q, k, v, mask, bias, params["causal"], params["scale"]), inputs,
                   ["q", "k", "v"])

    # nn.MultiheadAttention (embed_dim 8, 2 heads), its weights stored under PyTorch's names:
    # cross-attention (L 4, S 5) in both layouts, and causal self-attention with padded keys
    for label, batch_first, bias, self_attention in [("cross", False, True, False), ("cross_bf", True, False, False), ("self_causal", True, True, True)]:
        torch.manual_seed(5)
        mha = torch.nn.MultiheadAttention(8, 2, bias=bias, batch_first=batch_first).double()
        with torch.no_grad():  # non-zero biases, so that a wrong slice of them shows
            for pname, p in mha.named_parameters():
                if "bias" in pname:
                    p.copy_(uniform(*p.shape))
        n, l, s = 2, 4, (4 if self_attention else 5)
        lay = (lambda t: t) if batch_first else (lambda t: t.transpose(0, 1).contiguous())
        inputs = {"query": lay(uniform(n, l, 8))}
        if not self_attention:
            inputs["key"], inputs["value"] = lay(uniform(n, s, 8)), lay(uniform(n, s, 8))
        for pname, p in mha.named_parameters():
            out[f"mha_{label}.{pname}"] = p.detach().clone()
        masks = {}
        if self_attention:
            masks["attn_mask"] = torch.triu(torch.ones(l, s, dtype=torch.bool), 1)
            padding = torch.zeros(n, s, dtype=torch.bool)
            padding[1, 3] = True
            masks["key_padding_mask"] = padding
            out[f"mha_{label}.key_padding_mask"] = padding.to(torch.int64)
        name = case(f"mha_{label}", "mha", batch_first=batch_first, bias=bias, self_attention=self_attention,
                    params=[pname for pname, _ in mha.named_parameters()])
        leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
        query = leaves["query"]
        y = mha(query, leaves.get("key", query), leaves.get("value", query), need_weights=False, **masks)[0]
        dy = uniform(*y.shape)
        y.backward(dy)
        store(out, name, inputs, y, dy, leaves)
        for pname, p in mha.named_parameters():
            out[f"{name}.grad.{pname}"] = p.grad

    # cross_entropy over (N, C, d...) with ignore_index, with and without class weights; embedding
    # with padding_idx (its row gets no gradient)
    ce_target = torch.randint(0, 4, (2, 3, 2), generator=GEN)
    ce_target[0, 1, 0] = -100
    class_weight = uniform(4, lo=0.5, hi=2.0)
    for label, weighted, reduction in [("spatial_mean", False, "mean"), ("spatial_none", False, "none"), ("weighted_mean", True, "mean"),
                                       ("weighted_sum", True, "sum"), ("weighted_none", True, "none")]:
        name = case(f"ce_{label}", "cross_entropy", weighted=weighted, reduction=reduction)
        inputs = {"x": uniform(2, 4, 3, 2), "target": ce_target}
        if weighted:
            inputs["weight"] = class_weight
        with_grads(out, name, lambda x, target, weight=None: F.cross_entropy(x, target, weight=weight, reduction=reduction), inputs, ["x"])
    for padding_idx in [1, -1]:
        name = case(f"embedding_pad{padding_idx}".replace("-", "m"), "embedding", padding_idx=padding_idx)
        index = torch.tensor([[0, 1, 2], [1, 4, 1]])
        with_grads(out, name, lambda w, index: F.embedding(index, w, padding_idx=padding_idx % 5), {"w": uniform(5, 3), "index": index}, ["w"])

    # nn.LSTM and nn.GRU with their weights: two layers batch_first with initial states, and one
    # layer time-major without bias; the loss weighs output, h_n (and c_n) by stored gradients
    for args in [("lstm2", "LSTM", 2, True, True, True), ("lstm1", "LSTM", 1, False, False, False), ("gru2", "GRU", 2, True, True, True),
                 ("gru1", "GRU", 1, False, False, False)]:
        rnn_case(*args)

    # parameter groups: AdamW (and SGD with momentum) over two groups with their own lr and
    # weight_decay, 5 steps of loss = mean((x w + b - y)^2); the parameters after each step
    x, y = uniform(6, 3), uniform(6, 4)
    w0, b0 = uniform(3, 4), uniform(4)
    for opt_name in ["adamw", "sgd"]:
        w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        if opt_name == "adamw":
            opt = torch.optim.AdamW([{"params": [w]}, {"params": [b], "weight_decay": 0.0, "lr": 0.05}], lr=0.01, weight_decay=0.1)
        else:
            opt = torch.optim.SGD([{"params": [w], "lr": 0.1}, {"params": [b], "weight_decay": 0.2}], lr=0.03, momentum=0.9, weight_decay=0.01)
        name = case(f"groups_{opt_name}", "param_groups", optimizer=opt_name, steps=5)
        out[f"{name}.x"], out[f"{name}.target"], out[f"{name}.w0"], out[f"{name}.b0"] = x, y, w0, b0
        for step in range(5):
            opt.zero_grad()
            ((x @ w + b - y) ** 2).mean().backward()
            opt.step()
            out[f"{name}.w.{step}"], out[f"{name}.b.{step}"] = w.detach().clone(), b.detach().clone()

    # schedulers over two groups (lr 0.1 and 0.02): each group's rate after each of 12 steps
    def schedule(name, make, steps=12, metrics=None, **params):
        p1, p2 = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([{"params": [p1]}, {"params": [p2], "lr": 0.02}], lr=0.1)
        sched = make(opt)
        rates = [[g["lr"] for g in opt.param_groups]]
        for k in range(steps):
            opt.step()
            sched.step(metrics[k]) if metrics else sched.step()
            rates.append([g["lr"] for g in opt.param_groups])
        case(name, "schedule", **params)
        out[f"{name}.rates"] = torch.tensor(rates, dtype=torch.float64)
        if metrics:
            out[f"{name}.metrics"] = torch.tensor(metrics, dtype=torch.float64)

    schedule("sched_linear", lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.25, 1.0, 6), kind="linear", start_factor=0.25, end_factor=1.0,
             total_iters=6)
    warm, total = 4, 12
    schedule("sched_lambda", lambda o: torch.optim.lr_scheduler.LambdaLR(
        o, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))), kind="lambda", warmup=warm,
             total=total)
    schedule("sched_step", lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5), kind="step", step_size=3, gamma=0.5)
    schedule("sched_cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 5, 0.001), kind="cosine", T_max=5, eta_min=0.001)
    schedule("sched_onecycle_cos", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, [0.5, 0.1], total_steps=13, pct_start=0.3,
                                                                                  cycle_momentum=False),
             kind="onecycle", max_lr=[0.5, 0.1], total_steps=13, pct_start=0.3, anneal_strategy="cos", three_phase=False)
    schedule("sched_onecycle_linear3", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.4, total_steps=13, pct_start=0.25,
                                                                                      anneal_strategy="linear", three_phase=True,
                                                                                      cycle_momentum=False, div_factor=10,
                                                                                      final_div_factor=100),
             kind="onecycle", max_lr=[0.4, 0.4], total_steps=13, pct_start=0.25, anneal_strategy="linear", three_phase=True, div_factor=10,
             final_div_factor=100)
    plateau_metrics = [1.0, 0.9, 0.95, 0.93, 0.92, 0.91, 0.91, 0.95, 0.96, 0.97, 0.5, 0.6]
    schedule("sched_plateau", lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, "min", 0.5, 2, 0.05, "rel", 1, 0.004), metrics=plateau_metrics,
             kind="plateau", factor=0.5, patience=2, threshold=0.05, cooldown=1, min_lr=0.004)

    # class weights with label_smoothing (cross_entropy) and on nll_loss, drawn last so that the
    # cases above keep their inputs: (N, C, d) and (rows, C) input, an ignored target, a class of
    # weight 0 among the targets
    ce_target = torch.randint(0, 4, (2, 3, 2), generator=GEN)
    ce_target[1, 0, 1] = -100
    class_weight = uniform(4, lo=0.5, hi=2.0)
    class_weight[2] = 0.0
    for label, shape, reduction in [("smooth_mean", (2, 4, 3, 2), "mean"), ("smooth_sum", (2, 4, 3, 2), "sum"), ("smooth_none", (2, 4, 3, 2), "none"),
                                    ("smooth_rows", (12, 4), "mean")]:
        name = case(f"ce_weighted_{label}", "cross_entropy", weighted=True, reduction=reduction, label_smoothing=0.2)
        target = ce_target if len(shape) == 4 else ce_target.reshape(12)
        with_grads(out, name, lambda x, target, weight: F.cross_entropy(x, target, weight=weight, reduction=reduction, label_smoothing=0.2),
                   {"x": uniform(*shape), "target": target, "weight": class_weight}, ["x"])
    for reduction in ["mean", "sum", "none"]:
        name = case(f"nll_weighted_{reduction}", "nll_loss", weighted=True, reduction=reduction)
        with_grads(out, name, lambda x, target, weight: F.nll_loss(x, target, weight=weight, reduction=reduction),
                   {"x": uniform(12, 4), "target": ce_target.reshape(12), "weight": class_weight}, ["x"])

    # OneCycleLR with cycle_momentum (PyTorch's default) on Adam (beta1), SGD with nesterov momentum
    # and RMSprop with momentum, two groups: the parameters after each step and each group's
    # momentum or beta1 after each scheduler step
    for label, kind, three_phase in [("adam", "adam", False), ("sgd", "sgd", True), ("rmsprop", "rmsprop", False)]:
        name = case(f"onecycle_momentum_{label}", "onecycle_momentum", optimizer=kind, three_phase=three_phase)
        p0, q0, tp, tq = uniform(3), uniform(2), uniform(3), uniform(2)
        p, q = p0.clone().requires_grad_(True), q0.clone().requires_grad_(True)
        groups = [{"params": [p]}, {"params": [q], "lr": 0.05}]
        if kind == "adam":
            opt = torch.optim.Adam(groups, lr=0.1)
        elif kind == "sgd":
            opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True)
        else:
            opt = torch.optim.RMSprop(groups, lr=0.01, momentum=0.5)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, [0.3, 0.1], total_steps=11, pct_start=0.4, three_phase=three_phase,
                                                    base_momentum=0.8, max_momentum=0.9)
        ps, qs, moms = [], [], []
        for _ in range(10):
            opt.zero_grad()
            (((p - tp) ** 2).sum() + ((q - tq) ** 2).sum() * 3).backward()
            opt.step()
            sched.step()
            ps.append(p.detach().clone())
            qs.append(q.detach().clone())
            moms.append([g["betas"][0] if kind == "adam" else g["momentum"] for g in opt.param_groups])
        out.update({f"{name}.p0": p0, f"{name}.q0": q0, f"{name}.tp": tp, f"{name}.tq": tq, f"{name}.p": torch.stack(ps),
                    f"{name}.q": torch.stack(qs), f"{name}.momentum": torch.tensor(moms, dtype=torch.float64)})

    # bidirectional LSTM and GRU: two layers batch_first with initial states (4 of them: layer by
    # layer, forward then backward), and one layer time-major without bias
    for args in [("lstm_bi2", "LSTM", 2, True, True, True), ("gru_bi1", "GRU", 1, False, False, False)]:
        rnn_case(*args, bidirectional=True)

    save(out, {"cases": json.dumps(listed), "torch": torch.__version__}, OUT)
    print(f"wrote {len(listed)} cases to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
