"""Where a finding's fixes go: a rule's node-based fix turned into edits on character
offsets (the replaced node's indentation, tool directives kept), and findings moved
back onto a text that has characters libcst did not read (form feeds)."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import replace
from typing import TYPE_CHECKING

from enslint.findings import Diagnostic, Edit, Fix, RuleFix
from enslint.source import LINE_END, line_starts

if TYPE_CHECKING:
    import libcst as cst
    from libcst.metadata import CodeRange

    from enslint.analysis.positions import Positions


def restored(d: Diagnostic, dropped: list[int], code: str, source: str) -> Diagnostic:
    """A diagnostic on `code` placed on `source`, which also has the characters at the
    `dropped` offsets: a start goes after dropped text at its place (a form feed stays
    before the code it preceded), an end before it."""
    code_starts, source_starts = line_starts(code), line_starts(source)

    def moved(offset: int, end: bool) -> int:
        shift = 0
        for position in dropped:
            if position < offset + shift or (not end and position == offset + shift):
                shift += 1
            else:
                break
        return offset + shift

    def column(row: int, col: int, end: bool) -> int:  # 1-based columns
        offset = moved(code_starts[row - 1] + col - 1, end)
        return offset - source_starts[row - 1] + 1

    fixes = []
    for fix in d.fixes:
        edits = []
        for edit in fix.edits:
            start = moved(edit.start, end=False)
            end = start if edit.end == edit.start else moved(edit.end, end=True)
            edits.append(edit_at(edit, start, end, source_starts))
        fixes.append(replace(fix, edits=tuple(edits)))
    return replace(
        d, column=column(d.row, d.column, False), end_column=column(d.end_row, d.end_column, True), fixes=tuple(fixes)
    )


def edit_at(edit: Edit, start: int, end: int, starts: list[int]) -> Edit:
    """`edit` moved to offsets `start`..`end` of a text whose lines begin at `starts`."""
    row, end_row = bisect_right(starts, start), bisect_right(starts, end)
    return replace(
        edit,
        start=start,
        end=end,
        row=row,
        column=start - starts[row - 1] + 1,
        end_row=end_row,
        end_column=end - starts[end_row - 1] + 1,
    )


def placed(rule_fix: RuleFix, positions: Positions, place: Offsets, lines: list[str]) -> Fix:
    """A rule's node-based fix as edits on character offsets.

    Lines after the first in a replacement get the replaced node's own indentation (the
    file's, tabs included); a node of None appends to the file; `before` inserts."""
    edits = []
    for node_edit in rule_fix.edits:
        if node_edit.node is None:
            end, row = len(place.source), len(place.starts) - 1
            edits.append(Edit(end, end, node_edit.content.replace("\n", place.newline), row, 1, row, 1))
            continue
        if isinstance(node_edit.node, tuple):  # a run of statements, first to last
            first, final = (positions[n] for n in node_edit.node)
            span = type(first)(first.start, final.end)
        else:
            span = positions[node_edit.node]
        indent = lines[span.start.line - 1][: span.start.column]
        if indent.strip():
            indent = " " * span.start.column  # the node does not start its line
        content = "\n".join(
            line if i == 0 or not line else indent + line for i, line in enumerate(node_edit.content.split("\n"))
        ).replace("\n", place.newline)
        if node_edit.delete:  # the statement's whole lines, their line break included
            start = place.offset(span.start.line, 0)
            end = place.starts[min(span.end.line, len(place.starts) - 1)]
            edits.append(Edit(start, end, "", span.start.line, 1, span.end.line + 1, 1))
            continue
        if node_edit.after:  # new lines, at the statement's indentation, after its end
            end = place.offset(span.end.line, span.end.column)
            content = place.newline + indent + content
            edits.append(
                Edit(end, end, content, span.end.line, span.end.column + 1, span.end.line, span.end.column + 1)
            )
            continue
        if not node_edit.before:
            content = _with_directives(content, node_edit.node, span, positions, place.newline)
        elif content.endswith(place.newline):
            content += indent  # lines inserted before a statement leave it where it stood
        start_column = span.start.column
        if node_edit.content.startswith("\n") and not indent.strip():
            # A blank line first: the replacement starts at the line's start, so that the
            # blank line holds no indentation.
            start_column, content = 0, place.newline + indent + content[len(place.newline) :].lstrip(" \t")
        last = span.start if node_edit.before else span.end  # an insertion ends where it starts
        edits.append(
            Edit(
                place.offset(span.start.line, start_column),
                place.offset(last.line, last.column),
                content,
                span.start.line,
                span.start.column + 1,
                last.line,
                last.column + 1,
            )
        )
    # One copy of each text: every fix of a file inserts the same helper (a few KB), and a
    # file of thousands of findings held and sent that many copies.
    edits = [replace(e, content=_shared(e.content)) for e in edits]
    return Fix(
        rule_fix.applicability,
        _shared(rule_fix.message),
        tuple(sorted(edits, key=lambda e: e.start)),
        rule_fix.form,
        rule_fix.helpers,
    )


_SHARED: dict[str, str] = {}


def _shared(text: str) -> str:
    if len(_SHARED) > 4096:
        _SHARED.clear()
    return _SHARED.setdefault(text, text)


# Comments addressed to tools (`noqa: E501`, `type: ignore`, `pragma: no cover` after a
# `#`): they still apply to the code that replaces what they sat on.
_DIRECTIVE = re.compile(r"#\s*(noqa\b|type:|pragma\b|pylint:|mypy:|pyright:|fmt:|isort:)", re.IGNORECASE)


def _with_directives(
    content: str,
    replaced: cst.CSTNode | tuple[cst.CSTNode, cst.CSTNode],
    span: CodeRange,
    positions: Positions,
    newline: str,
) -> str:
    """`content` with the tool directives inside the replaced span kept, at the end of
    its first line of code (unless it has them already). A statement's trailing comment
    lies after its span and stays where it is."""
    import libcst as cst

    from enslint.analysis.syntax import walk

    def inside(comment: cst.Comment) -> bool:
        where = positions.get(comment)
        return (
            where is not None
            and (span.start.line, span.start.column) <= (where.start.line, where.start.column)
            and (where.end.line, where.end.column) <= (span.end.line, span.end.column)
        )

    nodes = replaced if isinstance(replaced, tuple) else (replaced,)
    kept = [
        c.value
        for n in nodes
        for c in walk(n)
        if isinstance(c, cst.Comment) and _DIRECTIVE.match(c.value) and c.value not in content and inside(c)
    ]
    if not kept:
        return content
    lines = content.split(newline)
    first = next((i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")), None)
    if first is None or "#" in lines[first]:
        return content
    lines[first] += "  " + "  ".join(dict.fromkeys(kept))
    return newline.join(lines)


class Offsets:
    """Line and column (libcst's: 1-based line, 0-based column) to a character offset."""

    def __init__(self, source: str) -> None:
        self.source = source
        # Lines end where the parser's do (LINE_END), not where str.splitlines breaks.
        self.starts = line_starts(source)
        if self.starts[-1] != len(source):
            self.starts.append(len(source))
        if self.starts[-1] != len(source):
            self.starts.append(len(source))
        first = LINE_END.search(source)
        self.newline = first.group() if first else "\n"

    def lines(self) -> list[str]:
        """The source's lines, without their endings, as the parser counts them."""
        return [LINE_END.sub("", self.source[a:b]) for a, b in zip(self.starts, self.starts[1:], strict=False)]

    def offset(self, line: int, column: int) -> int:
        return self.starts[line - 1] + column
