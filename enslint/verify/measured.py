"""verify's rows as `Measurement`s for the project's store (enslint/measurements.py),
which `check` reads: the speed-up of each candidate and whether it beat the loop."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from enslint.measurements import Candidate, Measurement, MeasurementStore, Run, content_hash
from enslint.verify.recommendation import Timed, loop_times, verdict
from enslint.verify.rows import ratio

if TYPE_CHECKING:
    from enslint.verify.rows import Row, Trial
    from enslint.verify.targets import Target


def _candidate(row: Row, trial: Trial) -> Candidate:
    """The trial as check tells it: its speed-up and verdict against the eager loop."""
    eager_loop, _ = loop_times(row)
    timed = Timed.of(trial.step_rewrite_ms, trial.step_rewrite_iqr_ms)
    compiled = ratio(row.step_original_ms, trial.compiled_rewrite_step_ms)
    return Candidate(trial.form, trial.status, row.speedup(trial), verdict(eager_loop, timed), compiled)


def measurement_of(target: Target, rows: Sequence[Row]) -> Measurement | None:
    """The class's rows (one per batch size) as one measurement; None when nothing was
    timed (a class that failed to build says nothing about speed) or the file is gone."""
    mine = [row for row in rows if row.target == target.display and row.step_original_ms is not None]
    if not mine:
        return None
    try:
        source_hash = content_hash(Path(target.file).read_bytes())
    except OSError:
        return None
    runs = tuple(
        Run(
            row.batch,
            tuple(_candidate(row, t) for t in row.trials if t.status),
            row.recommendation,
            ratio(row.step_original_ms, row.compiled_step_ms),
            row.recommended_compiled,
        )
        for row in mine
    )
    # The name check gives the file (its findings' `filename`), which the store is keyed by.
    filename = target.job.filename if target.job is not None else str(Path(target.file).resolve())
    return Measurement(filename, target.class_name, source_hash, mine[0].device, mine[0].dtype, runs)


def record(store_folder: Path, targets: Sequence[Target], rows: Sequence[Row]) -> int:
    """Keep what was measured; returns how many classes were recorded."""
    measured = [m for target in targets if (m := measurement_of(target, rows)) is not None]
    if measured:
        MeasurementStore(store_folder).record(measured)
    return len(measured)
