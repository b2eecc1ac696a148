#!/usr/bin/env python3
"""PyTorch's side of the scaling benchmark: the model, data and loop of bench/scaling.cpp.

in -> hidden -> ReLU -> hidden -> ReLU -> classes, CrossEntropyLoss, SGD lr 0.01, random inputs in
[-1, 1), labels (i * 7919) % classes; each step records the loss as a tensor (no host sync), as
minigrad's LossLog does. Modes: eager, and graph (CUDA only: the whole step captured once with
torch.cuda.graphs and replayed). Prints one line in bench/scaling.cpp's format:
  torch device=<cpu|cuda> mode=<eager|graph> threads=<n> shape=BxIxHxC ms=<median> runs=<...> peak_mb=<MB> loss=<last>
peak_mb: the peak resident set on the CPU; torch.cuda.max_memory_reserved on CUDA.
"""
import argparse
import resource
import statistics
import sys
import time

import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--mode", default="eager", choices=["eager", "graph"])
    p.add_argument("--shape", default="256x64x128x10", help="batch x in x hidden x classes")
    p.add_argument("--steps", type=int, default=0, help="steps per timed run (default: about 0.2 s of work)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    args = p.parse_args()
    if args.mode == "graph" and args.device != "cuda":
        sys.exit("error: --mode graph needs --device cuda")
    batch, n_in, hidden, classes = (int(v) for v in args.shape.split("x"))
    threads = args.threads if args.threads > 0 else (torch.get_num_threads() if args.device == "cpu" else 0)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    steps = args.steps
    if steps <= 0:
        flops = 6.0 * batch * (n_in * hidden + hidden * hidden + hidden * classes)
        steps = min(max(int(0.2 * 2e9 / flops), 3), 20000)
        if args.device == "cuda":
            steps = max(steps, 50)
    device = torch.device(args.device)

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, classes)).to(device)
    x = (torch.rand(batch, n_in) * 2 - 1).to(device)
    y = torch.tensor([(i * 7919) % classes for i in range(batch)], dtype=torch.long, device=device)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = []
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    if args.mode == "graph":
        # Warm up on a side stream, capture one step, then each replay is one step (torch.cuda.graphs).
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_loss = step()

        def one():
            graph.replay()
            losses.append(static_loss.detach().clone())
    else:
        for _ in range(2):  # as minigrad: two untimed steps fill the caches
            step()

        def one():
            losses.append(step().detach())

    sync()
    runs = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(steps):
            one()
        sync()
        runs.append((time.perf_counter() - start) * 1e3 / steps)
        del losses[:-1]
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_reserved() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch device={args.device} mode={args.mode} threads={threads} shape={args.shape} "
          f"ms={statistics.median(runs):.4f} runs={','.join(f'{r:.4f}' for r in runs)} "
          f"peak_mb={peak_mb:.1f} loss={float(losses[-1]):.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
