"""Run the checker over many files, in parallel when it pays, in a stable order.

A run has two phases. The first checks every file as the prefilter allows: files that
mention a member collection are analysed, and their analysis reports the names they
let other files build collections with (a helper such as `clones`, a class holding
one). The second gives the files the prefilter skipped, that loop and belong to a
project, one more chance: those that mention one of the project's names (from the first
phase, and from the project index for files outside this run) are analysed too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar, overload

from enslint.analyser import Analyser, collect_less_often
from enslint.analysis.kinds import mentions_export
from enslint.cache import CACHE_FOLDER, code_fingerprint
from enslint.checking import FileJob, FileOutcome, analysed_outcome, crashed_outcome, prefiltered_outcome
from enslint.config import Config
from enslint.discovery import matches
from enslint.findings import Diagnostic

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
    from enslint.rules import Settings

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
    counted: Callable[[FileOutcome], bool] | None = ...,
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
    counted: Callable[[Result], bool] | None = ...,
) -> list[Result]: ...


def map_jobs(
    function: Callable[[FileJob], Any],
    jobs: Sequence[FileJob],
    workers: int | None = None,
    progress: Progress | None = None,
    on_death: Callable[[FileJob, str], Any] = crashed_outcome,
    *,
    threshold: int = PARALLEL_THRESHOLD,
    counted: Callable[[Any], bool] | None = None,
) -> list[Any]:
    """`function` over the jobs, in order, each file in a worker process that may die
    (enslint/workers.py): its file gets `on_death(job, reason)`; `progress(1)` after
    each one (a progress bar), or after each result `counted` accepts."""
    from enslint.workers import in_process, isolated_map

    workers = workers if workers is not None else (os.cpu_count() or 1)
    tick = progress or (lambda n: None)
    if in_process() or not jobs:
        results = []
        for job in jobs:
            results.append(function(job))
            if counted is None or counted(results[-1]):
                tick(1)
        return results
    # Below the threshold one worker: starting more costs more than it saves.
    count = workers if len(jobs) >= threshold else 1
    return isolated_map(function, jobs, count, on_death, tick, counted=counted)


def check_all(
    jobs: Sequence[FileJob],
    workers: int | None = None,
    progress: Progress | None = None,
    analyser: Analyser | None = None,
) -> tuple[list[FileJob], list[FileOutcome]]:
    """Both phases: the jobs (with project names where the second phase needed them)
    and their outcomes, in the jobs' order. `progress(n)`: n more files checked (the
    first phase; the second re-reads a few). `analyser`: one started earlier, used up
    here."""
    collect_less_often()
    jobs = list(jobs)
    if analyser is None:
        analyser = Analyser(workers)
        if not _likely_cached(jobs):
            analyser.start()
    try:
        return _both_phases(jobs, analyser, progress)
    finally:
        analyser.stop()


def _likely_cached(jobs: list[FileJob]) -> bool:
    """A big run with a cache folder most likely finds its results there: the analyser's
    import would only take a core from the prefilter's workers, so it starts when a file
    needs it."""
    return len(jobs) >= PARALLEL_THRESHOLD and any(
        job.cache_dir is not None and os.path.isdir(job.cache_dir) for job in jobs[:1]
    )


def _outcomes(
    jobs: list[FileJob],
    analyser: Analyser,
    progress: Progress | None,
    meanwhile: Callable[[list[FileOutcome]], None] = lambda outcomes: None,
) -> list[FileOutcome]:
    """Each job's outcome: the prefilter's, from this process's workers, or, where the
    prefilter lets a file through, the analysis', from the analyser's. `meanwhile(the
    prefilter's outcomes)` runs here while the analysis runs there."""
    # While the analyser imports, one worker: a second would only take its core.
    light = 1 if analyser.running else analyser.workers
    outcomes = map_jobs(prefiltered_outcome, jobs, light, progress, counted=_final)
    todo = [i for i, outcome in enumerate(outcomes) if outcome.needs_analysis]
    if not todo:
        meanwhile(outcomes)
        return outcomes
    # Every file analysed costs a tenth of a second or more: two are worth a second worker.
    count = analyser.workers if len(todo) >= 2 else 1
    analyser.start()
    if analyser.running:
        analyser.submit([jobs[i] for i in todo], count)
        meanwhile(outcomes)
        analysed = analyser.results(progress)
    else:
        meanwhile(outcomes)
        analysed = map_jobs(analysed_outcome, [jobs[i] for i in todo], count, progress, threshold=2)
    for i, outcome in zip(todo, analysed, strict=True):  # an outcome per job
        outcomes[i] = outcome
    return outcomes


def _read_ahead(jobs: list[FileJob], outcomes: list[FileOutcome]) -> None:
    """The project index's reading for the second phase that no analysis changes, for
    the projects that have deferred files: done while their analysis runs."""
    from enslint.analysis.project import index_for

    for root in {job.project_root for job, outcome in zip(jobs, outcomes, strict=True) if outcome.deferred}:
        assert root is not None, "only a file of a project is deferred (checking/file.py)"
        targets = {
            job.filename
            for job, outcome in zip(jobs, outcomes, strict=True)
            if job.project_root == root and (outcome.needs_analysis or outcome.deferred)
        }
        cache_dir = next((job.cache_dir for job in jobs if job.project_root == root), None)
        index_for(root, cache_dir).read_ahead(targets)


def _final(outcome: FileOutcome) -> bool:
    return not outcome.needs_analysis


def _both_phases(
    jobs: list[FileJob], analyser: Analyser, progress: Progress | None
) -> tuple[list[FileJob], list[FileOutcome]]:
    from enslint.analysis.project import index_for

    outcomes = _outcomes(jobs, analyser, progress, lambda light: _read_ahead(jobs, light))
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
        checked = _outcomes([jobs[i] for i in again], analyser, None)
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


def run(
    jobs: Sequence[FileJob],
    workers: int | None = None,
    progress: Progress | None = None,
    analyser: Analyser | None = None,
) -> list[Diagnostic]:
    _, outcomes = check_all(jobs, workers, progress, analyser)
    return sorted(d for outcome in outcomes for d in outcome.diagnostics)
