#!/usr/bin/env python3
"""PyTorch's side of the convolution benchmark (bench/run_conv.sh; bench/conv_bench.cpp is
minigrad's, with the same models, batch and step: forward, cross-entropy, backward, SGD with
momentum 0.9 at lr 0.01). Prints the median us/step.

    /usr/bin/python3 bench/torch_conv.py --model lenet --threads 1 --steps 50
"""
import argparse
import pathlib
import statistics
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from torch_models import DigitsCnn  # noqa: E402


class LeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = torch.nn.Linear(400, 120), torch.nn.Linear(120, 84), torch.nn.Linear(84, 10)

    def forward(self, x):
        h = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        h = torch.flatten(torch.nn.functional.max_pool2d(torch.relu(self.conv2(h)), 2), 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(h)))))


class Blocks(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.BatchNorm2d(64)
        self.conv2, self.bn2 = torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.BatchNorm2d(64)
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x):
        h = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(h, 1), 1))


MODELS = {"lenet": (LeNet, (64, 1, 28, 28)), "blocks": (Blocks, (32, 3, 32, 32)), "digits": (DigitsCnn, (64, 64))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=MODELS, default="digits")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    make, shape = MODELS[args.model]
    device = torch.device(args.device)
    model = make().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = (torch.rand(*shape) * 2 - 1).to(device)
    y = (torch.arange(shape[0]) * 7 % 10).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    for _ in range(3):
        step()
    sync()
    us = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        sync()
        us.append((time.perf_counter() - start) * 1e6)
    print(f"torch {args.model} {args.device} ({args.threads} thread{'s' if args.threads != 1 else ''}): median {statistics.median(us):.1f} us/step, "
          f"min {min(us):.1f}, max {max(us):.1f} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
