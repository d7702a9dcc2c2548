"""torch.fx graphs of the original and the rewrite: how many calls each step makes.

`symbolic_trace` runs the method with proxies in place of tensors and records every call
(module, function, method). The original's loop unrolls into one call per member, so
its count grows with E; the fused rewrite's does not. Tracing stops at Python control
flow that depends on tensor values (`if x.sum() > 0:`); the construct and its line are
reported, and the comparison then runs eagerly.
"""

from __future__ import annotations

import inspect
import linecache
import os
import traceback
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.fx

_CALLS = ("call_module", "call_function", "call_method")


@dataclass
class Traced:
    module: torch.nn.Module | None  # the GraphModule, None when tracing failed
    calls: int | None  # call nodes in the graph
    problem: str | None  # why tracing failed: the construct and where


class _CountTorchCalls(torch.overrides.TorchFunctionMode):
    """Counts torch functions and tensor methods called, for modules fx cannot trace."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(
        self,
        func: Callable[..., object],
        types: Collection[type],
        args: Sequence[object] = (),
        kwargs: Mapping[str, object] | None = None,
    ) -> object:
        self.calls += 1
        return func(*args, **(kwargs or {}))


def eager_calls(model: torch.nn.Module, method: str, inputs: list[torch.Tensor]) -> int:
    """How many torch calls one eager forward makes (under vmap, a batched call counts once)."""
    with torch.no_grad(), _CountTorchCalls() as counter:
        getattr(model, method)(*inputs)
    return counter.calls


def _through(model: torch.nn.Module, method: str) -> torch.nn.Module:
    """A module whose forward is `model.<method>`, with the method's own signature, for
    symbolic_trace (which traces `forward`)."""
    if method == "forward":
        return model
    signature = inspect.signature(getattr(model, method))
    names = [p.name for p in signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(names) != len(signature.parameters):
        raise TypeError(f"{method} takes *args, **kwargs or keyword-only arguments")
    namespace: dict = {}
    arguments = ", ".join(names)
    exec(f"def forward(self, {arguments}):\n    return self.wrapped.{method}({arguments})\n", namespace)  # noqa: S102
    via = type(f"Via_{method}", (torch.nn.Module,), {"forward": namespace["forward"]})()
    via.wrapped = model
    return via


def _normal(filename: str) -> str:
    return filename if filename.startswith("<") else os.path.abspath(filename)


def _where(error: BaseException, files: set[str]) -> str:
    """The user's line that stopped the tracer, from the innermost frame in their files.
    A line of the in-memory rewrite has no place in the user's file: the code is shown
    without a line number."""
    wanted = {_normal(f) for f in files}
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if _normal(frame.filename) in wanted:
            line = frame.line
            if not line:
                assert frame.lineno is not None, "a traceback's frames have a line number"
                line = linecache.getline(frame.filename, frame.lineno)
            line = line.strip()
            if frame.filename.startswith("<enslint rewrite of"):
                return f" in the rewrite's `{shorten(line, 100)}`"
            shown = frame.filename.rsplit("/", 1)[-1]
            return f" at {shown}:{frame.lineno} `{line}`"
    return ""


def shorten(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut at a word boundary (never inside one)."""
    if len(text) <= width:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0]
    return (cut if cut else text[: width - 1]) + "…"


def trace(model: torch.nn.Module, method: str, files: set[str]) -> Traced:
    try:
        graph_module = torch.fx.symbolic_trace(_through(model, method))
    except Exception as error:  # noqa: BLE001 - any failure means "not traceable", with why
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if isinstance(error, torch.fx.proxy.TraceError) or "symbolically traced variables" in message:
            construct = "data-dependent control flow"
        elif "vmap" in "".join(traceback.format_tb(error.__traceback__)):
            construct = "torch.vmap"
        else:
            construct = type(error).__name__
        return Traced(None, None, f"{construct}{_where(error, files)}: {shorten(message, 160)}")
    calls = sum(node.op in _CALLS for node in graph_module.graph.nodes)
    return Traced(graph_module, calls, None)
