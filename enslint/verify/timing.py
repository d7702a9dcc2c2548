"""Forward and forward+backward times with torch.utils.benchmark.

`Timer.adaptive_autorange` synchronises CUDA around its measurements and runs blocks of
calls until the interquartile range of the block times is under a tenth of their median
or the time budget (ten times `min_time`) is spent; the median and that range are
reported. One untimed call first takes the warm-up (allocator, kernel selection, lazy
initialisation) out of the figures. The forward is timed under
`torch.no_grad()` (inference); forward+backward is one training step without the
optimiser: zero the gradients, forward, a sum of the outputs, backward.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils import benchmark

from enslint.verify.equivalence import flatten


@dataclass
class Timing:
    forward_ms: float
    step_ms: float
    forward_iqr_ms: float = 0.0
    step_iqr_ms: float = 0.0


def _synchronise(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _leaves(inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [x.detach().requires_grad_(x.is_floating_point()) for x in inputs]


def _train_step(function: Callable[..., object], parameters: list[torch.Tensor], leaves: list[torch.Tensor]) -> None:
    for p in parameters:
        p.grad = None
    outputs = [o for o in flatten(function(*leaves)) if o.requires_grad]
    if outputs:
        torch.stack([o.float().sum() for o in outputs]).sum().backward()


def measure(
    function: Callable[..., object],
    parameters: list[torch.Tensor],
    inputs: list[torch.Tensor],
    min_time: float,
    device: str,
) -> Timing:
    """`function` (a module's method, or its compiled version) over `parameters`."""
    leaves = _leaves(inputs)

    def forward() -> None:
        with torch.no_grad():
            function(*inputs)

    def step() -> None:
        _train_step(function, parameters, leaves)

    medians, spreads = [], []
    for fn in (forward, step):
        fn()  # warm-up, not timed
        _synchronise(device)
        timer = benchmark.Timer(stmt="fn()", globals={"fn": fn})
        measurement = timer.adaptive_autorange(threshold=0.1, min_run_time=min_time, max_run_time=10 * min_time)
        medians.append(measurement.median * 1e3)
        spreads.append(measurement.iqr * 1e3)
    return Timing(medians[0], medians[1], spreads[0], spreads[1])


def compile_and_measure(
    function: Callable[..., object],
    parameters: list[torch.Tensor],
    inputs: list[torch.Tensor],
    min_time: float,
    device: str,
) -> tuple[float, Timing]:
    """torch.compile `function`; (seconds the first training step took, which compiles
    it, its timing)."""
    compiled = torch.compile(function)
    start = time.perf_counter()
    _train_step(compiled, parameters, _leaves(inputs))
    _synchronise(device)
    seconds = time.perf_counter() - start
    return seconds, measure(compiled, parameters, inputs, min_time, device)
