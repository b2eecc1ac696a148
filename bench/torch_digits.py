#!/usr/bin/env python3
"""PyTorch's side of the digits benchmark: the examples/digits training epoch (MLP
64-128-ReLU-Dropout(0.1)-10, CrossEntropyLoss, Adam lr 1e-3, shuffled batches of 64 over 1437
rows: the size of the example's training split), timed one epoch at a time, two ways:

  loader: torch.utils.data.DataLoader over a TensorDataset, as the recipe (and bench/torch_examples.py)
          writes it;
  index:  one randperm per epoch and x[idx] per batch, the fastest plain-PyTorch way to batch
          tensors that are already in memory.

Prints the median us/epoch of each. One thread unless --threads says otherwise.
    /usr/bin/python3 bench/torch_digits.py [--epochs 200] [--threads 1]
"""
import argparse
import csv
import time

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default="data/digits.csv")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.data) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], np.array(rows[1:], dtype=np.float64)
    col = header.index("label")
    x = torch.tensor(np.delete(body, col, axis=1)[:1437] / 16.0, dtype=torch.float32)
    y = torch.tensor(body[:1437, col], dtype=torch.int64)

    def run(mode):
        torch.manual_seed(42)
        model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(128, 10))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True,
                                             generator=torch.Generator().manual_seed(42))

        def batches():
            if mode == "loader":
                yield from loader
            else:
                perm = torch.randperm(len(x))
                for s in range(0, len(x), 64):
                    idx = perm[s:s + 64]
                    yield x[idx], y[idx]

        model.train()
        times = []
        for epoch in range(args.epochs):
            start = time.perf_counter()
            loss_sum = None
            for xb, yb in batches():
                loss = loss_fn(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
            if epoch > 0:  # the first epoch warms up, as minigrad's
                times.append((time.perf_counter() - start) * 1e6)
        times.sort()
        steps = (len(x) + 63) // 64
        median = times[len(times) // 2]
        print(f"PyTorch {torch.__version__} {mode} ({args.threads} thread{'s' if args.threads > 1 else ''}): median {median:.1f} "
              f"us/epoch, {median / steps:.2f} us/step ({steps} steps/epoch), min {times[0]:.1f}, max {times[-1]:.1f}; last "
              f"epoch's summed loss {loss_sum.item():.4f}")

    run("loader")
    run("index")


if __name__ == "__main__":
    main()
