# enslint: noqa -- the slow patterns in this file are on purpose: they are what the rule pages measure.
"""The figures quoted in the rule pages' "Why is this bad?" sections.

Times one training step (zero grads, forward, loss, backward) of each slow pattern and
of a hand-written fused equivalent, side by side in one process, with
torch.utils.benchmark. Prints a table of medians and speed-ups.

    pip install -e '.[verify]' && python benchmarks/rule_numbers.py [--threads 2]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils import benchmark

STATE, HIDDEN, ACTIONS, HEADS = 17, 256, 6, 4


def trunk() -> nn.Sequential:
    return nn.Sequential(nn.Linear(STATE, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU())


# -- ENS001: E linear heads on one input -----------------------------------------------
class LoopHeads(nn.Module):
    def __init__(self, e: int) -> None:
        super().__init__()
        self.trunk = trunk()
        self.heads = nn.ModuleList([nn.Linear(HIDDEN, ACTIONS) for _ in range(e)])

    def forward(self, x):
        h = self.trunk(x)
        return torch.stack([head(h) for head in self.heads], dim=1)


class WideHead(nn.Module):
    def __init__(self, e: int) -> None:
        super().__init__()
        self.e = e
        self.trunk = trunk()
        self.heads = nn.Linear(HIDDEN, e * ACTIONS)

    def forward(self, x):
        return self.heads(self.trunk(x)).unflatten(-1, (self.e, ACTIONS))


# -- ENS002: the seed's groups of heads, group g on slice g of an activation ------------
class SlicedGroups(nn.Module):
    def __init__(self, e: int, unbind: bool = False) -> None:
        super().__init__()
        self.unbind = unbind
        self.trunk = trunk()
        self.ensemble = nn.ModuleList(nn.ModuleList(nn.Linear(HIDDEN, ACTIONS) for _ in range(HEADS)) for _ in range(e))

    def forward(self, x):  # x: (batch, e, STATE)
        h = self.trunk(x)
        slices = h.unbind(1) if self.unbind else [h[:, g, :] for g in range(len(self.ensemble))]
        groups = [torch.stack([head(s) for head in heads], dim=1) for heads, s in zip(self.ensemble, slices)]
        return torch.stack(groups, dim=1)


class FusedGroups(nn.Module):
    def __init__(self, e: int) -> None:
        super().__init__()
        self.trunk = trunk()
        self.weight = nn.Parameter(torch.randn(e, HIDDEN, HEADS * ACTIONS) / HIDDEN**0.5)
        self.bias = nn.Parameter(torch.zeros(e, 1, HEADS * ACTIONS))

    def forward(self, x):
        h = self.trunk(x).movedim(1, 0)  # (e, batch, hidden)
        out = torch.baddbmm(self.bias, h, self.weight)  # (e, batch, heads * actions)
        return out.unflatten(-1, (HEADS, ACTIONS)).movedim(0, 1)


def step_time(model: nn.Module, x: torch.Tensor, min_run_time: float) -> float:
    def step():
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()

    timer = benchmark.Timer(stmt="step()", globals={"step": step})
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--min-run-time", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, float32, CPU")
    print(f"{'pattern':<36} {'E':>3} {'loop ms':>9} {'fused ms':>9} {'speed-up':>9}")
    for e in (10, 50):
        x = torch.randn(args.batch, STATE)
        loop, fused = step_time(LoopHeads(e), x, args.min_run_time), step_time(WideHead(e), x, args.min_run_time)
        print(f"{'ENS001 heads on one input':<36} {e:>3} {loop:>9.2f} {fused:>9.2f} {loop / fused:>8.2f}x")
    for e in (10, 50):
        x = torch.randn(args.batch, e, STATE)
        loop = step_time(SlicedGroups(e), x, args.min_run_time)
        unbind = step_time(SlicedGroups(e, unbind=True), x, args.min_run_time)
        fused = step_time(FusedGroups(e), x, args.min_run_time)
        print(f"{'ENS002 seed groups, fused':<36} {e:>3} {loop:>9.2f} {fused:>9.2f} {loop / fused:>8.2f}x")
        print(f"{'ENS002 seed groups, unbind only':<36} {e:>3} {loop:>9.2f} {unbind:>9.2f} {loop / unbind:>8.2f}x")


if __name__ == "__main__":
    main()
