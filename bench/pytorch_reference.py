#!/usr/bin/env python3
"""The fairbits tabular workload in PyTorch, for speed comparisons (not part of CI; PyTorch's wheel is
large). Adult-sized: 21,113 rows x 102 inputs -> 64 tanh -> 32 stochastic binary (a = tanh(z),
p = sigmoid(6 a), straight-through identity estimator) -> 1 logit; batch 256, Adam (lr 1e-3, no weight
decay), stable BCE plus gamma times the per-neuron MI penalty (docs/design.md, section 2); one thread.

usage: python3 bench/pytorch_reference.py [--epochs 5] [--models 1] [--json]
Prints seconds per epoch, milliseconds per step and, for --models N, the time to train N models in sequence.
"""
import argparse, json, math, time

import torch

torch.set_num_threads(1)

N, D, H1, M, BATCH = 21113, 102, 64, 32, 256


def per_neuron_mi(p, s):
    """sum_j [h(theta_j) - sum_s (n_s/n) h(theta_j^s)] in bits, groups absent contribute nothing."""
    def h(q):
        q = q.clamp(1e-7, 1 - 1e-7)
        return -(q * torch.log2(q) + (1 - q) * torch.log2(1 - q))
    total = h(p.mean(0)).sum()
    n = p.shape[0]
    for g in (0, 1):
        mask = s == g
        k = int(mask.sum())
        if k:
            total = total - (k / n) * h(p[mask].mean(0)).sum()
    return total


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(D, H1)
        self.l2 = torch.nn.Linear(H1, M)
        self.head = torch.nn.Linear(M, 1)
        for l in (self.l1, self.l2, self.head):
            torch.nn.init.xavier_uniform_(l.weight)
            torch.nn.init.zeros_(l.bias)

    def forward(self, x):
        a = torch.tanh(self.l2(torch.tanh(self.l1(x))))
        p = torch.sigmoid(6.0 * a)
        t = (p > torch.rand_like(p)).float()
        out = a + (t - a).detach()
        return self.head(out).squeeze(1), p


def train(x, y, s, epochs, gamma=1.0):
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    bce = torch.nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        order = torch.randperm(N)
        for i in range(0, N, BATCH):
            idx = order[i:i + BATCH]
            logits, p = net(x[idx])
            loss = bce(logits, y[idx]) + gamma * per_neuron_mi(p, s[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--models", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    x = torch.randn(N, D)
    s = (torch.rand(N) < 0.67).long()
    y = ((x[:, 0] + 0.5 * s + 0.3 * torch.randn(N)) > 0.5).float()
    train(x, y, s, 1)  # warm-up
    t = time.perf_counter()
    train(x, y, s, a.epochs)
    epoch = (time.perf_counter() - t) / a.epochs
    steps = math.ceil(N / BATCH)
    out = {"torch": torch.__version__, "seconds_per_epoch": epoch, "ms_per_step": 1e3 * epoch / steps}
    if a.models > 1:
        t = time.perf_counter()
        for _ in range(a.models):
            train(x, y, s, a.epochs)
        out[f"seconds_{a.models}_models_{a.epochs}_epochs_in_sequence"] = time.perf_counter() - t
    print(json.dumps(out) if a.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
