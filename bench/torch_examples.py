#!/usr/bin/env python3
"""PyTorch (and scikit-learn LinearRegression) on the rows the minigrad examples train and test on.

The split is read from the files the examples write with --write-split, so both frameworks see
exactly the same train and test rows. The recipes are the examples' own:
  digits:   pixels / 16, MLP 64-128-ReLU-Dropout(0.1)-10, CrossEntropyLoss, Adam lr 1e-3,
            batch 64 shuffled, 30 epochs.
  diabetes: StandardScaler on features and target (fit on train), MLP 10-32-Tanh-1, MSELoss,
            Adam lr 1e-2, full batch, 100 epochs; test MSE in original units.

    ./build/cpu/examples/digits --write-split /tmp/digits-split.csv --out /tmp/digits-out
    ./build/cpu/examples/diabetes --write-split /tmp/diabetes-split.csv --out /tmp/diabetes-out
    /usr/bin/python3 bench/torch_examples.py /tmp/digits-split.csv /tmp/diabetes-split.csv

  digits_cnn: pixels / 16 as (N, 1, 8, 8), two Conv(3, pad 1) + BatchNorm + ReLU + MaxPool 2
            blocks (16 and 32 channels), Flatten, Dropout(0.1), Linear(128, 10); Adam lr 1e-3,
            batch 64 shuffled, 30 epochs (examples/digits_cnn). `cnn SPLIT SEEDS...` trains one
            model per seed on the split and prints each test accuracy and mean epoch time:

    /usr/bin/python3 bench/torch_examples.py cnn /tmp/digits-split.csv 1 2 3 4 5
"""
import csv
import sys
import time

import numpy as np
import torch
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import StandardScaler

from torch_models import DigitsCnn


def read_csv(path, label):
    with open(path) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], np.array(rows[1:], dtype=np.float64)
    col = header.index(label)
    return np.delete(body, col, axis=1), body[:, col]


def read_split(path):
    train, test = [], []
    with open(path) as f:
        for row in list(csv.reader(f))[1:]:
            (train if row[0] == "train" else test).append(int(row[1]))
    return np.array(train), np.array(test)


def train_digits(split_path, seed, make_model, epochs=30):
    """The digits recipe (pixels / 16, Adam lr 1e-3, shuffled batches of 64) with make_model()'s
    model: the test accuracy, and the mean seconds per epoch (training and the test evaluation, as
    the minigrad examples time it)."""
    x, y = read_csv("data/digits.csv", "label")
    train, test = read_split(split_path)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.int64)
    torch.manual_seed(seed)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[train], y[train]), batch_size=64, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    return accuracy, (time.perf_counter() - start) / epochs


def digits(split_path, seed=42):
    mlp = lambda: torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(128, 10))
    return train_digits(split_path, seed, mlp)[0]


def digits_cnn(split_path, seed=42, epochs=30):
    return train_digits(split_path, seed, DigitsCnn, epochs)


def diabetes(split_path, seed=42):
    x, y = read_csv("data/diabetes.csv", "target")
    train, test = read_split(split_path)
    scaler = StandardScaler().fit(x[train])
    mean, std = y[train].mean(), y[train].std()
    xs = torch.tensor(scaler.transform(x), dtype=torch.float32)
    ys = torch.tensor(((y - mean) / std)[:, None], dtype=torch.float32)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = torch.nn.MSELoss()
    for _ in range(100):
        loss = loss_fn(model(xs[train]), ys[train])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        torch_mse = loss_fn(model(xs[test]), ys[test]).item() * std * std
    linear = LinearRegression().fit(x[train], y[train])
    linear_mse = float(np.mean((linear.predict(x[test]) - y[test]) ** 2))
    return torch_mse, linear_mse


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "cnn":
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        results = [digits_cnn(sys.argv[2], seed=int(s)) for s in sys.argv[3:]]
        for s, (accuracy, seconds) in zip(sys.argv[3:], results):
            print(f"digits_cnn, PyTorch, seed {s}: test accuracy {accuracy:.4f}, {seconds * 1e3:.1f} ms/epoch")
        print(f"digits_cnn, PyTorch: mean test accuracy {np.mean([r[0] for r in results]):.4f} over {len(results)} seeds, "
              f"mean {np.mean([r[1] for r in results]) * 1e3:.1f} ms/epoch")
        return 0
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    print(f"torch {torch.__version__}")
    print(f"digits, PyTorch: test accuracy {digits(sys.argv[1]):.4f}")
    torch_mse, linear_mse = diabetes(sys.argv[2])
    print(f"diabetes, PyTorch MLP: test MSE {torch_mse:.1f}")
    print(f"diabetes, scikit-learn LinearRegression: test MSE {linear_mse:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
