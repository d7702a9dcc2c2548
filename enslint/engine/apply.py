"""The one engine that applies fixes to a source text.

`apply_fixes` applies a set of fixes to a text: in source order, skipping any fix that
overlaps one already taken (it is reported, and a second `--fix` run picks it up).
Nothing here writes files; see transaction.py.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass

from enslint.findings import Edit, Fix


@dataclass(frozen=True)
class Applied:
    text: str
    applied: int
    skipped: int  # fixes left out because they overlap one applied before them
    taken: tuple[Fix, ...] = ()  # the fixes applied
    written: tuple[tuple[int, int], ...] = ()  # where the edits' contents lie in `text`


def apply_fixes(text: str, fixes: list[Fix]) -> Applied:
    """Apply non-overlapping fixes, earliest first; a fix is all its edits or none. An
    edit identical to one already taken (the helper every fused rewrite inserts at the
    same place) is shared, not a conflict. Linear in the text and near-linear in the
    edits: a file of thousands of fixes is rebuilt once, not once per edit."""
    taken: list[tuple[int, int]] = []  # sorted, pairwise non-overlapping
    contents: dict[tuple[int, int], str] = {}
    chosen: list[Edit] = []
    taken_fixes: list[Fix] = []
    skipped = 0
    for fix in sorted(fixes, key=lambda f: min((e.start, e.end) for e in f.edits)):
        new = [e for e in fix.edits if contents.get((e.start, e.end)) != e.content]
        spans = [(e.start, e.end) for e in new]
        if any(_overlaps(a, b) for i, a in enumerate(spans) for b in spans[i + 1 :]) or any(
            _overlaps_taken(span, taken) for span in spans
        ):
            skipped += 1
            continue
        for edit, span in zip(new, spans, strict=True):  # a span per edit
            insort(taken, span)
            contents[span] = edit.content
        chosen.extend(new)
        taken_fixes.append(fix)
    parts: list[str] = []
    written: list[tuple[int, int]] = []
    position = length = 0
    for edit in sorted(chosen, key=lambda e: (e.start, e.end)):
        length += edit.start - position
        parts += [text[position : edit.start], edit.content]
        written.append((length, length + len(edit.content)))
        length += len(edit.content)
        position = edit.end
    parts.append(text[position:])
    return Applied("".join(parts), len(taken_fixes), skipped, tuple(taken_fixes), tuple(written))


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
