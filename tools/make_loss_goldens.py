#!/usr/bin/env python3
"""Reference values for minigrad's loss tests (tests/test_loss.cpp), from PyTorch.

Fixed small inputs (drawn here from a seeded generator and stored beside the results, so the test
reads the exact same numbers) go through torch.nn.functional's cross_entropy (ignore_index rows,
label_smoothing 0.1), nll_loss, mse_loss, l1_loss and binary_cross_entropy_with_logits (with and
without pos_weight), each with reduction mean, sum and none, in float64. For each case the file
holds the loss ("<case>.value": a scalar, or the per-row / per-element values for none) and the
gradient of every float input that PyTorch differentiates ("<case>.grad.<input>"). A scalar loss is differentiated
as is; a none result through mse_loss(result, anchor, reduction='sum'), so that each row or element
gets its own upstream gradient. The case list is the metadata "cases" (JSON).

Writes tests/data/loss_goldens.safetensors (the safetensors layout written directly, so that only
torch is needed). Run with Debian's python3-torch: /usr/bin/python3 tools/make_loss_goldens.py
"""
import json
import pathlib
import struct
import sys

import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "loss_goldens.safetensors"


def inputs():
    gen = torch.Generator().manual_seed(7)
    uniform = lambda *shape, lo=-2.0, hi=2.0: torch.rand(*shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo
    logits = uniform(6, 4)
    x = uniform(4, 3)
    y = uniform(4, 3)
    y[1, 2] = x[1, 2]  # an element where l1's gradient is sign(0) = 0
    return {
        "logits": logits,
        "logp": F.log_softmax(logits, dim=1),
        "target": torch.tensor([2, -100, 0, 3, 1, -100], dtype=torch.int64),  # two rows ignored by default
        "target_no_default": torch.tensor([2, 1, 0, 3, 1, 2], dtype=torch.int64),
        "x": x,
        "y": y,
        "prob": uniform(4, 3, lo=0.0, hi=1.0),
        "pos_weight": torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64),
        "anchor_rows": uniform(6),
        "anchor_x": uniform(4, 3),
    }


def cases():
    out = []
    for reduction in ("mean", "sum", "none"):
        for smoothing in (0.0, 0.1):
            out.append({"name": f"cross_entropy.{reduction}.smooth{smoothing}", "loss": "cross_entropy", "input": "logits",
                        "target": "target", "ignore_index": -100, "label_smoothing": smoothing, "reduction": reduction})
        out.append({"name": f"cross_entropy.ignore1.{reduction}", "loss": "cross_entropy", "input": "logits",
                    "target": "target_no_default", "ignore_index": 1, "label_smoothing": 0.1, "reduction": reduction})
        out.append({"name": f"nll_loss.{reduction}", "loss": "nll_loss", "input": "logp", "target": "target",
                    "ignore_index": -100, "reduction": reduction})
        out.append({"name": f"nll_loss.ignore2.{reduction}", "loss": "nll_loss", "input": "logp", "target": "target_no_default",
                    "ignore_index": 2, "reduction": reduction})
        out.append({"name": f"mse_loss.{reduction}", "loss": "mse_loss", "input": "x", "target": "y", "reduction": reduction})
        out.append({"name": f"l1_loss.{reduction}", "loss": "l1_loss", "input": "x", "target": "y", "reduction": reduction})
        out.append({"name": f"bce_with_logits.{reduction}", "loss": "binary_cross_entropy_with_logits", "input": "x",
                    "target": "prob", "reduction": reduction})
        out.append({"name": f"bce_with_logits.pos_weight.{reduction}", "loss": "binary_cross_entropy_with_logits", "input": "x",
                    "target": "prob", "pos_weight": "pos_weight", "reduction": reduction})
    return out


def run(case, data):
    """The loss and the gradients of the float inputs it takes (class targets take none)."""
    grads = {}
    leaf = lambda name: data[name].clone().requires_grad_(True)
    x = leaf(case["input"])
    grads[case["input"]] = x
    kind = case["loss"]
    if kind == "cross_entropy":
        value = F.cross_entropy(x, data[case["target"]], ignore_index=case["ignore_index"],
                                label_smoothing=case["label_smoothing"], reduction=case["reduction"])
    elif kind == "nll_loss":
        value = F.nll_loss(x, data[case["target"]], ignore_index=case["ignore_index"], reduction=case["reduction"])
    else:
        y = leaf(case["target"])
        grads[case["target"]] = y
        if kind == "mse_loss":
            value = F.mse_loss(x, y, reduction=case["reduction"])
        elif kind == "l1_loss":
            value = F.l1_loss(x, y, reduction=case["reduction"])
        else:
            # PyTorch does not differentiate pos_weight (minigrad does: tests/test_loss.cpp checks
            # that gradient against central differences instead).
            pw = data[case["pos_weight"]] if "pos_weight" in case else None
            value = F.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction=case["reduction"])
    if case["reduction"] == "none":
        anchor = data["anchor_rows"] if value.dim() == 1 else data["anchor_x"]
        F.mse_loss(value, anchor, reduction="sum").backward()
    else:
        value.backward()
    return value.detach(), {name: t.grad for name, t in grads.items()}


def save(tensors, metadata, path):
    """The safetensors layout: an 8-byte little-endian header size, the JSON header, the data."""
    dtypes = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        blob = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    data = inputs()
    out = dict(data)
    listed = cases()
    for case in listed:
        value, grads = run(case, data)
        out[f"{case['name']}.value"] = value
        for name, grad in grads.items():
            out[f"{case['name']}.grad.{name}"] = grad
    save(out, {"cases": json.dumps(listed), "torch": torch.__version__}, OUT)
    print(f"wrote {len(listed)} cases to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
