"""One text through the analysis: libcst's parse, the file model, the rules, and each
finding placed (positions, `noqa`, fixes as offsets)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from enslint.analysis.positions import Positions
from enslint.checking.jobs import FileJob, first_line_of, unreadable
from enslint.checking.placement import Offsets, placed, restored
from enslint.findings import Diagnostic
from enslint.parsing import as_libcst_reads
from enslint.rules import ALL_RULES
from enslint.source import suppressed

if TYPE_CHECKING:
    import libcst as cst

    from enslint.analysis.pieces import Piece
    from enslint.analysis.project import ProjectIndex

# A text's analysis: its findings and exports, or the ENS000 that stopped it.
Analysis = tuple[list[Diagnostic], list[str]] | list[Diagnostic]


def analyse_text(
    job: FileJob, source: str, project: ProjectIndex | None = None, piece: Piece | None = None
) -> Analysis:
    """The findings and exports of one text (the file, or a piece of it, in the piece's
    own lines), or the ENS000 that stopped its analysis."""
    import libcst as cst

    text, dropped = as_libcst_reads(source)
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        # Python accepted the file: this is libcst's limit, not a syntax error.
        return unreadable(
            job,
            f"cannot analyse: libcst cannot parse this syntax: {first_line_of(error.message)}",
            error.raw_line,
            error.raw_column + 1,
        )
    except RecursionError:
        return unreadable(job, "file is nested too deeply to parse")
    if dropped:
        try:
            reproduced = module.code == text
        except RecursionError:
            return unreadable(job, "file is nested too deeply to analyse")
        if not reproduced:
            return unreadable(job, "cannot analyse: libcst does not reproduce this file exactly")
    result = _findings(job, module, text, project, piece)
    if not dropped or isinstance(result, list):
        return result
    found, exports = result
    return [restored(d, dropped, text, source) for d in found], exports


def _findings(
    job: FileJob, module: cst.Module, source: str, project: ProjectIndex | None = None, piece: Piece | None = None
) -> Analysis:
    """The findings and exports of a parsed text whose code is `source`."""
    from enslint.analysis.model import build_model
    from enslint.analysis.runtime import for_file
    from enslint.analysis.syntax import NodeIndex
    from enslint.rewrites.fix_assembly import names_used_outside

    rules = [rule() for rule in ALL_RULES if rule.code in job.codes]
    NodeIndex.index_module(module)
    if piece is not None:
        names_used_outside(module, piece.outside_names)
    try:
        model = build_model(
            module,
            job.filename if project is not None else None,
            project,
            source,
            piece.file_line if piece is not None else None,
            for_file(job.settings.runtime, job.filename),
        )
        if piece is None and not job.standalone:
            model.fixed_file = job.filename
        findings = [(rule, finding) for rule in rules for finding in rule.check(model, job.settings)]
        exports = list(model.exports()) if project is not None else []
    except RecursionError:
        return unreadable(job, "file is nested too deeply to analyse")
    except Exception as error:  # noqa: BLE001 - one file's analysis bug must not stop the run
        if os.environ.get("ENSLINT_DEBUG"):
            raise
        return unreadable(
            job, f"internal error while analysing this file (please report it): {type(error).__name__}: {error}"
        )
    if not findings:
        return [], exports
    try:
        positions = Positions(module, source)
    except RecursionError:
        return unreadable(job, "file is nested too deeply to analyse")
    place = Offsets(source)
    lines = place.lines()  # the parser's lines: a form feed or U+2028 does not end one
    diagnostics = []
    for rule, finding in findings:
        where = positions[finding.node]
        row, column = where.start.line, where.start.column + 1
        if piece is not None and not piece.is_target_line(row):
            continue  # context: its own piece reports it
        if row <= len(lines) and suppressed(lines[row - 1], finding.code):
            continue
        fixes = tuple(placed(f, positions, place, lines) for f in finding.fixes)
        diagnostics.append(
            Diagnostic(
                job.path,
                row,
                column,
                finding.code,
                finding.message,
                rule.name,
                where.end.line,
                where.end.column + 1,
                job.filename,
                fixes,
                finding.details,
                finding.no_fix,
            )
        )
    return diagnostics, exports
