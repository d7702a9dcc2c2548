"""A big file checked in pieces: its statements found chunk by chunk in short-lived
processes, its pieces (analysis/pieces.py cuts them) analysed side by side, and each
piece's findings moved back into the file's lines and offsets."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import replace
from typing import TYPE_CHECKING, TypeGuard, cast

from enslint.checking.analyse import Analysis, analyse_text
from enslint.checking.jobs import FileJob, crashed_outcome
from enslint.checking.placement import edit_at
from enslint.checking.verdict import PYTHON_ERRORS, past_libcst_limits, python_tree
from enslint.findings import Diagnostic
from enslint.parsing import analysed_deep, python_check, python_parse

if TYPE_CHECKING:
    from typing import TypeAlias

    from enslint.analysis.pieces import Piece, _Segment
    from enslint.analysis.project import ProjectIndex

    # A chunk's description: its segments, the file's ENS000, or None (parse it whole).
    _ChunkAnswer: TypeAlias = list[_Segment] | list[Diagnostic] | None
    # The file's ENS000, its pieces, or None (analyse it whole).
    _Pieces: TypeAlias = list[Diagnostic] | list[Piece] | None
    # A piece's analysis, with what its process read of the project (deps, unread).
    _PieceResult: TypeAlias = tuple[Analysis, tuple[dict[str, str | None], set[str]] | None]


def _tree_and_pieces(job: FileJob, source: str) -> _Pieces:
    """The file's ENS000 (what Python rejects), its pieces, or None (analyse it whole)."""
    from enslint.analysis.pieces import split

    tree = python_tree(job, source)
    if isinstance(tree, list):
        return tree
    return past_libcst_limits(job, tree, source) or split(tree, source)


def big_file_pieces(job: FileJob, source: str) -> _Pieces:
    """`_tree_and_pieces` of a big file, its chunks described side by side, each in a
    short-lived process (pieces.py): Python's tree of the whole file would take most of
    a GB, which a process keeps once freed. A chunk that does not parse on its own, or
    any doubt, and the file is parsed whole, once, for Python's own answer."""
    from enslint.analysis.pieces import chunks, join_chunks, pieces_of
    from enslint.workers import in_process, isolated_map

    parts = chunks(source)
    if len(parts) < 2:
        described: list[_ChunkAnswer] = [None]  # one chunk: the whole file's parse
    elif in_process():
        described = [_chunk_segments(job, part) for part in parts]
    else:
        cores = min(os.cpu_count() or 1, len(parts))
        described = isolated_map(lambda part: _chunk_segments(job, part), parts, cores, lambda part, why: None)
    for found in described:
        if _is_ens000(found):
            return found  # past libcst's limits: the file's answer
    if any(found is None for found in described):
        if in_process():
            return _tree_and_pieces(job, source)
        (result,) = isolated_map(
            lambda text: _tree_and_pieces(job, text),
            [source],
            1,
            lambda text, why: crashed_outcome(job, why).diagnostics,
        )
        return result
    # Every chunk described by its segments: a None was parsed whole, an ENS000 returned.
    return pieces_of(join_chunks(cast("list[list[_Segment]]", described)), source)


def _is_ens000(found: _ChunkAnswer) -> TypeGuard[list[Diagnostic]]:
    """Whether a chunk's description is the file's ENS000 (past libcst's limits)."""
    return found is not None and bool(found) and isinstance(found[0], Diagnostic)


_FUTURE_IMPORT = re.compile(r"^from[ \t]+__future__[ \t]", re.MULTILINE)


def _chunk_segments(job: FileJob, part: tuple[int, str]) -> _ChunkAnswer:
    """A chunk's segments; its ENS000 when it is past libcst's limits; None when only a
    parse of the whole file can tell (the chunk does not parse on its own, or a future
    import that must open the file)."""
    from enslint.analysis.pieces import chunk_segments

    first_line, text = part
    if first_line > 1 and _FUTURE_IMPORT.search(text):
        return None
    numbered = "\n" * (first_line - 1) + text  # lines numbered as in the file
    try:
        python_check(numbered)
        tree = python_parse(numbered)
    except PYTHON_ERRORS:
        return None
    return past_libcst_limits(job, tree, text) or chunk_segments(tree, first_line, text)


def analyse_pieces(job: FileJob, pieces: list[Piece], project: ProjectIndex | None) -> list[Analysis]:
    """Each piece's `_analyse_text` result, the pieces shared among processes (one per
    core) when there are several: a big file's pieces are independent. What a piece's
    process read of the project comes back with its result."""
    from enslint.workers import in_process, isolated_map

    cores = os.cpu_count() or 1
    if len(pieces) < 2 or cores < 2 or in_process():
        return [analysed_deep(functools.partial(analyse_text, job, piece.source, project, piece)) for piece in pieces]

    def analyse(piece: Piece) -> _PieceResult:
        if project is not None:
            project.begin(job.filename, job.names)
        result = analysed_deep(lambda: analyse_text(job, piece.source, project, piece))
        return result, (project.dependencies(), set(project.unread)) if project is not None else None

    def died(piece: Piece, reason: str) -> _PieceResult:
        return crashed_outcome(job, reason).diagnostics, None

    results = []
    for result, read in isolated_map(analyse, pieces, min(cores, len(pieces)), died):
        if read is not None and project is not None:
            project.absorb(*read)
        results.append(result)
    return results


def moved_to_file(d: Diagnostic, piece: Piece, file_starts: list[int]) -> Diagnostic:
    """A piece's diagnostic in the file's lines and offsets; a fix whose edits would
    reach over text the piece left out is dropped (the finding stays)."""
    fixes = []
    for fix in d.fixes:
        edits = []
        for edit in fix.edits:
            start, first = piece.file_offset(edit.start, file_starts)
            if edit.end == edit.start:
                end, last = start, first
            else:
                end, last = piece.file_offset(edit.end, file_starts, end=True)
            if edit.start == len(piece.source) and not piece.ends_file:
                break  # the end of the piece is not the end of the file
            if not piece.adjacent(first, last):
                break
            edits.append(edit_at(edit, start, end, file_starts))
        else:
            fixes.append(replace(fix, edits=tuple(edits)))
    return replace(d, row=piece.file_line(d.row), end_row=piece.file_line(d.end_row), fixes=tuple(fixes))
