#!/usr/bin/env python3
"""PyTorch CPU reference for `cargo bench --bench step`: one training step of the
784-100-100-100-100-10 tanh net at batch 100, on a fixed number of threads.

    python3 bench/torch_step.py --threads 1

Variants timed:
  autograd-bp   nn.Linear + tanh + cross_entropy, loss.backward(), optim.SGD.step() — what a
                PyTorch user writes;
  manual-bp / manual-rbp / manual-srbp
                the same step written with explicit tensor ops under no_grad, the way rbp computes
                it (forward, δ_L = softmax − onehot, channel signal, δᵀO updates), so the learning
                channel can be swapped.
Each: 300 warm-up steps, then 7 rounds of 1000 steps; the median round is reported.
"""
import argparse
import statistics
import time

import torch

B, SIZES, LR = 100, [784, 100, 100, 100, 100, 10], 0.1


def timed(step, rounds=7, steps=1000, warmup=300):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        times.append((time.perf_counter() - t) / steps)
    return statistics.median(times), min(times), max(times)


def flops(channel):
    macs = sum(a * b for a, b in zip(SIZES, SIZES[1:])) * 2  # forward + weight updates
    if channel == "srbp":
        macs += SIZES[-1] * sum(SIZES[1:-1])
    else:
        macs += sum(a * b for a, b in zip(SIZES[1:-1], SIZES[2:]))
    return 2 * B * macs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(B, 784)
    y = torch.randint(0, 10, (B,))
    onehot = torch.nn.functional.one_hot(y, 10).float()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"{'variant':<13} {'µs/step':>9} {'samples/s':>10} {'GFLOP/s':>8}")

    # autograd BP
    layers = []
    for a, b in zip(SIZES, SIZES[1:]):
        lin = torch.nn.Linear(a, b)
        torch.nn.init.normal_(lin.weight, 0.0, (1.0 / a) ** 0.5)
        torch.nn.init.zeros_(lin.bias)
        layers.append(lin)
    mods = []
    for lin in layers[:-1]:
        mods += [lin, torch.nn.Tanh()]
    net = torch.nn.Sequential(*mods, layers[-1])
    opt = torch.optim.SGD(net.parameters(), lr=LR)

    def autograd_step():
        opt.zero_grad(set_to_none=False)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    report("autograd-bp", timed(autograd_step), flops("bp"))

    # manual steps
    W = [torch.randn(b, a) * (1.0 / a) ** 0.5 for a, b in zip(SIZES, SIZES[1:])]
    bias = [torch.zeros(b) for b in SIZES[1:]]
    C_rbp = [torch.randn(SIZES[i + 1], SIZES[i + 2]) * (1.0 / SIZES[i + 1]) ** 0.5 for i in range(len(W) - 1)]
    C_srbp = [torch.randn(SIZES[i + 1], SIZES[-1]) * (1.0 / SIZES[i + 1]) ** 0.5 for i in range(len(W) - 1)]

    def manual(channel):
        def step():
            with torch.no_grad():
                acts = [x]
                for i, (w, b) in enumerate(zip(W, bias)):
                    s = torch.addmm(b, acts[-1], w.t())
                    acts.append(torch.tanh(s) if i + 1 < len(W) else s)
                p = torch.softmax(acts[-1], dim=1)
                deltas = [None] * len(W)
                deltas[-1] = p - onehot
                for i in range(len(W) - 2, -1, -1):
                    if channel == "bp":
                        g = deltas[i + 1] @ W[i + 1]
                    elif channel == "rbp":
                        g = deltas[i + 1] @ C_rbp[i].t()
                    else:
                        g = deltas[-1] @ C_srbp[i].t()
                    deltas[i] = g * (1 - acts[i + 1] * acts[i + 1])
                for i in range(len(W)):
                    W[i].addmm_(deltas[i].t(), acts[i], alpha=-LR / B)
                    bias[i].add_(deltas[i].sum(0), alpha=-LR / B)
        return step

    for ch in ["bp", "rbp", "srbp"]:
        report(f"manual-{ch}", timed(manual(ch)), flops(ch))


def report(name, t, flop):
    med, lo, hi = t
    print(f"{name:<13} {med * 1e6:>9.1f} {B / med:>10.0f} {flop / med / 1e9:>8.1f}   (min {lo * 1e6:.1f} µs, max {hi * 1e6:.1f} µs)")


if __name__ == "__main__":
    main()
