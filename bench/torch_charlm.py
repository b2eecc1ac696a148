#!/usr/bin/env python3
"""examples/charlm's recipe in PyTorch, and the two comparisons the issue asks of it.

The data (split, tokens, batches, validation windows) is made exactly as
examples/common/charlm_data.hpp makes it (SplitMix64 shuffles and draws), the model is
bench/torch_models.py's Gpt (minigrad's member names), and the recipe is the example's: AdamW with
weight decay on the matrices only, a linear warmup then a cosine (LambdaLR), gradients clipped to
norm 1, batch 64, float32.

    # one PyTorch run (writes DIR/steps.csv and DIR/loss.csv as the example does)
    python bench/torch_charlm.py train --seed 1 --steps 3000 --out /tmp/torch-charlm
    # the first 50 steps from the same initial weights (PyTorch's, written to a safetensors file
    # that minigrad loads): every step's loss within 1e-4 relative; exit 1 if not
    python bench/torch_charlm.py parity build/release/examples/charlm /tmp/charlm-parity
    # final validation losses, 5 seeds on each side (each from its own initialisation)
    python bench/torch_charlm.py seeds build/release/examples/charlm /tmp/charlm-seeds

Run in the environment of scripts/python-env.sh (build/pyenv/bin/python: Debian's torch and
safetensors from PyPI).
"""
import argparse
import csv
import math
import os
import pathlib
import subprocess
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from torch_models import Gpt  # noqa: E402

MASK = (1 << 64) - 1
BLOCK = 16


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n


def read_words(path, split_seed):
    with open(path, encoding="utf-8", errors="replace") as f:
        words = sorted({w for w in (line.rstrip("\r\n").lower() for line in f) if w and all("a" <= c <= "z" for c in w)})
    rng = SplitMix64(split_seed)
    for i in range(len(words) - 1, 0, -1):
        j = rng.below(i + 1)
        words[i], words[j] = words[j], words[i]
    n_val = len(words) // 10
    return words[n_val:], words[:n_val]


def encode(words):
    stream = [0]
    for w in words:
        stream.extend(ord(c) - ord("a") + 1 for c in w)
        stream.append(0)
    return torch.tensor(stream, dtype=torch.int64)


def schedule(step, steps, warmup, min_ratio):
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, steps - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def validation_loss(model, stream):
    count = (len(stream) - 1) // BLOCK
    x = stream[: count * BLOCK].reshape(count, BLOCK)
    y = stream[1 : count * BLOCK + 1].reshape(count, BLOCK)
    model.eval()
    total = 0.0
    with torch.no_grad():
        for at in range(0, count, 512):
            total += model.loss(x[at : at + 512], y[at : at + 512]).item() * min(512, count - at)
    model.train()
    return total / count


def train(args):
    """Trains one model; writes steps.csv (every step's loss) and loss.csv as the example; returns
    (final validation loss, seconds per step)."""
    train_words, val_words = read_words(args.data, args.split_seed)
    train_stream, val_stream = encode(train_words), encode(val_words)
    torch.manual_seed(args.seed)
    model = Gpt()
    if args.write_init:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args.write_init)
    if args.init:
        from safetensors.torch import load_file
        model.load_state_dict(load_file(args.init))
    opt = torch.optim.AdamW(model.param_groups(args.weight_decay), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: schedule(s, args.steps, args.warmup, 0.1))
    rng = SplitMix64(args.seed)
    offsets = len(train_stream) - BLOCK
    columns = torch.arange(BLOCK)
    losses, rows = [], []
    seconds, start = 0.0, time.perf_counter()
    model.train()
    for step in range(1, args.steps + 1):
        at = torch.tensor([rng.below(offsets) for _ in range(args.batch_size)]).unsqueeze(1) + columns
        loss = model.loss(train_stream[at], train_stream[at + 1])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % args.eval_every == 0 or step == args.steps:
            seconds += time.perf_counter() - start
            interval = losses[rows[-1][0] if rows else 0:]
            v = validation_loss(model, val_stream)
            rows.append((step, sum(interval) / len(interval), v))
            print(f"step {step:>5}  train loss {rows[-1][1]:.4f}  val loss {v:.4f}  {seconds * 1e3 / step:.1f} ms/step", flush=True)
            start = time.perf_counter()
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "steps.csv", "w") as f:
            f.write("step,loss\n" + "".join(f"{i + 1},{v:.9g}\n" for i, v in enumerate(losses)))
        with open(out / "loss.csv", "w") as f:
            f.write("step,train_loss,val_loss\n" + "".join(f"{s},{t:.9g},{v:.9g}\n" for s, t, v in rows))
    print(f"Final validation loss: {rows[-1][2]:.6f}")
    return rows[-1][2], seconds / args.steps


def read_column(path, name):
    with open(path) as f:
        return [float(row[name]) for row in csv.DictReader(f)]


def run_minigrad(binary, out, extra):
    cmd = [binary, "--out", str(out), "--samples", "0", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def parity(args):
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    init = work / "init.safetensors"
    args.write_init, args.init, args.out, args.eval_every = str(init), None, str(work / "torch"), args.steps
    train(args)
    run_minigrad(args.binary, work / "minigrad", ["--init", str(init), "--steps", str(args.steps), "--eval-every", str(args.steps),
                                                  "--seed", str(args.seed), "--split-seed", str(args.split_seed), "--data", args.data,
                                                  "--warmup", str(args.warmup)])
    theirs = read_column(work / "torch" / "steps.csv", "loss")
    ours = read_column(work / "minigrad" / "steps.csv", "loss")
    if len(ours) != len(theirs):
        sys.exit(f"error: minigrad wrote {len(ours)} step losses, PyTorch {len(theirs)}")
    worst = max(abs(a - b) / abs(b) for a, b in zip(ours, theirs))
    print(f"charlm parity: {len(ours)} steps from PyTorch's initial weights; step 1 loss {ours[0]:.6f} (PyTorch {theirs[0]:.6f}), "
          f"step {len(ours)} {ours[-1]:.6f} (PyTorch {theirs[-1]:.6f}); largest relative difference {worst:.2e} (limit {args.tolerance:g})")
    if not worst <= args.tolerance:
        for i, (a, b) in enumerate(zip(ours, theirs)):
            print(f"  step {i + 1}: minigrad {a:.9g}  PyTorch {b:.9g}  relative {abs(a - b) / abs(b):.2e}")
        sys.exit(1)


def seeds(args):
    work = pathlib.Path(args.work)
    table = []
    for seed in args.seeds:
        args.seed, args.init, args.write_init, args.out = seed, None, None, str(work / f"torch-{seed}")
        theirs, torch_step = train(args)
        text = run_minigrad(args.binary, work / f"minigrad-{seed}", ["--steps", str(args.steps), "--seed", str(seed),
                                                                       "--split-seed", str(args.split_seed), "--data", args.data,
                                                                       "--eval-every", str(args.eval_every), "--warmup", str(args.warmup)])
        ours = read_column(work / f"minigrad-{seed}" / "loss.csv", "val_loss")[-1]
        ms = [line for line in text.splitlines() if line.startswith("Training time")]
        table.append((seed, ours, theirs, torch_step * 1e3, ms[0] if ms else ""))
        print(f"seed {seed}: final validation loss minigrad {ours:.4f}, PyTorch {theirs:.4f} ({(ours / theirs - 1) * 100:+.2f}%)", flush=True)
    mean_ours = sum(r[1] for r in table) / len(table)
    mean_theirs = sum(r[2] for r in table) / len(table)
    print(f"\n| seed | minigrad val loss | PyTorch val loss | difference |\n| --- | --- | --- | --- |")
    for seed, ours, theirs, _, _ in table:
        print(f"| {seed} | {ours:.4f} | {theirs:.4f} | {(ours / theirs - 1) * 100:+.2f}% |")
    print(f"| mean | {mean_ours:.4f} | {mean_theirs:.4f} | {(mean_ours / mean_theirs - 1) * 100:+.2f}% |")
    for seed, _, _, torch_ms, line in table:
        print(f"seed {seed}: PyTorch {torch_ms:.1f} ms/step; minigrad: {line}")
    if abs(mean_ours / mean_theirs - 1) > 0.02:
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["train", "parity", "seeds"])
    parser.add_argument("binary", nargs="?", help="minigrad's charlm example (parity, seeds)")
    parser.add_argument("work", nargs="?", help="a folder for the runs' files (parity, seeds)")
    parser.add_argument("--data", default="/usr/share/dict/words")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--split-seed", type=int, default=42)
    parser.add_argument("--steps", type=int, default=None, help="default: 50 for parity, 3000 otherwise")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--init", help="train: start from these weights (safetensors)")
    parser.add_argument("--write-init", help="train: write the initial weights here (safetensors)")
    parser.add_argument("--out", help="train: a folder for steps.csv and loss.csv")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.steps is None:
        args.steps = 50 if args.mode == "parity" else 3000
    if args.mode != "train" and not (args.binary and args.work):
        parser.error(f"{args.mode} needs the charlm binary and a work folder")
    if not os.path.exists(args.data):
        sys.exit(f"error: no word list at {args.data} (apt-get install wamerican)")
    {"train": train, "parity": parity, "seeds": seeds}[args.mode](args)


if __name__ == "__main__":
    main()
