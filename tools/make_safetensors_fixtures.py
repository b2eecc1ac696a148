#!/usr/bin/env python3
"""The PyTorch side of minigrad's safetensors interop tests.

With no argument: (a) builds the Iris MLP in PyTorch (fc1 = Linear(4, 10), ReLU, fc2 = Linear(10, 3),
as examples/common/iris.hpp) with a fixed seed, saves it with safetensors.torch.save_file to
tests/data/torch_iris.safetensors, and saves a fixed input with PyTorch's logits for it to
tests/data/torch_iris_logits.safetensors (tests/test_io.cpp loads both and compares minigrad's
logits); then (b) as --check.

--check: (b) loads tests/data/minigrad_iris.safetensors (written by minigrad; MINIGRAD_WRITE_FIXTURES=1
minigrad_tests rewrites it) into the same PyTorch module and compares its logits for the input in
tests/data/minigrad_iris_logits.safetensors with the logits minigrad recorded there, and checks that
the checksum minigrad stores for each tensor of both files (metadata "minigrad.crc32.<name>", 8 hex
digits) is zlib's CRC-32 of the tensor's bytes.

Exits 77 (skipped) when torch or safetensors is missing, 1 when a check fails.
"""
import json
import pathlib
import sys
import zlib

try:
    import torch
    from safetensors.torch import load_file, save_file
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

DATA = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data"
TOLERANCE = 1e-6
CHECKSUM_PREFIX = "minigrad.crc32."


class IrisMLP(torch.nn.Module):
    def __init__(self, hidden=10):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, hidden)
        self.relu = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(hidden, 3)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def write_torch_fixtures():
    torch.manual_seed(0)
    model = IrisMLP()
    # Features in [0, 1], as the min-max scaled Iris data the model is trained on.
    inputs = torch.rand(6, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(inputs)
    save_file(model.state_dict(), DATA / "torch_iris.safetensors", metadata={"format": "pt"})
    save_file({"input": inputs, "logits": logits}, DATA / "torch_iris_logits.safetensors")
    print(f"wrote {DATA / 'torch_iris.safetensors'} and torch_iris_logits.safetensors")


def check_minigrad_checksums(path):
    """Reads the header as JSON (safetensors' load_file does not return metadata) and recomputes
    each tensor's CRC-32 with zlib: an implementation other than minigrad's."""
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + length])
    data = raw[8 + length:]
    metadata = header.pop("__metadata__", {})
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        stored, actual = metadata.get(CHECKSUM_PREFIX + name), f"{zlib.crc32(data[begin:end]):08x}"
        if stored != actual:
            print(f"FAILED: {path.name}: tensor {name!r} has checksum {stored!r}, zlib.crc32 of its bytes is {actual}")
            return 1
    print(f"ok: {path.name}: the checksums of {len(header)} tensors agree with zlib.crc32")
    return 0


def check_minigrad_file():
    for name in ("minigrad_iris.safetensors", "minigrad_iris_logits.safetensors"):
        if check_minigrad_checksums(DATA / name):
            return 1
    model = IrisMLP()
    model.load_state_dict(load_file(DATA / "minigrad_iris.safetensors"), strict=True)
    recorded = load_file(DATA / "minigrad_iris_logits.safetensors")
    with torch.no_grad():
        logits = model(recorded["input"])
    error = (logits - recorded["logits"]).abs().max().item()
    same_classes = torch.equal(logits.argmax(1), recorded["logits"].argmax(1))
    if error > TOLERANCE or not same_classes:
        print(f"FAILED: PyTorch's logits for minigrad_iris.safetensors differ from minigrad's by {error} "
              f"(tolerance {TOLERANCE}); same predicted classes: {same_classes}")
        return 1
    print(f"ok: minigrad_iris.safetensors loads into PyTorch; logits match minigrad's within {error:.3g}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--check"]):
        sys.exit(f"usage: {sys.argv[0]} [--check]")
    if not sys.argv[1:]:
        write_torch_fixtures()
    sys.exit(check_minigrad_file())
