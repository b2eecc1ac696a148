#!/usr/bin/env python3
"""PyTorch's side of the sequence-model benchmark (bench/run_seq.sh; bench/seq_bench.cpp is
minigrad's): causal scaled dot-product attention forward and backward on (batch, heads, T, D)
inputs (--what sdpa), or one LSTM layer over N=32, T=64, 128 -> 256 forward and backward (--what lstm). torch.nn.functional.scaled_dot_product_attention where this PyTorch has it (2.0 on), else
its math form (softmax(q k^T / sqrt(D) masked) v), which is what torch 1.13's attention layers run.
Or one training step of examples/charlm's GPT at batch 64 (--what gpt: bench/torch_models.py's Gpt,
forward, backward, gradient clipping, AdamW with its parameter groups) on a fixed random batch.
Prints the median us/call and the process's peak resident memory.

    /usr/bin/python3 bench/torch_seq.py --T 256 --threads 1
"""
import argparse
import math
import resource
import statistics
import time

import torch
import torch.nn.functional as F

from torch_models import Gpt


def attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~torch.ones(t, t, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    return torch.softmax(scores, -1) @ v


def lstm(args, device, sync):
    torch.manual_seed(7)
    layer = torch.nn.LSTM(128, 256).to(device)
    x = (torch.rand(64, 32, 128) * 2 - 1).to(device).requires_grad_()
    dy = (torch.rand(64, 32, 256) * 2 - 1).to(device)

    def call():
        x.grad = None
        layer.zero_grad(set_to_none=True)
        (layer(x)[0] * dy).sum().backward()

    return call


def gpt(args, device, sync):
    torch.manual_seed(7)
    model = Gpt().to(device)
    opt = torch.optim.AdamW(model.param_groups(0.1), lr=1e-3, weight_decay=0.1)
    x = torch.randint(0, 27, (64, 16), device=device)
    y = torch.randint(0, 27, (64, 16), device=device)

    def call():
        loss = model.loss(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return call


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--T", type=int, default=256)
    parser.add_argument("--D", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--what", choices=["sdpa", "lstm", "gpt"], default="sdpa")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    shape = (args.batch, args.heads, args.T, args.D)
    q, k, v = [(torch.rand(*shape) * 2 - 1).to(device).requires_grad_() for _ in range(3)]
    dy = (torch.rand(*shape) * 2 - 1).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def call():
        for t in (q, k, v):
            t.grad = None
        (attention(q, k, v) * dy).sum().backward()

    if args.what == "lstm":
        call = lstm(args, device, sync)
    if args.what == "gpt":
        call = gpt(args, device, sync)
    for _ in range(2):
        call()
    sync()
    us = []
    for _ in range(args.steps):
        start = time.perf_counter()
        call()
        sync()
        us.append((time.perf_counter() - start) * 1e6)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.what == "gpt":
        print(f"torch {torch.__version__} gpt step {args.device} batch 64 T=16 ({args.threads} thread{'s' if args.threads != 1 else ''}): "
              f"median {statistics.median(us):.1f} us/call, min {min(us):.1f}; peak rss {peak:.1f} MB")
        return
    if args.what == "lstm":
        print(f"torch {torch.__version__} lstm {args.device} N=32 T=64 128->256 ({args.threads} thread{'s' if args.threads != 1 else ''}): "
              f"median {statistics.median(us):.1f} us/call, min {min(us):.1f}; peak rss {peak:.1f} MB")
        return
    form = "fused" if hasattr(F, "scaled_dot_product_attention") else "math form"
    print(f"torch {torch.__version__} sdpa ({form}) {args.device} B={args.batch} H={args.heads} T={args.T} D={args.D} causal "
          f"({args.threads} thread{'s' if args.threads != 1 else ''}): median {statistics.median(us):.1f} us/call, min {min(us):.1f}; "
          f"peak rss {peak:.1f} MB")


if __name__ == "__main__":
    main()
