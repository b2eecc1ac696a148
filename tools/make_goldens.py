#!/usr/bin/env python3
"""Reference values for minigrad's optimizer tests (tests/test_optim.cpp), from PyTorch.

Reads the Iris MLP's initial weights and the training split as minigrad made them
(tests/data/optim_iris_init.safetensors, written by Module::save, and optim_iris_data.safetensors:
x_train and y_train as examples::load_iris gives them; MINIGRAD_WRITE_FIXTURES=1 minigrad_tests
rewrites both), trains full-batch with each optimizer run below and writes the loss at every step
(computed before that step's update, as the C++ loop records it) to tests/data/optim_goldens.safetensors
as "<run>.loss", the run list itself as the metadata "runs" (JSON), and the learning rates
StepLR and CosineAnnealingLR give over 25 steps ("steplr.lr", "cosine.lr").

Each run is made in float32 (the reference) and float64; it fails if they differ by more than
1e-5 relative at any step, since past that point the run is chaotic and no float32 code could be
held to 1e-4. Run with Debian's python3-torch: /usr/bin/python3 tools/make_goldens.py
"""
import json
import pathlib
import sys

import torch
from safetensors.torch import load_file, save_file

DATA = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data"
AGREEMENT = 1e-5

RUNS = [
    {"name": "adam", "optimizer": "Adam", "steps": 150, "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0},
    {"name": "adam_l2", "optimizer": "Adam", "steps": 150, "lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.1},
    {"name": "adamw", "optimizer": "AdamW", "steps": 150, "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.1},
    {"name": "rmsprop", "optimizer": "RMSprop", "steps": 150, "lr": 0.001, "alpha": 0.99, "eps": 1e-8,
     "weight_decay": 0.0, "momentum": 0.0, "centered": False},
    {"name": "rmsprop_centered", "optimizer": "RMSprop", "steps": 60, "lr": 0.001, "alpha": 0.9, "eps": 1e-8,
     "weight_decay": 0.01, "momentum": 0.5, "centered": True},
]


class IrisMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 10)
        self.relu = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(10, 3)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def make_optimizer(run, params):
    if run["optimizer"] in ("Adam", "AdamW"):
        cls = torch.optim.Adam if run["optimizer"] == "Adam" else torch.optim.AdamW
        return cls(params, lr=run["lr"], betas=tuple(run["betas"]), eps=run["eps"], weight_decay=run["weight_decay"])
    return torch.optim.RMSprop(params, lr=run["lr"], alpha=run["alpha"], eps=run["eps"], weight_decay=run["weight_decay"],
                               momentum=run["momentum"], centered=run["centered"])


def train(run, init, x, y, dtype):
    model = IrisMLP().to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in init.items()}, strict=True)
    opt = make_optimizer(run, model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    x = x.to(dtype)
    losses = []
    for _ in range(run["steps"]):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return torch.tensor(losses, dtype=torch.float64)


def schedule(kind):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    if kind == "steplr":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    lrs = []
    for _ in range(25):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return torch.tensor(lrs, dtype=torch.float64)


def main():
    torch.set_num_threads(1)
    init = load_file(DATA / "optim_iris_init.safetensors")
    data = load_file(DATA / "optim_iris_data.safetensors")
    x, y = data["x_train"], data["y_train"]
    out = {}
    ok = True
    for run in RUNS:
        single = train(run, init, x, y, torch.float32)
        double = train(run, init, x, y, torch.float64)
        gap = ((single - double).abs() / double.abs()).max().item()
        print(f"{run['name']}: {run['steps']} steps, loss {single[0]:.6f} -> {single[-1]:.6f}; "
              f"float32 vs float64 at most {gap:.2e} relative")
        ok = ok and gap <= AGREEMENT
        out[f"{run['name']}.loss"] = single
    for kind in ("steplr", "cosine"):
        out[f"{kind}.lr"] = schedule(kind)
    save_file(out, DATA / "optim_goldens.safetensors", metadata={"runs": json.dumps(RUNS), "torch": torch.__version__})
    print(f"wrote {DATA / 'optim_goldens.safetensors'}")
    if not ok:
        print(f"FAILED: a run's float32 and float64 losses differ by more than {AGREEMENT}; shorten it")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
