"""The process that analyses a run's files, started before the files are even found.

The run's own process never imports libcst, which takes a fifth of a second: the
prefilter and the cache, which answer for most files, do not need it. A process forked
at the start imports the analysis while the run's process finds the files and its
workers prefilter them, then forks the analysing workers, which find it all imported
(workers.WarmPool). This module imports nothing of the analysis: that process does.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from enslint.workers import WarmPool, in_process

if TYPE_CHECKING:
    from enslint.checking import FileJob, FileOutcome


class Analyser:
    """`start` forks the process, where fork exists and ENSLINT_DEBUG (everything in one
    process) is unset; otherwise `running` stays false and the caller analyses itself.
    `submit` hands it files, `results` waits for their outcomes, `stop` ends it."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self._pool: WarmPool | None = None

    @classmethod
    def started(cls) -> Analyser:
        analyser = cls()
        analyser.start()
        return analyser

    def start(self) -> None:
        if self._pool is None and not in_process() and WarmPool.available():
            self._pool = WarmPool(_prepare)

    @property
    def running(self) -> bool:
        return self._pool is not None

    def submit(self, jobs: list[FileJob], workers: int) -> None:
        """Hand over files to analyse, in up to `workers` workers; `results` waits."""
        assert self._pool is not None, "start() first"
        self._pool.submit(jobs, workers)

    def results(self, progress: Callable[[int], None] | None) -> list[FileOutcome]:
        assert self._pool is not None, "start() first"
        return self._pool.results(progress)

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.stop()
            self._pool = None


def collect_less_often() -> None:
    """libcst makes hundreds of thousands of small objects per file, freed by reference
    counts; at its default pace the cycle collector walks them again and again (7% of a
    big file's time). Workers inherit the pace."""
    gc.set_threshold(20_000, 20, 20)


def _prepare() -> tuple[Callable[[FileJob], FileOutcome], Callable[[FileJob, str], FileOutcome]]:
    """What every analysis imports, imported once before the analysing workers are
    forked; the function they run, and the outcome of a file whose worker dies."""
    import enslint.analysis.model
    import enslint.checking.analyse
    import enslint.checking.big_files
    import enslint.rewrites.fix_assembly  # noqa: F401
    from enslint.checking import analysed_outcome, crashed_outcome

    collect_less_often()
    return analysed_outcome, crashed_outcome
