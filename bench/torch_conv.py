#!/usr/bin/env python3
"""PyTorch CPU reference for `cargo bench --bench conv`: one training step of the paper's CIFAR-10
net exactly as rbp builds it — 3 × (conv 5×5 stride 1 padding 2 + tanh + max-pool 3×3 stride 2
padding 1), 32/32/64 channels, dense 64 tanh, dense 10, softmax cross-entropy — SGD with momentum
0.9, batch 128, on the same number of threads.

    python3 bench/torch_conv.py --threads 2

BP is autograd; SRBP replaces the backward pass of the hidden layers by the projection of δ_L
through fixed random matrices onto each layer's output map (before pooling), with hooks.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

B, EPOCH = 128, 50_000


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 32, 5, padding=2)
        self.c2 = nn.Conv2d(32, 32, 5, padding=2)
        self.c3 = nn.Conv2d(32, 64, 5, padding=2)
        self.f1 = nn.Linear(64 * 4 * 4, 64)
        self.f2 = nn.Linear(64, 10)

    def forward(self, x, hook=None):
        outs = []
        h = x
        for c in (self.c1, self.c2, self.c3):
            o = torch.tanh(c(h))
            if hook is not None:
                o = hook(o)
            outs.append(o)
            h = F.max_pool2d(o, 3, stride=2, padding=1)
        o = torch.tanh(self.f1(h.flatten(1)))
        if hook is not None:
            o = hook(o)
        return self.f2(o)


def timed(step, rounds=3, steps=20):
    for _ in range(3):
        step()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        times.append((time.perf_counter() - t) / steps)
    return sorted(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(B, 3, 32, 32) * 2 - 1
    y = torch.randint(0, 10, (B,))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {B}; epoch = {EPOCH} images")
    print(f"{'variant':<8} {'ms/step':>10} {'images/s':>12} {'s/epoch':>10}")

    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def bp():
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    report("bp", timed(bp))

    # SRBP: each hidden output's gradient is replaced by C_h δ_L (then ⊙ f' by tanh's backward)
    net2 = Net()
    opt2 = torch.optim.SGD(net2.parameters(), lr=0.01, momentum=0.9)
    shapes = [(32, 32, 32), (32, 16, 16), (64, 8, 8), (64,)]
    cs = [torch.randn(int(torch.tensor(s).prod()), 10) / float(torch.tensor(s).prod()) ** 0.5 for s in shapes]
    state = {}

    class Skip(torch.autograd.Function):
        @staticmethod
        def forward(ctx, o, idx):
            ctx.idx = idx
            return o.view_as(o)

        @staticmethod
        def backward(ctx, g):
            c = cs[ctx.idx]
            return (state["delta"] @ c.t()).view_as(g), None

    def srbp():
        opt2.zero_grad(set_to_none=False)
        counter = iter(range(4))
        logits = net2(x, hook=lambda o: Skip.apply(o, next(counter)))
        with torch.no_grad():
            state["delta"] = (F.softmax(logits, 1) - F.one_hot(y, 10).float()) / B
        F.cross_entropy(logits, y).backward()
        opt2.step()

    report("srbp", timed(srbp))


def report(name, t):
    med = t[len(t) // 2]
    print(f"{name:<8} {med * 1e3:>10.1f} {B / med:>12.0f} {med * -(-EPOCH // B):>10.1f}   (rounds {t[0]*1e3:.1f}–{t[-1]*1e3:.1f} ms)")


if __name__ == "__main__":
    main()
