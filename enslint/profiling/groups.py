"""Judge what the recorder saw at each call site: an ensemble, or siblings that are not one.

An ensemble, as the run shows it: every run of the loop calls at least two distinct
members of one collection, all of one structure (class, parameter and buffer names,
shapes and dtypes), each on the same tensors or on slices of one tensor of one shape.
Anything else is kept with its reason: members that differ, a chain (`x = layer(x)`),
inputs of different shapes, a different tensor per member.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Sequence

from enslint.profiles import Group, Rejected
from enslint.profiling.recorder import MemberCall, Site, StepClock, TensorSeen

SAME, SLICES = "same", "slices"


def judge(site: Site, run_s: float, clock: StepClock | None = None) -> Group | Rejected | None:
    """None when no run of the loop called two members (one member picked by index)."""
    loops = [o for o in site.occurrences if len({c.member for c in o.calls}) >= 2]
    if not loops:
        return None
    kinds = set()
    for occurrence in loops:
        verdict = _occurrence(occurrence.calls)
        if verdict not in (SAME, SLICES):
            return Rejected(site.path, loop_line(site.path, site.line), site.collection, site.holder_class, verdict)
        kinds.add(verdict)
    signatures = {c.signature for o in loops for c in o.calls}
    if len(signatures) > 1:
        return Rejected(
            site.path,
            loop_line(site.path, site.line),
            site.collection,
            site.holder_class,
            "the runs of the loop called members that differ",
        )
    cls, method = owner(site.qualname)
    first = loops[0].calls[0]
    total = site.forward_s + site.backward_s
    step_share = calls_per_step = None
    span = clock.span_s if clock is not None else None
    if span and site.at_first_step is not None and site.at_last_step is not None:
        step_share = (site.at_last_step[0] - site.at_first_step[0]) / span
        calls_per_step = (site.at_last_step[1] - site.at_first_step[1]) / (clock.steps - 1)  # type: ignore[union-attr]
    return Group(
        path=site.path,
        line=loop_line(site.path, site.line),
        cls=cls,
        method=method,
        collection=site.collection,
        holder=site.holder_class,
        members=max(len({c.member for c in o.calls}) for o in loops),
        member_class=first.member_class,
        input=SLICES if SLICES in kinds else SAME,
        calls=sum(len(o.calls) for o in site.occurrences),
        loops=len(loops),
        forward_s=site.forward_s,
        backward_s=site.backward_s,
        share=total / run_s if run_s > 0 else 0.0,
        shapes=[list(t.shape) for t in first.inputs],
        container=site.container,
        step_share=step_share,
        calls_per_step=calls_per_step,
    )


def _occurrence(calls: Sequence[MemberCall]) -> str:
    """SAME, SLICES, or why these calls are not members run side by side."""
    first = calls[0]
    for previous, call in zip(calls, calls[1:], strict=False):
        if call.signature != first.signature:
            return _difference(first, call)
        if any(t.data in previous.outputs for t in call.inputs):
            return "a chain: each member takes the previous member's output"
    if len({len(c.inputs) for c in calls}) > 1 or not first.inputs:
        return "the members take different arguments"
    kinds = [_position([c.inputs[i] for c in calls]) for i in range(len(first.inputs))]
    for kind in kinds:
        if kind not in (SAME, SLICES):
            return kind
    return SLICES if SLICES in kinds else SAME


def _position(tensors: list[TensorSeen]) -> str:
    first = tensors[0]
    if all(t.identity == first.identity or _same_view(t, first) for t in tensors):
        return SAME
    if len({t.shape for t in tensors}) > 1:
        return "the members are called with inputs of different shapes"
    # Slices of one tensor; members of one group of a nested collection share theirs.
    if first.base is not None and all(t.base == first.base for t in tensors):
        return SLICES
    return "each member gets a tensor of its own (not one tensor, nor slices of one)"


def _same_view(a: TensorSeen, b: TensorSeen) -> bool:
    return (a.data, a.shape, a.stride, a.offset, a.dtype) == (b.data, b.shape, b.stride, b.offset, b.dtype)


def _difference(a: MemberCall, b: MemberCall) -> str:
    if a.signature[0] != b.signature[0]:
        return f"the members are of different classes (`{a.member_class}`, `{b.member_class}`)"
    for (name, shape, _), (_, other, _) in zip(a.signature[1], b.signature[1], strict=False):
        if shape != other:
            return f"the members' parameters differ in shape (`{name}`: {list(shape)} and {list(other)})"
    return "the members' parameters or buffers differ"


def owner(qualname: str) -> tuple[str, str]:
    """("Ensemble", "forward") for "Ensemble.forward.<locals>.<listcomp>"; ("", "<module>")
    for a loop in a file's top-level code."""
    parts = qualname.split(".<locals>.")[0].split(".")
    if parts[-1].startswith("<"):
        return "", "<module>"
    return (parts[-2] if len(parts) > 1 else "", parts[-1])


@functools.lru_cache(maxsize=256)
def _loops_of(path: str) -> tuple[tuple[int, int], ...]:
    try:
        with open(path, "rb") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        return ()
    kinds = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    return tuple((node.lineno, node.end_lineno or node.lineno) for node in ast.walk(tree) if isinstance(node, kinds))


def loop_line(path: str, line: int) -> int:
    """The line of the innermost loop around `line` (the call's own line without one)."""
    around = [span for span in _loops_of(path) if span[0] <= line <= span[1]]
    return max(around, key=lambda span: span[0])[0] if around else line


def _plus(a: tuple[float, int] | None, b: tuple[float, int]) -> tuple[float, int]:
    return (a[0] + b[0], a[1] + b[1]) if a is not None else b


def _merged(sites: Sequence[Site]) -> list[Site]:
    """One site per loop: the instances of one class (a critic and its target copy) that
    the same line ran are that loop's runs."""
    merged: dict[tuple, Site] = {}
    for site in sites:
        key = (site.path, site.line, site.collection, site.holder_class)
        into = merged.get(key)
        if into is None:
            merged[key] = Site(site.holder_class, site.container, site.collection, site.path, site.line, site.qualname)
            into = merged[key]
            into.at_first_step, into.at_last_step = (0.0, 0), (0.0, 0)
        into.occurrences += site.occurrences
        into.forward_s += site.forward_s
        into.backward_s += site.backward_s
        into.at_first_step = _plus(
            into.at_first_step, site.at_first_step or (site.forward_s + site.backward_s, site.calls)
        )
        into.at_last_step = _plus(
            into.at_last_step, site.at_last_step or (site.forward_s + site.backward_s, site.calls)
        )
    return list(merged.values())


def sites_judged(
    sites: Sequence[Site], run_s: float, clock: StepClock | None = None
) -> tuple[list[Group], list[Rejected]]:
    groups: list[Group] = []
    rejected: list[Rejected] = []
    for site in _merged(sites):
        verdict = judge(site, run_s, clock)
        if isinstance(verdict, Group):
            groups.append(verdict)
        elif isinstance(verdict, Rejected):
            rejected.append(verdict)
    groups.sort(key=lambda g: -(g.step_share if g.step_share is not None else g.share))
    return groups, rejected
