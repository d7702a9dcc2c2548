"""`--fix` and `--diff` over many files: each file's fixed text is worked out in a worker
process (one may die: its file is left as it is, with ENS000), and files are written
here, in the main process, never by a worker.

What happens to each file is told through `notify` (one line each, for standard
error), so that the command line decides where words go and this module only fixes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from enslint.checking import FileJob, crashed_outcome
from enslint.engine import transaction
from enslint.engine.helper_writes import HelperModules
from enslint.findings import Diagnostic, Fix
from enslint.rewrites.helper_module import HelperModuleError
from enslint.runner import map_jobs

Notify = Callable[[str], None]
Choose = Callable[[Diagnostic], Fix | None]


@dataclass
class FixReport:
    """What `--fix` did: the findings left, the fixes written per file and rule, and how
    many files could not be written."""

    remaining: list[Diagnostic] = field(default_factory=list)
    fixed_by_file: dict[str, dict[str, int]] = field(default_factory=dict)
    failed_writes: int = 0

    @property
    def fixed(self) -> int:
        return sum(sum(codes.values()) for codes in self.fixed_by_file.values())


def fix_outcomes(jobs: Sequence[FileJob], unsafe: bool, choose: Choose | None = None) -> list[transaction.FixOutcome]:
    """Each file's fixed text, in worker processes; a worker that dies costs its file.
    `choose` (picklable) picks each finding's fix; by default the first one allowed."""

    def died(job: FileJob, reason: str) -> transaction.FixOutcome:
        return transaction.FixOutcome(
            job,
            error=f"the checker process was {reason} while fixing it; file left unchanged",
            remaining=crashed_outcome(job, reason).diagnostics,
        )

    return map_jobs(functools.partial(transaction.fix_file, unsafe=unsafe, choose=choose), jobs, on_death=died)


def show_diff(
    jobs: Sequence[FileJob], unsafe: bool, emit: Callable[[str], None], notify: Notify, choose: Choose | None = None
) -> int:
    """`emit` the diff of what --fix would change; returns how many fixes it holds."""
    fixed = 0
    helpers = HelperModules()
    for outcome in fix_outcomes(jobs, unsafe, choose):
        if outcome.error:
            notify(f"enslint: {outcome.job.path}: {outcome.error}")
        elif outcome.changed:
            try:
                helpers.plan(outcome.helpers)
            except HelperModuleError as error:
                notify(f"enslint: error: {outcome.job.path}: not fixed: its helper module {error}")
                continue
            emit(outcome.diff())
            fixed += outcome.fixed
    for change in helpers.planned.values():
        emit(change.diff())
    return fixed


def apply_fixes(jobs: Sequence[FileJob], unsafe: bool, notify: Notify, choose: Choose | None = None) -> FixReport:
    """Fix and write every file; the report holds what is left to fix."""
    report = FixReport()
    helpers = HelperModules()
    for outcome in fix_outcomes(jobs, unsafe, choose):
        job = outcome.job
        if outcome.error:
            notify(f"enslint: {job.path}: {outcome.error}")
        elif outcome.changed:
            try:
                transaction.preflight(outcome)  # a file that will not be written gets no helper either
                for written in helpers.write_for(outcome.helpers):
                    notify(f"enslint: {written}")
                if transaction.write_atomically(outcome):  # not counted: what another run wrote
                    report.fixed_by_file[job.path] = outcome.fixed_codes() or {"?": outcome.fixed}
            except (OSError, HelperModuleError) as error:
                report.failed_writes += 1
                notify(f"enslint: error: {job.path}: not written: {error}")
                outcome.remaining = outcome.initial
        if outcome.skipped:
            notify(f"enslint: {job.path}: {outcome.skipped} overlapping fix(es) left for another --fix run")
        report.remaining.extend(outcome.remaining)
    report.remaining.sort()
    return report
