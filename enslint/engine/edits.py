"""Fixes as data, and the one engine that applies them to a source text.

A rule attaches a `RuleFix` to a finding: replacements for libcst nodes, with a safety
level. The checker turns node replacements into `Edit`s on character offsets (it knows
the positions), and `apply_fixes` applies a set of fixes to a text: in source order,
skipping any fix that overlaps one already taken (it is reported, and a second `--fix`
run picks it up). Nothing here writes files; see transaction.py.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import Any

SAFE = "safe"  # keeps state_dict keys and numerics: applied by --fix
UNSAFE = "unsafe"  # changes the parameter layout: needs --fix --unsafe-fixes

# What a fix turns the loop into; a finding may offer several (verify times each).
WIDE_LAYER = "wide layer"  # one nn.Linear for heads on one input
STACKED = "stacked weights"  # (E, in, out) weights and baddbmm, layer by layer
GROUPED = "grouped heads"  # the nest of groups of heads as one batched layer
VMAP = "vmap"  # stack_module_state + torch.vmap over any identical members
UNBIND = "unbind"  # iterate x.unbind(dim): the loop stays, the quadratic backward goes
SHARED_CALL = "shared call"  # one call of a shared instance on all the slices


@dataclass(frozen=True)
class NodeEdit:
    """Replace `node`'s text with `content`; `node` may be a (first, last) pair of
    statements to replace the run between them, or None to append to the file.

    Lines after the first in `content` are indented to the node's column, so a rule
    writes multi-line replacements without knowing where the node stands."""

    node: Any
    content: str
    before: bool = False  # insert `content` just before `node` instead of replacing it
    after: bool = False  # insert `content` as lines of its own after statement `node`
    delete: bool = False  # remove statement `node`'s lines altogether (`content` unused)


@dataclass(frozen=True)
class RuleFix:
    """What a rule proposes, in terms of tree nodes."""

    applicability: str
    message: str
    edits: tuple[NodeEdit, ...]
    form: str = ""


@dataclass(frozen=True)
class Edit:
    start: int  # character offsets into the source text
    end: int
    content: str
    row: int  # 1-based, for output
    column: int
    end_row: int
    end_column: int


@dataclass(frozen=True)
class Fix:
    applicability: str
    message: str
    edits: tuple[Edit, ...]
    form: str = ""

    def applies(self, unsafe: bool) -> bool:
        """Whether --fix applies it (unsafe fixes only with --unsafe-fixes)."""
        return self.applicability == SAFE or unsafe

    def as_json(self) -> dict:
        return {
            "applicability": self.applicability,
            "form": self.form,
            "message": self.message,
            "edits": [
                {
                    "content": e.content,
                    "location": {"row": e.row, "column": e.column},
                    "end_location": {"row": e.end_row, "column": e.end_column},
                }
                for e in self.edits
            ],
        }

    def as_row(self) -> list:
        return [
            self.applicability,
            self.message,
            [[e.start, e.end, e.content, e.row, e.column, e.end_row, e.end_column] for e in self.edits],
            self.form,
        ]

    @classmethod
    def from_row(cls, row: list) -> Fix:
        applicability, message, edits, form = row
        return cls(applicability, message, tuple(Edit(*e) for e in edits), form)


@dataclass(frozen=True)
class Applied:
    text: str
    applied: int
    skipped: int  # fixes left out because they overlap one applied before them


def apply_fixes(text: str, fixes: list[Fix]) -> Applied:
    """Apply non-overlapping fixes, earliest first; a fix is all its edits or none. An
    edit identical to one already taken (the helper every fused rewrite inserts at the
    same place) is shared, not a conflict. Linear in the text and near-linear in the
    edits: a file of thousands of fixes is rebuilt once, not once per edit."""
    taken: list[tuple[int, int]] = []  # sorted, pairwise non-overlapping
    contents: dict[tuple[int, int], str] = {}
    chosen: list[Edit] = []
    applied = skipped = 0
    for fix in sorted(fixes, key=lambda f: min((e.start, e.end) for e in f.edits)):
        new = [e for e in fix.edits if contents.get((e.start, e.end)) != e.content]
        spans = [(e.start, e.end) for e in new]
        if any(_overlaps(a, b) for i, a in enumerate(spans) for b in spans[i + 1 :]) or any(
            _overlaps_taken(span, taken) for span in spans
        ):
            skipped += 1
            continue
        for edit, span in zip(new, spans):
            insort(taken, span)
            contents[span] = edit.content
        chosen.extend(new)
        applied += 1
    parts: list[str] = []
    position = 0
    for edit in sorted(chosen, key=lambda e: (e.start, e.end)):
        parts += [text[position : edit.start], edit.content]
        position = edit.end
    parts.append(text[position:])
    return Applied("".join(parts), applied, skipped)


def _overlaps_taken(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    """Whether `span` overlaps one of `taken` (sorted, non-overlapping): only the one
    before it, and those starting where it starts or inside it, can."""
    index = bisect_left(taken, span)
    if index > 0 and _overlaps(span, taken[index - 1]):
        return True
    while index < len(taken) and (taken[index][0] < span[1] or taken[index] == span):
        if _overlaps(span, taken[index]):
            return True
        index += 1
    return False


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    # Two insertions at one point also conflict: their order would be arbitrary.
    if a == b:
        return True
    return a[0] < b[1] and b[0] < a[1]
