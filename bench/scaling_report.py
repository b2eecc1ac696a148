#!/usr/bin/env python3
"""Reads the lines bench/run_scaling.sh collected and prints a Markdown table (per shape and setting:
each system's median step time over the rounds, the ratio, peak memory), then writes an SVG plot:
step time against the work of one step (multiply-adds), log-log, one line per system and setting.
Standard library only."""
import argparse
import collections
import math
import statistics
import sys


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0] not in ("minigrad", "torch"):
                continue
            fields = dict(p.split("=", 1) for p in parts[1:])
            fields["system"] = parts[0]
            rows.append(fields)
    return rows


def work(shape):
    b, i, h, c = (int(v) for v in shape.split("x"))
    return b * (i * h + h * h + h * c)  # multiply-adds of one forward pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results")
    p.add_argument("--svg", required=True)
    args = p.parse_args()
    rows = parse(args.results)
    if not rows:
        sys.exit(f"error: no results in {args.results}")
    device = rows[0]["device"]
    # setting: threads on the CPU, mode on CUDA
    key = (lambda r: f"{r['threads']} thread" + ("s" if r["threads"] != "1" else "")) if device == "cpu" else (lambda r: r["mode"])
    times = collections.defaultdict(list)
    peak = collections.defaultdict(list)
    shapes, settings = [], []
    for r in rows:
        k = (r["shape"], key(r), r["system"])
        times[k].append(float(r["ms"]))
        peak[k].append(float(r["peak_mb"]))
        if r["shape"] not in shapes:
            shapes.append(r["shape"])
        if key(r) not in settings:
            settings.append(key(r))
    mem_label = "peak RSS MB" if device == "cpu" else "device MB (minigrad: taken beyond start; torch: max_memory_reserved)"
    print(f"| batch x in x hidden x classes | {'threads' if device == 'cpu' else 'mode'} | minigrad ms/step | PyTorch ms/step | "
          f"minigrad / PyTorch | {mem_label}: minigrad, PyTorch | rounds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for shape in shapes:
        for s in settings:
            m, t = times.get((shape, s, "minigrad")), times.get((shape, s, "torch"))
            if not m or not t:
                continue
            mm, tm = statistics.median(m), statistics.median(t)
            print(f"| {shape} | {s} | {mm:.4g} | {tm:.4g} | {mm / tm:.2f}x | {max(peak[(shape, s, 'minigrad')]):.1f}, "
                  f"{max(peak[(shape, s, 'torch')]):.1f} | {len(m)} |")
    write_svg(args.svg, device, shapes, settings, times)
    print(f"\n(plot: {args.svg})")


def write_svg(path, device, shapes, settings, times):
    width, height, left, right, top, bottom = 720, 480, 80, 200, 48, 64
    pw, ph = width - left - right, height - top - bottom
    xs = [work(s) for s in shapes]
    ys = [statistics.median(v) for v in times.values()]
    x_lo, x_hi = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    y_lo, y_hi = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    x_hi, y_hi = max(x_hi, x_lo + 1), max(y_hi, y_lo + 1)
    px = lambda v: left + (math.log10(v) - x_lo) / (x_hi - x_lo) * pw
    py = lambda v: top + ph - (math.log10(v) - y_lo) / (y_hi - y_lo) * ph
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left + pw / 2}" y="28" text-anchor="middle" font-size="16">MLP training step on {device.upper()}: minigrad vs PyTorch</text>']
    for e in range(x_lo, x_hi + 1):
        x = px(10 ** e)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#dddddd"/>')
        out.append(f'<text x="{x:.1f}" y="{top + ph + 18}" text-anchor="middle">1e{e}</text>')
    for e in range(y_lo, y_hi + 1):
        y = py(10 ** e)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#dddddd"/>')
        out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{10 ** e:g}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 20}" text-anchor="middle">multiply-adds per forward pass (batch x weights), log</text>')
    out.append(f'<text transform="translate(20 {top + ph / 2}) rotate(-90)" text-anchor="middle">ms per training step, log</text>')
    colours = {"minigrad": ["#1f77b4", "#17becf"], "torch": ["#d62728", "#ff7f0e"]}
    legend_y = top + 10
    for system in ("minigrad", "torch"):
        for n, s in enumerate(settings):
            pts = [(work(sh), statistics.median(times[(sh, s, system)])) for sh in shapes if times.get((sh, s, system))]
            pts.sort()
            if not pts:
                continue
            colour = colours[system][n % 2]
            dash = "" if n == 0 else ' stroke-dasharray="6 4"'
            path_d = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(pts))
            out.append(f'<path d="{path_d}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
            out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in pts]
            label = f"{'minigrad' if system == 'minigrad' else 'PyTorch'}, {s}"
            out.append(f'<line x1="{left + pw + 12}" y1="{legend_y}" x2="{left + pw + 36}" y2="{legend_y}" stroke="{colour}" stroke-width="2"{dash}/>')
            out.append(f'<text x="{left + pw + 42}" y="{legend_y + 4}">{label}</text>')
            legend_y += 20
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
