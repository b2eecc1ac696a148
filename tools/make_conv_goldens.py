#!/usr/bin/env python3
"""Reference values for minigrad's convolution, pooling and BatchNorm tests (tests/test_conv.cpp,
tests/test_batch_norm.cpp), from PyTorch, in float64.

Every input is drawn here from a seeded generator and stored beside the results, so the tests read
the exact same numbers. Each case "<name>" stores its inputs ("<name>.x", ".w", ...), its output
("<name>.y"), the upstream gradient ("<name>.dy": the output's gradient is dy, as if the loss were
sum(y * dy)) and the gradient of each input ("<name>.grad.x", ...).

- conv2d: a grid over stride, padding (numbers, "same"), dilation, groups and bias; conv_transpose2d
  over stride, padding, output_padding, groups, dilation and bias.
- max_pool2d, avg_pool2d, adaptive_avg_pool2d: inputs with ties (values rounded to a coarse grid),
  so that max_pool2d's gradient must go to the first maximum as PyTorch's does; then max_pool2d
  with dilation and ceil_mode (its indices too, "<name>.indices") and avg_pool2d with ceil_mode,
  count_include_pad and divisor_override (drawn last, so that the earlier cases' inputs stay).
- batch_norm: torch.nn.BatchNorm2d and BatchNorm1d run for three training steps and then one eval
  step, each step on new inputs. "<name>.step<k>.*" holds that step's x, y, dy, grad.x,
  grad.weight, grad.bias, and the running_mean, running_var and num_batches_tracked after it.
  Cases: momentum 0.1 and None (the cumulative average), affine or not, (N, C), (N, C, L) and
  (N, C, H, W) input.

The case list is the metadata "cases" (JSON). Writes tests/data/conv_goldens.safetensors. Run with
Debian's python3-torch: /usr/bin/python3 tools/make_conv_goldens.py
"""
import json
import pathlib

import torch
import torch.nn.functional as F

from make_loss_goldens import save  # the safetensors layout, written directly

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "conv_goldens.safetensors"
GEN = torch.Generator().manual_seed(11)


def uniform(*shape, lo=-1.0, hi=1.0):
    return torch.rand(*shape, generator=GEN, dtype=torch.float64) * (hi - lo) + lo


def with_grads(name, out, fn, inputs):
    """Runs fn(**inputs) with gradients on every floating input, and stores all of it under name."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    y = fn(**leaves)
    dy = uniform(*y.shape)
    y.backward(dy)
    for k, v in inputs.items():
        out[f"{name}.{k}"] = v
        out[f"{name}.grad.{k}"] = leaves[k].grad
    out[f"{name}.y"] = y.detach()
    out[f"{name}.dy"] = dy


def conv_cases(out):
    listed = []
    # n, c, h, w, o, kh, kw, stride, padding, dilation, groups, bias
    grid = [
        (2, 4, 7, 6, 6, 3, 3, (1, 1), (1, 1), (1, 1), 1, True),
        (2, 4, 7, 6, 6, 3, 2, (2, 1), (1, 0), (1, 2), 2, True),
        (1, 3, 6, 5, 2, 4, 3, (1, 1), "same", (1, 1), 1, True),
        (2, 3, 5, 5, 3, 3, 3, (1, 1), "same", (2, 1), 3, False),
        (1, 2, 8, 8, 4, 3, 3, (3, 2), (2, 2), (1, 1), 1, False),
        (2, 6, 5, 4, 4, 1, 1, (1, 1), (0, 0), (1, 1), 2, True),
        (1, 4, 9, 9, 8, 5, 5, (2, 2), (2, 2), (1, 1), 4, True),
    ]
    for i, (n, c, h, w, o, kh, kw, stride, padding, dilation, groups, bias) in enumerate(grid):
        name = f"conv2d.{i}"
        inputs = {"x": uniform(n, c, h, w), "w": uniform(o, c // groups, kh, kw)}
        if bias:
            inputs["b"] = uniform(o)
        fn = lambda x, w, b=None: F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        with_grads(name, out, fn, inputs)
        listed.append({"name": name, "op": "conv2d", "stride": list(stride), "padding": padding if isinstance(padding, str) else list(padding),
                       "dilation": list(dilation), "groups": groups, "bias": bias})
    return listed


def conv_transpose_cases(out):
    listed = []
    # n, c_in, h, w, c_out, kh, kw, stride, padding, output_padding, groups, dilation, bias
    grid = [
        (2, 4, 3, 4, 6, 3, 3, (2, 2), (1, 1), (1, 1), 2, (1, 1), True),
        (1, 3, 5, 4, 2, 2, 3, (1, 2), (0, 1), (0, 1), 1, (2, 1), True),
        (2, 2, 4, 4, 4, 4, 4, (2, 2), (1, 1), (0, 0), 1, (1, 1), False),
    ]
    for i, (n, c, h, w, o, kh, kw, stride, padding, output_padding, groups, dilation, bias) in enumerate(grid):
        name = f"conv_transpose2d.{i}"
        inputs = {"x": uniform(n, c, h, w), "w": uniform(c, o // groups, kh, kw)}
        if bias:
            inputs["b"] = uniform(o)
        fn = lambda x, w, b=None: F.conv_transpose2d(x, w, b, stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                                                     dilation=dilation)
        with_grads(name, out, fn, inputs)
        listed.append({"name": name, "op": "conv_transpose2d", "stride": list(stride), "padding": list(padding),
                       "output_padding": list(output_padding), "groups": groups, "dilation": list(dilation), "bias": bias})
    return listed


def pool_cases(out):
    listed = []
    ties = lambda *shape: torch.round(uniform(*shape) * 2) / 2  # values in {-1, -0.5, 0, 0.5, 1}: many ties
    for i, (shape, kernel, stride, padding) in enumerate([((2, 3, 6, 6), (2, 2), (2, 2), (0, 0)), ((1, 2, 7, 5), (3, 3), (2, 1), (1, 1)),
                                                           ((2, 2, 5, 6), (3, 2), (1, 2), (1, 0))]):
        for op in ("max_pool2d", "avg_pool2d"):
            name = f"{op}.{i}"
            fn = (lambda x: F.max_pool2d(x, kernel, stride, padding)) if op == "max_pool2d" else (lambda x: F.avg_pool2d(x, kernel, stride, padding))
            with_grads(name, out, fn, {"x": ties(*shape)})
            listed.append({"name": name, "op": op, "kernel": list(kernel), "stride": list(stride), "padding": list(padding)})
    for i, (shape, size) in enumerate([((2, 3, 7, 5), (3, 2)), ((1, 2, 4, 4), (4, 4)), ((1, 1, 5, 7), (1, 1))]):
        name = f"adaptive_avg_pool2d.{i}"
        with_grads(name, out, lambda x: F.adaptive_avg_pool2d(x, size), {"x": ties(*shape)})
        listed.append({"name": name, "op": "adaptive_avg_pool2d", "output_size": list(size)})
    return listed


def batch_norm_cases(out):
    listed = []
    grid = [("bn2d", (4, 3, 5, 6), 0.1, True), ("bn2d_cumulative", (3, 2, 4, 4), None, True), ("bn1d", (8, 5), 0.1, True),
            ("bn1d_seq", (4, 3, 7), 0.3, False), ("bn1d_cumulative", (6, 4), None, False)]
    for name, shape, momentum, affine in grid:
        module = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(shape[1], momentum=momentum, affine=affine).double()
        if affine:
            with torch.no_grad():
                module.weight.copy_(uniform(shape[1], lo=0.5, hi=1.5))
                module.bias.copy_(uniform(shape[1]))
                out[f"{name}.weight"] = module.weight.detach().clone()
                out[f"{name}.bias"] = module.bias.detach().clone()
        for step in range(4):
            if step == 3:
                module.eval()
            prefix = f"{name}.step{step}"
            x = (uniform(*shape) * 2 + 0.5).requires_grad_(True)  # a mean and scale far from 0 and 1
            y = module(x)
            dy = uniform(*shape)
            y.backward(dy)
            out[f"{prefix}.x"], out[f"{prefix}.y"], out[f"{prefix}.dy"] = x.detach(), y.detach(), dy
            out[f"{prefix}.grad.x"] = x.grad
            if affine:
                out[f"{prefix}.grad.weight"], out[f"{prefix}.grad.bias"] = module.weight.grad.clone(), module.bias.grad.clone()
                module.weight.grad = module.bias.grad = None
            out[f"{prefix}.running_mean"] = module.running_mean.clone()
            out[f"{prefix}.running_var"] = module.running_var.clone()
            out[f"{prefix}.num_batches_tracked"] = module.num_batches_tracked.clone()
        listed.append({"name": name, "op": "batch_norm", "momentum": momentum, "affine": affine, "steps": 4, "eval_from": 3})
    return listed


def pool_option_cases(out):
    listed = []
    ties = lambda *shape: torch.round(uniform(*shape) * 2) / 2
    # shape, kernel, stride, padding, dilation, ceil_mode
    for i, (shape, kernel, stride, padding, dilation, ceil) in enumerate([
            ((2, 2, 7, 6), (3, 2), (2, 2), (1, 1), (2, 1), False),
            ((1, 3, 6, 7), (3, 3), (2, 2), (1, 1), (1, 1), True),
            ((2, 1, 8, 5), (2, 3), (3, 2), (1, 0), (1, 2), True)]):
        name = f"max_pool2d_options.{i}"
        x = ties(*shape)
        fn = lambda x: F.max_pool2d(x, kernel, stride, padding, dilation, ceil)
        with_grads(name, out, fn, {"x": x})
        out[f"{name}.indices"] = F.max_pool2d(x, kernel, stride, padding, dilation, ceil, return_indices=True)[1]
        listed.append({"name": name, "op": "max_pool2d", "kernel": list(kernel), "stride": list(stride), "padding": list(padding),
                       "dilation": list(dilation), "ceil_mode": ceil})
    # shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    for i, (shape, kernel, stride, padding, ceil, count_pad, divisor) in enumerate([
            ((1, 2, 7, 6), (3, 3), (2, 2), (1, 1), True, True, None),
            ((2, 2, 6, 5), (3, 2), (2, 2), (1, 1), False, False, None),
            ((1, 2, 5, 7), (2, 2), (2, 3), (1, 0), True, False, 3)]):
        name = f"avg_pool2d_options.{i}"
        fn = lambda x: F.avg_pool2d(x, kernel, stride, padding, ceil, count_pad, divisor)
        with_grads(name, out, fn, {"x": uniform(*shape)})
        listed.append({"name": name, "op": "avg_pool2d", "kernel": list(kernel), "stride": list(stride), "padding": list(padding),
                       "ceil_mode": ceil, "count_include_pad": count_pad, "divisor_override": divisor or 0})
    return listed


def main():
    out = {}
    listed = conv_cases(out) + pool_cases(out) + batch_norm_cases(out) + conv_transpose_cases(out) + pool_option_cases(out)
    save(out, {"cases": json.dumps(listed), "torch": torch.__version__}, OUT)
    print(f"wrote {OUT} ({len(listed)} cases, {len(out)} tensors, {OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
