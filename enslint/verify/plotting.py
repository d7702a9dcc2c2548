"""`enslint verify --plot`: per class, the training-step time of the original and of each
rewrite across the batch sizes of a sweep, where the rewrite starts to win being what
people look for."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from enslint.verify.command import Row


def plot_sweep(rows: Sequence[Row], path: Path) -> None:
    """One panel per class (log-log axes), one line per side; classes with nothing timed
    are left out. Written whole: a temporary file renamed over `path`."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    by_class: dict[str, list[Row]] = {}
    for row in rows:
        if row.step_original_ms is not None and row.batch is not None:
            by_class.setdefault(row.target, []).append(row)
    count = max(len(by_class), 1)
    columns = min(3, count)
    lines = math.ceil(count / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(5 * columns, 3.6 * lines), squeeze=False)
    # A grid has at least as many panels as classes: the spare ones are switched off below.
    for panel, (target, found) in zip(axes.flat, by_class.items(), strict=False):
        found = sorted(found, key=_batch)
        batches = [r.batch for r in found]
        panel.plot(batches, [r.step_original_ms for r in found], marker="o", color="black", label="original (loop)")
        forms = list(dict.fromkeys(t.form for r in found for t in r.trials))
        for form in forms:
            points = [
                (r.batch, t.step_rewrite_ms)
                for r in found
                for t in r.trials
                if t.form == form and t.step_rewrite_ms is not None
            ]
            if points:
                panel.plot(*zip(*points, strict=True), marker="o", label=form)
        panel.set_xscale("log", base=2)
        panel.set_yscale("log")
        panel.set_title(target.rsplit("/", 1)[-1], fontsize=9)
        panel.set_xlabel("batch size")
        panel.set_ylabel("fwd+bwd ms")
        panel.legend(fontsize=7)
    for panel in list(axes.flat)[len(by_class) :]:
        panel.axis("off")
    device = rows[0].device if rows else ""
    figure.suptitle(f"enslint verify: training step, original vs rewrites ({device})", fontsize=10)
    figure.tight_layout()
    temporary = path.with_name(f".{path.name}.enslint-tmp{path.suffix}")
    try:
        figure.savefig(temporary, dpi=110)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
        plt.close(figure)


def _batch(row: Row) -> int:
    """The batch size of a row to plot: only rows with one are kept."""
    assert row.batch is not None, "rows without a batch size are not plotted"
    return row.batch
