#!/usr/bin/env python3
"""Reference losses for minigrad's whole-training parity tests (tests/test_parity.cpp), from PyTorch.

Three runs, each from initial weights made here (torch.manual_seed, torch.nn.Linear's own
initialisation) and data prepared here, both stored in float32 so that minigrad reads the exact
numbers PyTorch starts from:
  diabetes       data/diabetes.csv, all 442 rows, features and target standardised over the whole
                 table (population std); 10-32-Tanh-1, MSELoss, Adam lr 1e-2, full batch.
  breast_cancer  scikit-learn's load_breast_cancer, all 569 rows, features standardised; float
                 targets (N,1); 30-16-Sigmoid-1, BCEWithLogitsLoss, Adam lr 1e-2, full batch.
  digits         data/digits.csv, all 1797 rows, features / 16; 64-128-ReLU-10, CrossEntropyLoss,
                 Adam lr 1e-3, batches of 64 (the last one short) taken in a stored order: one
                 permutation per epoch, drawn here ("order", shape (epochs, N)).

Writes tests/data/parity_<run>_init.safetensors (the model's parameters as nn::Sequential names
them: "0.weight", "0.bias", "2.weight", "2.bias"; Module::load reads it), parity_<run>_data.safetensors
(x and y float32; for digits only the order, as the test reads data/digits.csv and divides by 16 itself) and parity_goldens.safetensors ("<run>.loss": the
loss of every step or batch, computed before its update; the run list as the metadata "runs").

Each run is trained in float32 (the reference) and float64 from the same float32 numbers; it fails
if they differ by more than 1e-5 relative at any recorded loss, since a run whose float32 result
depends on rounding that much cannot hold another float32 code to 1e-4.
Run with Debian's python3-torch and python3-sklearn: /usr/bin/python3 tools/make_parity_goldens.py
"""
import csv
import json
import pathlib
import sys

import torch

from make_loss_goldens import save

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
AGREEMENT = 1e-5

RUNS = [
    {"name": "diabetes", "sizes": [10, 32, 1], "activation": "Tanh", "loss": "MSELoss", "lr": 1e-2, "steps": 250, "seed": 1},
    {"name": "breast_cancer", "sizes": [30, 16, 1], "activation": "Sigmoid", "loss": "BCEWithLogitsLoss", "lr": 1e-2, "steps": 200, "seed": 2},
    {"name": "digits", "sizes": [64, 128, 10], "activation": "ReLU", "loss": "CrossEntropyLoss", "lr": 1e-3, "epochs": 3, "batch_size": 64, "seed": 3},
]


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    table = torch.tensor([[float(v) for v in row] for row in rows], dtype=torch.float64)
    return table[:, :-1], table[:, -1]


def standardise(t):
    return (t - t.mean(dim=0)) / t.std(dim=0, unbiased=False)


def dataset(name):
    """x float32 (N,in), y float32 (N,1) or int64 (N), as the C++ test reads them."""
    if name == "diabetes":
        x, y = read_csv(ROOT / "data" / "diabetes.csv")
        return standardise(x).float(), standardise(y).float().reshape(-1, 1)
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer
        bunch = load_breast_cancer()
        x = torch.tensor(bunch.data, dtype=torch.float64)
        return standardise(x).float(), torch.tensor(bunch.target, dtype=torch.float32).reshape(-1, 1)
    x, y = read_csv(ROOT / "data" / "digits.csv")
    return (x / 16).float(), y.long()


def make_model(run):
    inp, hidden, out = run["sizes"]
    return torch.nn.Sequential(torch.nn.Linear(inp, hidden), getattr(torch.nn, run["activation"])(), torch.nn.Linear(hidden, out))


def batches(run, order):
    """The row indices of every step: the whole set each step, or the stored order cut in batches."""
    if order is None:
        return [None] * run["steps"]
    size = run["batch_size"]
    return [perm[i:i + size] for perm in order for i in range(0, len(perm), size)]


def train(run, init, x, y, order, dtype):
    model = make_model(run).to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in init.items()}, strict=True)
    opt = torch.optim.Adam(model.parameters(), lr=run["lr"])
    loss_fn = getattr(torch.nn, run["loss"])()
    x = x.to(dtype)
    y = y.to(dtype) if y.is_floating_point() else y
    losses = []
    for rows in batches(run, order):
        xb, yb = (x, y) if rows is None else (x[rows], y[rows])
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return torch.tensor(losses, dtype=torch.float64)


def main():
    torch.set_num_threads(1)
    goldens = {}
    ok = True
    for run in RUNS:
        name = run["name"]
        torch.manual_seed(run["seed"])
        init = {k: v.detach().clone() for k, v in make_model(run).state_dict().items()}
        x, y = dataset(name)
        order = None
        if "epochs" in run:
            gen = torch.Generator().manual_seed(run["seed"])
            order = torch.stack([torch.randperm(len(x), generator=gen) for _ in range(run["epochs"])])
        single = train(run, init, x, y, order, torch.float32)
        double = train(run, init, x, y, order, torch.float64)
        gap = ((single - double).abs() / double.abs()).max().item()
        print(f"{name}: {len(single)} losses, {single[0]:.6f} -> {single[-1]:.6f}; float32 vs float64 at most {gap:.2e} relative")
        ok = ok and gap <= AGREEMENT
        # digits' x (counts 0..16 over 16, exact in float32) and labels are what the test reads from
        # data/digits.csv itself, so its fixture is only the order.
        data = {"x": x, "y": y} if order is None else {"order": order}
        save(init, {"format": "pt"}, DATA / f"parity_{name}_init.safetensors")
        save(data, {}, DATA / f"parity_{name}_data.safetensors")
        goldens[f"{name}.loss"] = single
    save(goldens, {"runs": json.dumps(RUNS), "torch": torch.__version__}, DATA / "parity_goldens.safetensors")
    print(f"wrote {DATA}/parity_*.safetensors")
    if not ok:
        print(f"FAILED: a run's float32 and float64 losses differ by more than {AGREEMENT}; shorten it")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
