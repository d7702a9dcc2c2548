"""What verify recommends for a class, from its timings: a rewrite, "keep the loop",
"no clear difference", or, with --compile, "compile the loop".

A difference counts only beyond the spread of both measurements: each median moved by
half its interquartile range towards the other must still be apart. Timings on a busy
machine are noisy, and a rewrite that changes a user's checkpoint layout is not worth a
speed-up inside the noise.

With --compile the user has a third choice beside the loop and a rewrite:
`torch.compile` of the loop as it is (on a CPU it can match a hand-fused form). Every
candidate, eager and compiled, is then held against the faster of the eager and the
compiled loop. A rewrite is recommended only where it beats both; where none does and
compiling is what makes the loop that fast, the recommendation says so, plainly. Never
is a rewrite slower than the loop, as measured on that device and those shapes,
recommended.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from enslint.measurements import FASTER, NO_CLEAR, SLOWER

if TYPE_CHECKING:
    from enslint.verify.rows import Row, Trial

KEEP_LOOP = "keep the loop"
COMPILE_LOOP = "compile the loop"


@dataclass(frozen=True)
class Timed:
    """A median training-step time and its interquartile range, in milliseconds."""

    ms: float
    iqr: float = 0.0

    @classmethod
    def of(cls, ms: float | None, iqr: float | None) -> Timed | None:
        return None if ms is None else cls(ms, iqr or 0.0)

    def _margin(self, other: Timed) -> float:
        return (self.iqr + other.iqr) / 2

    def beats(self, other: Timed) -> bool:
        return self.ms + self._margin(other) < other.ms

    def loses_to(self, other: Timed) -> bool:
        return self.ms - self._margin(other) > other.ms


def verdict(loop: Timed | None, rewrite: Timed | None) -> str:
    """FASTER, SLOWER or NO_CLEAR for the rewrite against the loop; "" when either side
    was not timed."""
    if loop is None or rewrite is None:
        return ""
    if rewrite.beats(loop):
        return FASTER
    if rewrite.loses_to(loop):
        return SLOWER
    return NO_CLEAR


@dataclass(frozen=True)
class Choice:
    """A recommendation: a candidate's form, KEEP_LOOP, NO_CLEAR, COMPILE_LOOP, or ""
    when nothing was timed; `compiled` when the form is fastest under torch.compile."""

    recommendation: str
    compiled: bool = False


def loop_times(row: Row) -> tuple[Timed | None, Timed | None]:
    """The eager and the compiled loop's training step (None: not timed)."""
    return (
        Timed.of(row.step_original_ms, row.step_original_iqr_ms),
        Timed.of(row.compiled_step_ms, row.compiled_step_iqr_ms),
    )


def _candidates(row: Row) -> Iterator[tuple[Timed, Trial, bool]]:
    for trial in row.trials:
        if trial.status != "equivalent":
            continue
        eager = Timed.of(trial.step_rewrite_ms, trial.step_rewrite_iqr_ms)
        compiled = Timed.of(trial.compiled_rewrite_step_ms, trial.compiled_rewrite_step_iqr_ms)
        if eager is not None:
            yield eager, trial, False
        if compiled is not None:
            yield compiled, trial, True


def recommend(row: Row) -> Choice:
    """The fastest equivalent candidate (eager or, timed with --compile, compiled) when
    it beats the fastest loop beyond the spread; COMPILE_LOOP when none does and the
    compiled loop beats the eager one; else KEEP_LOOP when every candidate is slower
    than that loop beyond the spread, NO_CLEAR when the ranges overlap."""
    eager_loop, compiled_loop = loop_times(row)
    timed = list(_candidates(row))
    if not timed or eager_loop is None:
        return Choice("")
    best, trial, compiled = min(timed, key=lambda candidate: candidate[0].ms)
    loop = compiled_loop if compiled_loop is not None and compiled_loop.ms < eager_loop.ms else eager_loop
    if best.beats(loop):
        return Choice(trial.form, compiled)
    if loop is compiled_loop and compiled_loop.beats(eager_loop):
        return Choice(COMPILE_LOOP)
    if best.loses_to(loop):
        return Choice(KEEP_LOOP)
    return Choice(NO_CLEAR)


def speedup_interval(row: Row, trial: Trial) -> tuple[float, float] | None:
    """The training-step speed-up with each median moved by half its interquartile range
    against the rewrite (low) and in its favour (high)."""
    if row.step_original_ms is None or not trial.step_rewrite_ms:
        return None
    half_o, half_r = (row.step_original_iqr_ms or 0.0) / 2, (trial.step_rewrite_iqr_ms or 0.0) / 2
    low = (row.step_original_ms - half_o) / (trial.step_rewrite_ms + half_r)
    high = (row.step_original_ms + half_o) / max(trial.step_rewrite_ms - half_r, 1e-12)
    return low, high
