#!/usr/bin/env python3
"""The PyTorch original of the Iris workload, timed the way bench/iris_bench times minigrad.

4 -> hidden -> ReLU -> 3, full batch, SGD lr 0.01, CrossEntropyLoss, the scikit-learn split
(test_size 0.2, random_state 42) and MinMaxScaler. Modes:
  item    loss.item() every epoch (the lesson's loop: one host sync per epoch)
  log     the loss kept every --log-every epochs as a tensor, read once at the end
  graph   CUDA only: the whole step captured once as a CUDA graph and replayed
Prints one line: torch <device> <mode>: median <us> us/epoch (runs ...), final loss, peak RSS.
"""
import argparse
import csv
import resource
import statistics
import sys
import time

import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler


def load(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    names = []
    for r in rows:
        if r["species"] not in names:
            names.append(r["species"])
    x = [[float(r[k]) for k in ("sepal_length", "sepal_width", "petal_length", "petal_width")] for r in rows]
    y = [names.index(r["species"]) for r in rows]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=42)
    scaler = MinMaxScaler().fit(x_train)
    return scaler.transform(x_train), y_train


class MLP(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, hidden)
        self.relu = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(hidden, 3)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def run_once(args, x, y, device):
    torch.manual_seed(42)
    model = MLP(args.hidden).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = []
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if args.mode == "graph":
        static_loss = [None]

        def step():
            opt.zero_grad(set_to_none=False)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            static_loss[0] = loss

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up, as torch.cuda.graphs asks
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        warm = 4
        sync()
        start = time.perf_counter()
        for epoch in range(args.epochs - warm):
            graph.replay()
            if (epoch + 1) % args.log_every == 0:
                losses.append(static_loss[0].detach().clone())
        sync()
        elapsed = time.perf_counter() - start
        return elapsed / (args.epochs - warm), float(losses[-1]) if losses else float("nan")
    sync()
    start = time.perf_counter()
    for epoch in range(args.epochs):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if args.mode == "item":
            losses.append(loss.item())
        elif (epoch + 1) % args.log_every == 0:
            losses.append(loss.detach())
    sync()
    elapsed = time.perf_counter() - start
    final = losses[-1] if args.mode == "item" else float(torch.stack(losses)[-1])
    return elapsed / args.epochs, final


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--mode", default="item", choices=["item", "log", "graph"])
    p.add_argument("--epochs", type=int, default=20000)
    p.add_argument("--hidden", type=int, default=10)
    p.add_argument("--log-every", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", default="data/iris.csv")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    xs, ys = load(args.data)
    x = torch.tensor(xs, dtype=torch.float32, device=device)
    y = torch.tensor(ys, dtype=torch.long, device=device)
    runs = [run_once(args, x, y, device) for _ in range(args.repeats)]
    per_epoch = [r[0] * 1e6 for r in runs]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {torch.__version__} {args.device} {args.mode}: median {statistics.median(per_epoch):.2f} us/epoch "
          f"(runs: {', '.join(f'{v:.2f}' for v in per_epoch)}), final loss {runs[-1][1]:.6f}, peak RSS {rss_mb:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
