"""Run the checker over many files, in parallel when it pays, in a stable order.

A run has two phases. The first checks every file as the prefilter allows: files that
mention a member collection are analysed, and their analysis reports the names they
let other files build collections with (a helper such as `clones`, a class holding
one). The second gives the files the prefilter skipped, that loop and belong to a
project, one more chance: those that mention one of the project's names (from the first
phase, and from the project index for files outside this run) are analysed too.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar, overload

from enslint.analysis.kinds import mentions_export
from enslint.cache import CACHE_FOLDER, code_fingerprint
from enslint.checking import FileJob, FileOutcome, check_file_outcome, crashed_outcome
from enslint.config import Config
from enslint.discovery import matches
from enslint.findings import Diagnostic
from enslint.rules import Settings

# Below this many files, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 24

Result = TypeVar("Result")
Progress = Callable[[int], None]  # `progress(n)`: n more files done


def display_path(path: Path, cwd: Path) -> str:
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return str(path)


def make_jobs(files: list[Path], config: Config, cwd: Path, use_cache: bool = True) -> list[FileJob]:
    from enslint.analysis.project import project_roots

    settings = Settings(min_members=config.min_members, runtime=config.runtime)
    cache_dir = str(config.root / CACHE_FOLDER) if use_cache else None
    fingerprint = code_fingerprint() if use_cache else ""
    base_codes = config.enabled_codes()
    roots = project_roots(files)
    jobs = []
    for path in files:
        codes = base_codes
        extra = tuple(
            code
            for pattern, ignored in config.per_file_ignores.items()
            if matches((pattern,), path, config.root, every_part=True)
            for code in ignored
        )
        if extra:
            codes = config.enabled_codes(extra)
        root = str(roots[path.absolute().parent])
        jobs.append(FileJob(display_path(path, cwd), str(path), codes, settings, cache_dir, fingerprint, root))
    return jobs


@overload
def map_jobs(
    function: Callable[[FileJob], FileOutcome],
    jobs: Sequence[FileJob],
    workers: int | None = None,
    progress: Progress | None = None,
    *,
    threshold: int = ...,
) -> list[FileOutcome]: ...


@overload
def map_jobs(
    function: Callable[[FileJob], Result],
    jobs: Sequence[FileJob],
    workers: int | None = None,
    progress: Progress | None = None,
    *,
    on_death: Callable[[FileJob, str], Result],
    threshold: int = ...,
) -> list[Result]: ...


def map_jobs(
    function: Callable[[FileJob], Any],
    jobs: Sequence[FileJob],
    workers: int | None = None,
    progress: Progress | None = None,
    on_death: Callable[[FileJob, str], Any] = crashed_outcome,
    *,
    threshold: int = PARALLEL_THRESHOLD,
) -> list[Any]:
    """`function` over the jobs, in order, each file in a worker process that may die
    (enslint/workers.py): its file gets `on_death(job, reason)`; `progress(1)` after
    each one (a progress bar)."""
    from enslint.workers import in_process, isolated_map

    workers = workers if workers is not None else (os.cpu_count() or 1)
    done = progress or (lambda n: None)
    if in_process() or not jobs:
        results = []
        for job in jobs:
            results.append(function(job))
            done(1)
        return results
    # Below the threshold one worker: starting more costs more than it saves.
    count = workers if len(jobs) >= threshold else 1
    return isolated_map(function, jobs, count, on_death, done)


def check_all(
    jobs: Sequence[FileJob], workers: int | None = None, progress: Progress | None = None
) -> tuple[list[FileJob], list[FileOutcome]]:
    """Both phases: the jobs (with project names where the second phase needed them)
    and their outcomes, in the jobs' order. `progress(n)`: n more files checked (the
    first phase; the second re-reads a few)."""
    from enslint.analysis.project import index_for

    # libcst makes hundreds of thousands of small objects per file, freed by reference
    # counts; at its default pace the cycle collector walks them again and again (7% of
    # a big file's time). The workers inherit the pace.
    gc.set_threshold(20_000, 20, 20)
    jobs = list(jobs)
    outcomes = map_jobs(check_file_outcome, jobs, workers, progress)
    pending = {i for i, outcome in enumerate(outcomes) if outcome.deferred}
    if not pending:
        return jobs, outcomes
    root_of: dict[int, str] = {}  # each deferred file's project
    for i in pending:
        root = jobs[i].project_root
        assert root is not None, "only a file of a project is deferred (checking/file.py)"
        root_of[i] = root
    names_by_root: dict[str, set[str]] = {}
    for root in {root_of[i] for i in pending}:
        names = {
            name
            for job, outcome in zip(jobs, outcomes, strict=True)  # an outcome per job
            if job.project_root == root
            for name in outcome.exports
        }
        # From the index, the project's other files: this run's analysed files gave their
        # names, and the deferred ones give theirs when the rounds below bring them back.
        targets = {
            job.filename
            for job, outcome in zip(jobs, outcomes, strict=True)
            if job.project_root == root and (outcome.analysed or outcome.deferred)
        }
        cache_dir = next((job.cache_dir for job in jobs if job.project_root == root), None)
        fingerprint = next((job.fingerprint for job in jobs if job.project_root == root), "")
        names |= index_for(root, cache_dir).exports(targets, fingerprint or code_fingerprint(), names)
        names_by_root[root] = names

    # Files skipped by the prefilter come back when they use a name; analysed files that
    # left a parent or helper unread (for want of the names) when that file uses one.
    # What comes back may export more names, hence the rounds.
    def worth_again(i: int) -> bool:
        names = tuple(sorted(names_by_root.get(root_of[i], ())))
        if not names:
            return False
        if outcomes[i].analysed:
            return any(_mentions(path, names) for path in outcomes[i].unread)
        return _mentions(jobs[i].filename, names)

    for _ in range(_ROUNDS):
        again = sorted(i for i in pending if worth_again(i))
        if not again:
            break
        for i in again:
            jobs[i] = replace(jobs[i], names=tuple(sorted(names_by_root[root_of[i]])))
        # Every file that comes back is parsed and analysed (a tenth of a second or more
        # each), unlike most of the first phase's, which the prefilter skips: two
        # are worth a second worker.
        checked = map_jobs(check_file_outcome, [jobs[i] for i in again], workers, threshold=2)
        for i, outcome in zip(again, checked, strict=True):  # an outcome per job
            outcomes[i] = outcome
            names_by_root[root_of[i]].update(outcome.exports)
        pending -= set(again)
    return jobs, outcomes


# Rounds of the second phase: a file brought back by a name may export one in turn
# (`class Probe(Bank)` where Bank holds `clones(...)`); chains longer than this are rare.
_ROUNDS = 4


def _mentions(path: str, names: tuple[str, ...]) -> bool:
    """Whether the file calls or derives from one of the project's collection names."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return False
    return mentions_export(data, names)


def run(jobs: Sequence[FileJob], workers: int | None = None, progress: Progress | None = None) -> list[Diagnostic]:
    _, outcomes = check_all(jobs, workers, progress)
    return sorted(d for outcome in outcomes for d in outcome.diagnostics)
