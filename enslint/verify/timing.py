"""Forward and forward+backward times with torch.utils.benchmark.

`Timer.blocked_autorange` synchronises CUDA around its measurements and reports the
median of blocks of runs; one untimed call first takes the warm-up (allocator, kernel
selection, lazy initialisation) out of the figures. The forward is timed under
`torch.no_grad()` (inference); forward+backward is one training step without the
optimiser: zero the gradients, forward, a sum of the outputs, backward.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils import benchmark

from enslint.verify.equivalence import flatten


@dataclass
class Timing:
    forward_ms: float
    step_ms: float


def _call(model: torch.nn.Module, method: str, inputs: list[torch.Tensor]):
    return getattr(model, method)(*inputs)


def _synchronise(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(model, method: str, inputs: list[torch.Tensor], min_time: float, device: str) -> Timing:
    leaves = [x.detach().requires_grad_(x.is_floating_point()) for x in inputs]

    def forward():
        with torch.no_grad():
            _call(model, method, inputs)

    def step():
        for p in model.parameters():
            p.grad = None
        outputs = [o for o in flatten(_call(model, method, leaves)) if o.requires_grad]
        if outputs:
            torch.stack([o.float().sum() for o in outputs]).sum().backward()

    results = []
    for fn in (forward, step):
        fn()  # warm-up, not timed
        _synchronise(device)
        timer = benchmark.Timer(stmt="fn()", globals={"fn": fn})
        results.append(timer.blocked_autorange(min_run_time=min_time).median * 1e3)
    return Timing(*results)


def compile_and_measure(model, method: str, inputs: list[torch.Tensor], min_time: float, device: str) -> tuple[float, Timing]:
    """torch.compile the method; (seconds the first call took, which compiles it, timing)."""
    compiled = torch.compile(getattr(model, method))
    holder = type("Compiled", (), {method: staticmethod(compiled), "parameters": model.parameters})()
    start = time.perf_counter()
    leaves = [x.detach().requires_grad_(x.is_floating_point()) for x in inputs]
    outputs = [o for o in flatten(compiled(*leaves)) if o.requires_grad]
    if outputs:
        torch.stack([o.float().sum() for o in outputs]).sum().backward()
    _synchronise(device)
    seconds = time.perf_counter() - start
    return seconds, measure(holder, method, inputs, min_time, device)
