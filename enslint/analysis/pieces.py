"""A big file analysed in pieces, each small enough to parse with libcst and hold.

libcst's tree of a file takes some 800 bytes of memory per byte of source, and parsing
one big text costs more per byte than parsing its parts: a 5 MB file took 4 GB and most
of a minute before any analysis. So past `PIECE_BYTES` a file is cut along its top-level
statements (found by Python's own parser, which has read the file already). Each piece
holds a run of statements to report on (its targets) and the context their analysis
needs: every import, the definitions the targets use (and those use, in turn), the
statements that call the classes the targets define (call sites prove passed-in members
alike),
the file's first definition (a rewrite's helper goes before it) and the rewrites' own
helpers. Findings are kept for the targets only; lines, columns and fix offsets are
mapped back to the file; a fix whose edits would span text the piece left out is
dropped. Names used only in left-out text count as used, so an import they need is
never removed.
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from enslint.analysis.kinds import REWRITE_HELPERS
from enslint.source import line_starts

# Files up to this size are analysed whole; bigger ones in pieces of about a quarter
# of it (targets), plus their context.
PIECE_BYTES = 256 * 1024
# A piece that needs more than this share of the file: analyse the file whole, once.
MOST = 0.5
_WORD = re.compile(r"[A-Za-z_]\w*")


@dataclass
class _Segment:
    first: int  # first line in the file, 1-based
    last: int  # last line, inclusive
    defines: set[str] = field(default_factory=set)
    uses: set[str] = field(default_factory=set)
    imports: bool = False
    definition: bool = False  # a function or class
    classes: set[str] = field(default_factory=set)  # the classes it defines
    called: set[str] = field(default_factory=set)  # the names it calls (`Ensemble(...)`, `m.Ensemble(...)`)
    end: int = 0  # the last line of its statements (`last` may run on over blank lines)


@dataclass
class Piece:
    """Some of a file's segments, in file order, as one text."""

    source: str
    segments: list[_Segment]  # in file order
    targets: set[int]  # indexes into segments: those reported on
    outside_names: set[str]  # words of the text the piece leaves out
    target_names: set[str]  # what the targets define (their exports)
    ends_file: bool  # whether the piece's last segment is the file's
    target_text: str  # the text of the statements reported on
    _starts: list[int] = field(default_factory=list)  # the piece's line starts
    _first_lines: list[int] = field(default_factory=list)  # each segment's first piece line

    def __post_init__(self) -> None:
        self._starts = line_starts(self.source)
        line = 1
        for segment in self.segments:
            self._first_lines.append(line)
            line += segment.last - segment.first + 1

    def segment_at(self, line: int) -> int:
        """Index of the segment holding piece line `line`."""
        return max(0, bisect_right(self._first_lines, line) - 1)

    def file_line(self, line: int) -> int:
        index = self.segment_at(line)
        return self.segments[index].first + line - self._first_lines[index]

    def is_target_line(self, line: int) -> bool:
        return self.segment_at(line) in self.targets

    def file_offset(self, offset: int, file_starts: list[int], end: bool = False) -> tuple[int, int]:
        """(file offset, segment index) of a piece offset. An end offset is placed after
        the character before it: the end of a statement's last line, not the start of the
        next segment, which may lie elsewhere in the file."""
        probe = offset - 1 if end and offset > 0 else offset
        line = max(1, bisect_right(self._starts, probe))
        column = probe - self._starts[line - 1]
        index = self.segment_at(line)
        start = file_starts[self.file_line(line) - 1]
        return start + column + (1 if end and offset > 0 else 0), index

    def adjacent(self, a: int, b: int) -> bool:
        """Whether segments a..b follow each other in the file with nothing left out."""
        lo, hi = min(a, b), max(a, b)
        return all(self.segments[i].last + 1 == self.segments[i + 1].first for i in range(lo, hi))


def split(tree: ast.Module, source: str) -> list[Piece] | None:
    """The pieces of a big file, or None to analyse it whole (small, or so entangled that
    a piece would hold most of it)."""
    if len(source) <= PIECE_BYTES or not tree.body:
        return None
    return pieces_of(_segments(tree, _line_count(source)), source)


def _line_count(source: str) -> int:
    starts = line_starts(source)
    return len(starts) if starts[-1] < len(source) else len(starts) - 1


# Python's tree of a whole 5 MB file takes most of a GB. A big file is described in
# chunks instead, each parsed by Python on its own (in parallel) and dropped once its
# statements are described: a chunk starts at a top-level definition or import after
# a blank line. A chunk that does not parse on its own (a cut inside a string, a
# decorator cut from its function) sends the file back to one parse of the whole.
CHUNK_BYTES = PIECE_BYTES
_CHUNK_START = re.compile(r"(?<=\n\n)(?:(?:async[ \t]+)?def[ \t]|class[ \t]|@|import[ \t]|from[ \t])")


def chunks(source: str) -> list[tuple[int, str]]:
    """`source` cut into runs of lines of about CHUNK_BYTES, each (first line, text)."""
    found: list[tuple[int, str]] = []
    start, line = 0, 1
    while len(source) - start > CHUNK_BYTES * 3 // 2:
        cut = _CHUNK_START.search(source, start + CHUNK_BYTES)
        if cut is None:
            break
        text = source[start : cut.start()]
        found.append((line, text))
        line += text.count("\n")
        start = cut.start()
    found.append((line, source[start:]))
    return found


def chunk_segments(tree: ast.Module, first_line: int, text: str) -> list[_Segment]:
    """The segments of a chunk whose tree was parsed with its lines numbered as in the
    file; the last one runs to the chunk's end (`join_chunks` puts the lines after its
    statement back where a whole parse puts them)."""
    last_line = first_line + max(_line_count(text), 1) - 1
    if not tree.body:
        return [_Segment(first_line, last_line, imports=True)]
    return _segments(tree, last_line, first_line)


def join_chunks(described: list[list[_Segment]]) -> list[_Segment]:
    """The segments of the whole file from its chunks': the lines between one chunk's
    last statement and the next chunk's first (blank lines, comments) go with the
    statement after them, as in the segments of one parse."""
    segments: list[_Segment] = []
    for part in described:
        if segments and part:
            end = segments[-1].end or segments[-1].last
            if part[0].end:  # a chunk with a statement
                part[0].first = end + 1
                segments[-1].last = end
        segments.extend(part)
    return segments


def pieces_of(segments: list[_Segment], source: str) -> list[Piece] | None:
    """The pieces made of a file's segments, or None to analyse it whole."""
    starts = line_starts(source)
    texts = [source[starts[s.first - 1] : starts[s.last] if s.last < len(starts) else len(source)] for s in segments]
    words_all: Counter[str] = Counter()
    words_of: list[Counter[str]] = []
    for text in texts:
        words = Counter(_WORD.findall(text))
        words_of.append(words)
        words_all.update(words)
    defined_by: dict[str, list[int]] = {}
    called_by: dict[str, list[int]] = {}
    for i, segment in enumerate(segments):
        for name in segment.defines:
            defined_by.setdefault(name, []).append(i)
        for name in segment.called:
            called_by.setdefault(name, []).append(i)
    always = {i for i, s in enumerate(segments) if s.imports}
    always |= {i for name in REWRITE_HELPERS for i in defined_by.get(name, ())}
    first_definition = next((i for i, s in enumerate(segments) if s.definition), None)
    if first_definition is not None:
        always.add(first_definition)

    pieces = []
    budget = PIECE_BYTES // 4
    run: list[int] = []
    size = 0
    for i in range(len(segments)):
        if i in always and i != first_definition:
            continue  # in every piece as context; reported on with the first run
        run.append(i)
        size += len(texts[i])
        if size >= budget:
            pieces.append(run)
            run, size = [], 0
    if run:
        pieces.append(run)
    in_runs = {i for run in pieces for i in run}
    result = []
    for number, run in enumerate(pieces):
        chosen = _closure(run, segments, defined_by, called_by) | always
        # What every piece holds but no run reports on (imports, the rewrites' helpers)
        # is reported on by the first piece.
        targets = sorted(set(run) | (always - in_runs)) if number == 0 else run
        if sum(len(texts[i]) for i in chosen) > len(source) * MOST and len(pieces) > 1:
            return None  # every piece would need most of the file: whole, once
        order = sorted(chosen)
        inside: Counter[str] = Counter()
        for i in order:
            inside.update(words_of[i])
        outside = {word for word, count in words_all.items() if count > inside[word]}
        target_set = set(targets)
        result.append(
            Piece(
                "".join(texts[i] for i in order),
                [segments[i] for i in order],
                {k for k, i in enumerate(order) if i in target_set},
                outside,
                set().union(*(segments[i].defines for i in targets)),
                order[-1] == len(segments) - 1,
                "".join(texts[i] for i in targets),
            )
        )
    return result


def _closure(
    targets: list[int],
    segments: list[_Segment],
    defined_by: Mapping[str, Sequence[int]],
    called_by: Mapping[str, Sequence[int]],
) -> set[int]:
    """The targets, the statements that call the classes they define (call sites prove
    passed-in members alike), and every definition those use, transitively. A helper
    called everywhere does not bring its callers: its analysis does not read them."""
    chosen = set(targets)
    for i in targets:
        for name in segments[i].classes:
            chosen.update(called_by.get(name, ()))
    pending = list(chosen)
    while pending:
        i = pending.pop()
        for name in segments[i].uses:
            for j in defined_by.get(name, ()):
                if j not in chosen:
                    chosen.add(j)
                    pending.append(j)
    return chosen


def _segments(tree: ast.Module, lines: int, first_line: int = 1) -> list[_Segment]:
    """The file's lines cut between top-level statements: a statement's segment starts
    after the previous one ends (its comments and decorators with it); statements that
    share a line share a segment; the last segment runs to the end of the file (or of
    the chunk that starts at `first_line`)."""
    segments: list[_Segment] = []
    for statement in tree.body:
        end = statement.end_lineno or statement.lineno
        if segments and statement.lineno <= segments[-1].last:
            segment = segments[-1]
            segment.last = max(segment.last, end)
        else:
            segment = _Segment(segments[-1].last + 1 if segments else first_line, end, imports=True)
            segments.append(segment)
        segment.end = segment.last
        _describe(segment, statement)
    segments[-1].last = max(segments[-1].last, lines)
    return segments


def _describe(segment: _Segment, statement: ast.stmt) -> None:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        segment.defines.add(statement.name)
        segment.definition = True
    if isinstance(statement, ast.ClassDef):
        segment.classes.add(statement.name)
    segment.imports = segment.imports and _only_imports(statement)
    for node in ast.walk(statement):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                segment.called.add(func.id)
            elif isinstance(func, ast.Attribute):
                segment.called.add(func.attr)
        if isinstance(node, ast.Name):
            (segment.defines if isinstance(node.ctx, ast.Store) and _top_level_target(statement) else segment.uses).add(
                node.id
            )
        elif isinstance(node, ast.alias):
            segment.defines.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.Attribute):
            segment.uses.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 200:
            segment.uses.update(_WORD.findall(node.value))  # annotations in strings, getattr names


def _top_level_target(statement: ast.stmt) -> bool:
    """Whether names stored in `statement` are module-level names (not a function's or
    class's locals)."""
    return not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))


def _only_imports(statement: ast.stmt) -> bool:
    """`import x`, or a try/if made of imports only (`try: import x except: ...`)."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return True
    if isinstance(statement, (ast.Try, ast.If)):
        blocks = [statement.body, statement.orelse]
        if isinstance(statement, ast.Try):
            blocks += [h.body for h in statement.handlers] + [statement.finalbody]
        return all(isinstance(s, (ast.Import, ast.ImportFrom, ast.Pass)) for block in blocks for s in block)
    return False
