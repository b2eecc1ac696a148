#!/usr/bin/env python3
"""PyTorch and minigrad read each other's safetensors files bit for bit (the ctest torch_interop;
tests/torch_interop.sh runs this in the environment of scripts/python-env.sh).

Usage: torch_interop.py TOOL WORK_DIR, where TOOL is tests/safetensors_interop.cpp built.

python -> minigrad: safetensors.numpy.save_file and safetensors.torch.save_file (a torch.nn
  model's state_dict among the tensors) write files of every dtype minigrad reads (F32, F64, F16,
  BF16, I32, I64); `TOOL dump` reads each with minigrad. Names, dtypes, shapes and every byte must
  be equal.
minigrad -> python: `TOOL write` saves a fixed set of tensors and prints them; safetensors.numpy's
  and safetensors.torch's load_file must read the same names and bytes. Then
  tests/data/minigrad_iris.safetensors (which minigrad wrote) is read by torch's load_file and by
  minigrad with the same result, and loads into the Iris MLP as a torch.nn.Module
  (tools/make_safetensors_fixtures.py --check).

cnn: a torch.nn CNN with BatchNorm (bench/torch_models.py's DigitsCnn, trained a few steps so that
  its running statistics and num_batches_tracked have moved) is saved by safetensors.torch, in F32
  and in BF16; `TOOL cnn` loads each into minigrad's copy of the model and prints its eval-mode
  logits, which must match PyTorch's within 1e-5 (for BF16, PyTorch's with the same rounded weights).

Metadata: what the writer put in "__metadata__" must be read back, but a reader may find more keys
(minigrad may add its own, such as checksums), so extra keys are not a difference.
Exits 1 on the first direction that finds a difference.
"""
import collections
import pathlib
import shutil
import subprocess
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file as numpy_load, save_file as numpy_save

ROOT = pathlib.Path(__file__).resolve().parent.parent
DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.float16): "F16", np.dtype(np.int32): "I32",
          np.dtype(np.int64): "I64"}


class Tensor(collections.namedtuple("Tensor", "dtype shape data")):
    """A tensor as stored: dtype name, shape tuple, raw little-endian bytes."""


def from_numpy(array):
    array = np.asarray(array)  # (np.ascontiguousarray would turn a 0-d array into a 1-d one)
    return Tensor(DTYPES.get(array.dtype, str(array.dtype)), tuple(array.shape), array.tobytes(order="C"))


def from_torch(tensor):
    import torch
    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: its bytes through int16
        return Tensor("BF16", tuple(tensor.shape), tensor.view(torch.int16).numpy().tobytes(order="C"))
    return from_numpy(tensor.numpy())


def bits(dtype, shape, seed):
    """Random bit patterns viewed as `dtype`: for floats, NaNs with payloads (quiet and
    signalling), infinities and subnormals among them, none of which a reader may change."""
    unsigned = {2: np.uint16, 4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize]
    raw = np.random.default_rng(seed).integers(0, np.iinfo(unsigned).max, size=shape, dtype=unsigned, endpoint=True)
    return raw.view(dtype)


def edges(dtype):
    if np.dtype(dtype).kind == "f":
        info = np.finfo(dtype)
        unsigned = {16: np.uint16, 32: np.uint32, 64: np.uint64}[info.bits]
        nans = np.array({16: [0x7C01, 0xFE45], 32: [0x7F800001, 0xFFC12345], 64: [0x7FF0000000000001, 0xFFF8000000012345]}[info.bits], unsigned)
        values = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, info.max, info.min, info.tiny, info.smallest_subnormal], dtype)
        return np.concatenate([values, nans.view(dtype)])
    info = np.iinfo(dtype)
    return np.array([info.min, -1, 0, 1, info.max], dtype)


def numpy_tensors():
    out = {f"{DTYPES[np.dtype(t)].lower()}.edges": edges(t) for t in DTYPES}
    out["f32.bits"] = bits(np.float32, (2, 3, 4), 1)
    out["f64.bits"] = bits(np.float64, (5, 3), 2)
    out["f16.bits"] = bits(np.float16, (3, 5), 7)
    out["i32.bits"] = bits(np.int32, (9,), 3)
    out["i64.bits"] = bits(np.int64, (2, 2, 2), 4)
    out["scalar"] = np.array(-2.5, np.float64)
    out["empty"] = np.zeros((0,), np.float32)
    out["empty.rows"] = np.zeros((0, 3), np.int64)
    out["a name with spaces/and:punctuation"] = np.array([1.0], np.float32)
    out["ünïcödé.权重"] = np.array([[-1.5, 3.25]], np.float32)
    return out


def torch_tensors(torch):
    """A model's state_dict as PyTorch saves it (float weights, BatchNorm's running statistics and
    its I64 scalar num_batches_tracked), and tensors of every dtype made in torch."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    model(torch.randn(16, 4))  # in training mode: the running statistics and the counter move
    out = {f"model.{name}": value for name, value in model.state_dict().items()}
    out["f64.randn"] = torch.randn(3, 7, dtype=torch.float64)
    out["bf16.randn"] = torch.randn(4, 3).to(torch.bfloat16)
    out["f16.randn"] = torch.randn(5).to(torch.float16)
    out["f32.bits"] = torch.from_numpy(bits(np.float32, (4, 4), 5))
    out["i32.arange"] = torch.arange(-6, 6, dtype=torch.int32).reshape(3, 4)
    out["i64.bits"] = torch.from_numpy(bits(np.int64, (6,), 6))
    out["f32.scalar"] = torch.tensor(3.0)
    out["i64.empty"] = torch.zeros(0, 2, dtype=torch.int64)
    return out


def tool(*args, check=True):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.exit(f"FAILED: {' '.join(map(str, args))} exited with {result.returncode}: {result.stderr.strip()}")
    return result


def parse(output):
    """The tensors and metadata `TOOL dump` or `TOOL write` printed."""
    tensors, metadata = {}, {}
    unhex = lambda h: b"" if h == "-" else bytes.fromhex(h)
    for line in output.splitlines():
        kind, *fields = line.split(" ")
        if kind == "tensor":
            name, dtype, shape, data = fields
            name = unhex(name).decode("utf-8")
            if name in tensors:
                sys.exit(f"FAILED: minigrad listed the tensor {name!r} twice")
            tensors[name] = Tensor(dtype, () if shape == "-" else tuple(int(d) for d in shape.split(",")), unhex(data))
        elif kind == "metadata":
            metadata[unhex(fields[0]).decode("utf-8")] = unhex(fields[1]).decode("utf-8")
        else:
            sys.exit(f"FAILED: unexpected line from the minigrad tool: {line!r}")
    return tensors, metadata


def differences(what, expected, actual, expected_metadata, actual_metadata):
    """Every way `actual` is not `expected`, one message each."""
    found = [f"{what}: {name!r} is missing" for name in expected.keys() - actual.keys()]
    found += [f"{what}: {name!r} was not written but was read" for name in actual.keys() - expected.keys()]
    for name in sorted(expected.keys() & actual.keys()):
        want, got = expected[name], actual[name]
        if (want.dtype, want.shape) != (got.dtype, got.shape):
            found.append(f"{what}: {name!r} is {got.dtype} {list(got.shape)}, expected {want.dtype} {list(want.shape)}")
        elif want.data != got.data:
            size = {"F16": 2, "BF16": 2, "F32": 4, "I32": 4}.get(want.dtype, 8)
            first = next(i for i in range(0, len(want.data), size) if want.data[i:i + size] != got.data[i:i + size])
            found.append(f"{what}: {name!r} differs first at element {first // size}: "
                         f"bytes {got.data[first:first + size].hex()}, expected {want.data[first:first + size].hex()}")
    for key, value in expected_metadata.items():  # extra keys in `actual_metadata` are allowed
        if actual_metadata.get(key) != value:
            found.append(f"{what}: metadata {key!r} is {actual_metadata.get(key)!r}, expected {value!r}")
    return found


def counts(tensors):
    by_dtype = collections.Counter(t.dtype for t in tensors.values())
    return ", ".join(f"{dtype} {by_dtype[dtype]}" for dtype in sorted(by_dtype))


def fail_if(found):
    if found:
        print("\n".join(f"FAILED: {line}" for line in found))
        sys.exit(1)


def python_to_minigrad(minigrad, work, torch):
    files = [("safetensors.numpy", work / "numpy.safetensors", numpy_tensors(), from_numpy, numpy_save)]
    if torch:
        from safetensors.torch import save_file as torch_save
        files.append(("safetensors.torch", work / "torch.safetensors", torch_tensors(torch), from_torch, torch_save))
    found, total = [], {}
    for writer, path, tensors, convert, save in files:
        metadata = {"format": "np" if writer.endswith("numpy") else "pt", "written by": f"{writer} ✓"}
        save(tensors, str(path), metadata=metadata)
        expected = {name: convert(t) for name, t in tensors.items()}
        actual, actual_metadata = parse(tool(minigrad, "dump", path).stdout)
        found += differences(f"{path.name} (written by {writer}) read by minigrad", expected, actual, metadata, actual_metadata)
        total.update({f"{path.name}:{name}": t for name, t in expected.items()})
    fail_if(found)
    print(f"python -> minigrad: {len(total)} tensors in {len(files)} file{'s' if len(files) > 1 else ''} ({', '.join(f[0] for f in files)}) read by minigrad: "
          f"names, dtypes, shapes and bytes equal ({counts(total)})")


def minigrad_to_python(minigrad, work, torch):
    path = work / "minigrad.safetensors"
    expected, expected_metadata = parse(tool(minigrad, "write", path).stdout)
    with safe_open(str(path), "np") as f:
        metadata = f.metadata() or {}
    readers = [("safetensors.numpy", {name: from_numpy(a) for name, a in numpy_load(str(path)).items()})]
    if torch:
        from safetensors.torch import load_file as torch_load
        readers.append(("safetensors.torch", {name: from_torch(t) for name, t in torch_load(str(path)).items()}))
    found = []
    for reader, actual in readers:
        found += differences(f"{path.name} (written by minigrad) read by {reader}", expected, actual, expected_metadata, metadata)
    fail_if(found)
    print(f"minigrad -> python: {len(expected)} tensors written by minigrad read by {' and '.join(r[0] for r in readers)}: "
          f"names, dtypes, shapes and bytes equal ({counts(expected)})")
    if not torch:
        return

    # A model minigrad trained and saved (a fixture its unit tests keep byte-identical to what
    # minigrad writes now): torch reads what minigrad reads, and the module's logits are minigrad's.
    iris = ROOT / "tests" / "data" / "minigrad_iris.safetensors"
    by_minigrad, _ = parse(tool(minigrad, "dump", iris).stdout)
    by_torch = {name: from_torch(t) for name, t in torch_load(str(iris)).items()}
    fail_if(differences(f"{iris.name} read by safetensors.torch", by_minigrad, by_torch, {}, {}))
    print(f"minigrad -> python: {iris.name}: {len(by_torch)} tensors, safetensors.torch reads what minigrad reads ({counts(by_torch)})")
    sys.path.insert(0, str(ROOT / "tools"))
    import make_safetensors_fixtures
    if make_safetensors_fixtures.check_minigrad_file() != 0:
        sys.exit(1)


def cnn_to_minigrad(minigrad, work, torch):
    sys.path.insert(0, str(ROOT / "bench"))
    from torch_models import DigitsCnn
    from safetensors.torch import save_file as torch_save
    torch.manual_seed(0)
    model = DigitsCnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):  # training steps: the running statistics and the counter move away from their start
        loss = torch.nn.functional.cross_entropy(model(torch.rand(16, 64)), torch.randint(0, 10, (16,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x = torch.rand(6, 64)
    torch_save({"x": x}, str(work / "cnn_input.safetensors"))
    state = {name: t.detach().clone() for name, t in model.state_dict().items()}
    rounded = {name: (t.to(torch.bfloat16) if t.is_floating_point() else t) for name, t in state.items()}
    found = []
    for label, saved, weights in (("F32", state, state), ("BF16", rounded, {n: t.float() if t.is_floating_point() else t for n, t in rounded.items()})):
        path = work / f"cnn_{label.lower()}.safetensors"
        torch_save(saved, str(path))
        reference = DigitsCnn()
        reference.load_state_dict(weights)
        reference.eval()
        with torch.no_grad():
            expected = reference(x).numpy()
        tensors, _ = parse(tool(minigrad, "cnn", path, work / "cnn_input.safetensors").stdout)
        got = np.frombuffer(tensors["logits"].data, dtype=np.float32).reshape(tensors["logits"].shape)
        gap = float(np.max(np.abs(got - expected)))
        if not gap <= 1e-5:
            found.append(f"the CNN saved by PyTorch in {label}: minigrad's logits differ from PyTorch's by up to {gap:.3g} (allowed 1e-5)")
        print(f"PyTorch CNN -> minigrad ({label}, BatchNorm buffers included): logits of {x.shape[0]} rows within {gap:.2g} of PyTorch's")
    fail_if(found)


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} TOOL WORK_DIR")
    if sys.byteorder != "little":
        sys.exit("FAILED: safetensors stores little-endian data; this comparison assumes a little-endian host")
    minigrad, work = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # Without torch the numpy half still runs, but the test fails: its claim is that PyTorch reads
    # and writes minigrad's checkpoints, and a pass that never ran torch would say so untested.
    # (scripts/test.sh installs Debian's python3-torch; tests/torch_interop.sh skips only where
    # there is no Python at all.)
    try:
        import torch
    except ImportError as e:
        torch, missing_torch = None, e
    python_to_minigrad(minigrad, work, torch)
    minigrad_to_python(minigrad, work, torch)
    if torch is not None:
        cnn_to_minigrad(minigrad, work, torch)
    if torch is None:
        print(f"FAILED: the PyTorch half did not run: {missing_torch} "
              f"(apt-get install python3-torch, then rerun; scripts/test.sh installs it)")
        sys.exit(1)


if __name__ == "__main__":
    main()
