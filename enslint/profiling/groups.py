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
from enslint.profiling.occurrences import SAME, SLICES
from enslint.profiling.recorder import Site, StepClock


def judge(site: Site, run_s: float, clock: StepClock | None = None) -> Group | Rejected | None:
    """None when no run of the loop called two members (one member picked by index)."""
    site.close()
    if not site.loops or site.first is None:
        return None
    line = loop_line(site.path, site.line)
    if site.reason is not None:
        return Rejected(site.path, line, site.collection, site.holder_class, site.reason)
    if len(site.signatures) > 1:
        return Rejected(
            site.path, line, site.collection, site.holder_class, "the runs of the loop called members that differ"
        )
    cls, method = owner(site.qualname)
    total = site.forward_s + site.backward_s
    step_share, calls_per_step = _per_step(site, clock)
    class_step_share = _per_step(site.owner, clock)[0] if site.owner is not None else None
    return Group(
        path=site.path,
        line=line,
        cls=cls,
        method=method,
        collection=site.collection,
        holder=site.holder_class,
        members=site.members,
        member_class=site.first.member_class,
        input=SLICES if SLICES in site.kinds else SAME,
        calls=site.calls,
        loops=site.loops,
        forward_s=site.forward_s,
        backward_s=site.backward_s,
        share=total / run_s if run_s > 0 else 0.0,
        shapes=[list(t.shape) for t in site.first.inputs],
        container=site.container,
        step_share=step_share,
        calls_per_step=calls_per_step,
        class_step_share=class_step_share,
    )


def _per_step(site: Site, clock: StepClock | None) -> tuple[float | None, float | None]:
    """(share of a step, calls per step), between the first and the last optimizer step."""
    span = clock.span_s if clock is not None else None
    if not span or clock is None or site.at_first_step is None or site.at_last_step is None:
        return None, None
    spent = site.at_last_step[0] - site.at_first_step[0]
    return spent / span, (site.at_last_step[1] - site.at_first_step[1]) / (clock.steps - 1)


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
        site.close()
        key = (site.path, site.line, site.collection, site.holder_class)
        into = merged.get(key)
        if into is None:
            merged[key] = site
            continue
        into.calls += site.calls
        into.loops += site.loops
        into.members = max(into.members, site.members)
        into.kinds |= site.kinds
        into.reason = into.reason or site.reason
        into.signatures |= site.signatures
        into.first = into.first or site.first
        into.forward_s += site.forward_s
        into.backward_s += site.backward_s
        # A site no step saw has spent nothing between the first and the last step.
        first = site.at_first_step or (0.0, 0)
        into.at_first_step = _plus(into.at_first_step, first)
        into.at_last_step = _plus(into.at_last_step, site.at_last_step or first)
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
