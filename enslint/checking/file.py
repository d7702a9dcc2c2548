"""Check one file: read, decode, prefilter, Python's verdict, the cache, then the
analysis of the whole text or of its pieces.

Everything that can go wrong with one file (unreadable, not UTF-8, a syntax error)
becomes an ENS000 diagnostic for that file, so one bad file never stops the others.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from enslint.cache import CacheEntry, ResultCache, entry_key
from enslint.checking.jobs import FileJob, FileOutcome, unreadable
from enslint.checking.prefilter import could_match, piece_could_match
from enslint.checking.verdict import past_libcst_limits, python_syntax_error
from enslint.findings import Diagnostic, Fix
from enslint.parsing import analysed_deep
from enslint.source import FILE_NOQA, decode, line_starts, read_source
from enslint.target_version import target_for

if TYPE_CHECKING:
    from enslint.analysis.pieces import Piece
    from enslint.analysis.project import ProjectIndex


def check_file(job: FileJob) -> list[Diagnostic]:
    return check_file_outcome(job).diagnostics


def check_file_outcome(job: FileJob) -> FileOutcome:
    """The whole check of one file: the prefilter, the cache, then the analysis."""
    return _file_outcome(job, _Stage.ALL)


def prefiltered_outcome(job: FileJob) -> FileOutcome:
    """What the prefilter and the cache can say of a file without libcst: its outcome,
    or `needs_analysis` (then `analysed_outcome` finishes the check). The runner splits
    the two so the processes that only prefilter never import libcst."""
    return _file_outcome(job, _Stage.PREFILTER)


def analysed_outcome(job: FileJob) -> FileOutcome:
    """The analysis of a file `prefiltered_outcome` sent on: the prefilter and the cache
    have spoken already, and what the analysis finds is cached."""
    return _file_outcome(job, _Stage.ANALYSIS)


class _Stage(enum.Enum):
    ALL = "all"
    PREFILTER = "prefilter"
    ANALYSIS = "analysis"


def _file_outcome(job: FileJob, stage: _Stage) -> FileOutcome:
    try:
        data = read_source(job.filename)
    except OSError as error:
        return FileOutcome(unreadable(job, f"cannot read file: {error.strerror or error}"))
    return check_bytes_outcome(job, data, on_disk=True, stage=stage)


def check_bytes(job: FileJob, data: bytes) -> list[Diagnostic]:
    return check_bytes_outcome(job, data).diagnostics


def check_bytes_outcome(job: FileJob, data: bytes, on_disk: bool = False, stage: _Stage = _Stage.ALL) -> FileOutcome:
    """`on_disk`: `data` is what the file at `job.filename` holds (not standard input or
    verify's rewritten text), so the file's bytecode cache may answer Python's verdict."""
    if FILE_NOQA.search(data):
        return FileOutcome([])
    try:
        source = decode(data)
    except (UnicodeDecodeError, SyntaxError, LookupError) as error:
        return FileOutcome(unreadable(job, f"cannot decode file: {error}"))
    prefilter = stage is not _Stage.ANALYSIS
    if prefilter and not could_match(data, job.names, tree=False):
        return _skipped(job, source, data, on_disk)
    project = None
    if job.project_root is not None:
        from enslint.analysis.project import index_for

        project = index_for(job.project_root, job.cache_dir)
    cache = key = None
    if job.cache_dir is not None:
        cache = ResultCache(Path(job.cache_dir))
        key = entry_key(
            job.fingerprint,
            job.codes,
            job.settings,
            data,
            job.names,
            f"{job.filename}|{job.standalone}|{target_for(job.filename)}",
        )
        entry = cache.get(key) if prefilter else None
        if entry is not None and (not entry.deps or (project is not None and project.still_valid(entry.deps))):
            try:
                diagnostics = [_from_row(job, row) for row in entry.rows]
            except (TypeError, ValueError, KeyError, IndexError):
                diagnostics = None  # an entry of the wrong shape is a miss
            if diagnostics is not None:
                return _outcome(diagnostics, entry.exports, entry.deps)
    # The prefilter's second stage reads Python's tree: after the cache, which only holds
    # files that passed it with these bytes and names.
    if prefilter and not could_match(data, job.names):
        return _skipped(job, source, data, on_disk)
    if stage is _Stage.PREFILTER:
        return FileOutcome([], needs_analysis=True)
    diagnostics, exports, deps = _analyse(job, source, project, data if on_disk else None)
    if cache is not None and key is not None:
        cache.put(key, CacheEntry([_to_row(d) for d in diagnostics], deps, exports))
    return _outcome(diagnostics, exports, deps)


def _skipped(job: FileJob, source: str, data: bytes, on_disk: bool) -> FileOutcome:
    """A file the prefilter keeps from libcst: no rule can fire, but a broken file is
    still worth reporting, and Python's own parser answers that far faster."""
    broken = python_syntax_error(job, source, data if on_disk else None)
    deferred = broken is None and job.project_root is not None and not job.names and b"for" in data
    return FileOutcome(broken or [], deferred=deferred)


def _outcome(diagnostics: list[Diagnostic], exports: Iterable[str], deps: dict[str, str | None]) -> FileOutcome:
    unread = tuple(key[len("unread:") :] for key in deps if key.startswith("unread:"))
    return FileOutcome(diagnostics, tuple(exports), analysed=True, deferred=bool(unread), unread=unread)


def _to_row(d: Diagnostic) -> list:
    return [
        d.row,
        d.column,
        d.code,
        d.message,
        d.name,
        d.end_row,
        d.end_column,
        [f.as_row() for f in d.fixes],
        d.details,
        d.no_fix,
    ]


def _from_row(job: FileJob, row: list) -> Diagnostic:
    r, c, code, message, name, end_r, end_c, fixes, details, no_fix = row
    return Diagnostic(
        job.path,
        r,
        c,
        code,
        message,
        name,
        end_r,
        end_c,
        job.filename,
        tuple(Fix.from_row(f) for f in fixes),
        details,
        no_fix,
    )


def _analyse(
    job: FileJob, source: str, project: ProjectIndex | None = None, data: bytes | None = None
) -> tuple[list[Diagnostic], tuple[str, ...], dict[str, str | None]]:
    """Parse with libcst, build the model, run the rules, place and filter findings.
    Also returns the file's exports and the other files the analysis read (with digests).
    A big file is analysed in pieces (analysis/pieces.py), side by side."""
    # Imported here, not above: they import libcst, which the run's prefilter and cache
    # never need (runner.py's analyser imports it while they run).
    from enslint.analysis.pieces import PIECE_BYTES
    from enslint.checking.analyse import analyse_text
    from enslint.checking.big_files import analyse_pieces, big_file_pieces, moved_to_file

    # Python's own parser first: what it rejects is ENS000 whatever libcst would say (a
    # truncated \u escape, a stray BOM, newer syntax), and code nested too deeply for it
    # (5,000 parentheses, a 50,000-term sum) never reaches libcst's native parser, which
    # can crash the whole process on it.
    if len(source) > PIECE_BYTES:
        pieces = big_file_pieces(job, source)
    else:
        pieces = python_syntax_error(job, source, data) or past_libcst_limits(job, None, source)
    if isinstance(pieces, list) and pieces and isinstance(pieces[0], Diagnostic):
        return pieces, (), {}
    if project is not None:
        project.begin(job.filename, job.names)
    if pieces is None:
        result = analysed_deep(lambda: analyse_text(job, source, project))
        if isinstance(result, list):
            return result, (), {}
        diagnostics, exports = result
    else:
        diagnostics, exports = [], []
        file_starts = line_starts(source)
        cut = cast("list[Piece]", pieces)  # pieces (or none): the file's ENS000 returned above
        todo = [p for p in cut if piece_could_match(p.target_text.encode("utf-8", "surrogatepass"), job.names)]
        for piece, result in zip(todo, analyse_pieces(job, todo, project), strict=True):  # a result per piece
            if isinstance(result, list):  # libcst's limit in one piece: the file's answer
                return [moved_to_file(d, piece, file_starts) for d in result], (), {}
            found, exported = result
            diagnostics += [moved_to_file(d, piece, file_starts) for d in found]
            exports += [name for name in exported if name.split(":", 1)[-1] in piece.target_names]
        exports = list(dict.fromkeys(exports))
    deps = project.dependencies() if project is not None else {}
    if project is not None and project.unread and not job.names:
        # A parent or helper was left unread for want of the project's names: the runner
        # checks this file again if one of them holds a name. Until then, nothing is cached.
        for path in project.unread:
            deps[f"unread:{path}"] = None
    return sorted(set(diagnostics)), tuple(exports), deps
