"""verify's rows as `Measurement`s for the project's store (enslint/measurements.py),
which `check` reads: the speed-up of each candidate and whether it beat the loop."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from enslint.measurements import FASTER, NO_CLEAR, SLOWER, Candidate, Measurement, MeasurementStore, Run, content_hash

if TYPE_CHECKING:
    from enslint.verify.command import Row, Trial
    from enslint.verify.targets import Target


def verdict(row: Row, trial: Trial) -> str:
    """As `recommend` judges: beyond half of both interquartile ranges, or no clear
    difference; "" when either side was not timed."""
    if row.step_original_ms is None or trial.step_rewrite_ms is None:
        return ""
    margin = ((row.step_original_iqr_ms or 0.0) + (trial.step_rewrite_iqr_ms or 0.0)) / 2
    if trial.step_rewrite_ms + margin < row.step_original_ms:
        return FASTER
    if trial.step_rewrite_ms - margin > row.step_original_ms:
        return SLOWER
    return NO_CLEAR


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
            tuple(Candidate(t.form, t.status, row.speedup(t), verdict(row, t)) for t in row.trials if t.status),
            row.recommendation,
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
