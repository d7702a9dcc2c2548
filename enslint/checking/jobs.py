"""What the checker is given for one file (`FileJob`) and what it gives back
(`FileOutcome`), and the ENS000 finding for a file that cannot be checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from enslint.findings import PARSE_ERROR, PARSE_ERROR_NAME, Diagnostic

if TYPE_CHECKING:
    from enslint.rules import Settings


@dataclass(frozen=True)
class FileJob:
    path: str  # display path
    filename: str  # absolute path
    codes: frozenset[str]  # the rule codes enabled for this file
    settings: Settings
    cache_dir: str | None = None  # None: no result cache
    fingerprint: str = ""  # enslint's code version, part of every cache key
    project_root: str | None = None  # None: the file is read on its own
    # Names other files of the project build collections with (a helper such as
    # `clones`, a class that holds one): a file that mentions one is analysed too.
    names: tuple[str, ...] = ()
    # The fixes must stand alone in the text (standard input, verify's in-memory copy):
    # helpers are defined in it instead of imported from a helper module beside it.
    standalone: bool = False


@dataclass
class FileOutcome:
    diagnostics: list[Diagnostic]
    exports: tuple[str, ...] = ()  # what this file lets others build collections with
    analysed: bool = False  # parsed with libcst (or answered from the cache)
    # Skipped by the prefilter, but it loops and belongs to a project: a collection
    # built in another file may still reach it (the runner asks the project index).
    # Or analysed, but files it depends on were left unread (`unread`) for want of the
    # project's names.
    deferred: bool = False
    unread: tuple[str, ...] = ()
    # The prefilter's answer alone (`prefiltered_outcome`): the file could hold a finding
    # and is not in the cache, so `analysed_outcome` must analyse it.
    needs_analysis: bool = False


def unreadable(job: FileJob, message: str, row: int = 1, column: int = 1) -> list[Diagnostic]:
    if PARSE_ERROR not in job.codes:
        return []
    return [Diagnostic(job.path, row, column, PARSE_ERROR, message, PARSE_ERROR_NAME, row, column, job.filename)]


def first_line_of(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else "invalid syntax"


def crashed_outcome(job: FileJob, reason: str) -> FileOutcome:
    """The outcome of a file whose checker process died (a native crash, the kernel's
    out-of-memory killer): ENS000 for this file, the run goes on."""
    return FileOutcome(
        unreadable(job, f"internal error while checking this file: the checker process was {reason} (please report it)")
    )
