"""The figures of one verified class, as every report of verify reads them: a Row per
class (and batch size), a Trial per candidate rewrite. Plain data: the command fills
them, recommendation.py judges them, measured.py keeps them for check."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# The status is the verdict on equivalence alone; whether fx could trace each side is
# its own column (`traced`).
EQUIVALENT, MISMATCH, NO_REWRITE = "equivalent", "mismatch", "no rewrite"


@dataclass
class Trial:
    """One candidate rewrite of a class: its verdict, its graph and its timings."""

    form: str
    safety: str
    status: str = ""
    # "both", "original only", "rewrite only" or "neither": which side torch.fx traced
    # (where one cannot be, both are compared eagerly all the same).
    traced: str = ""
    calls_original: int | None = None
    calls_rewrite: int | None = None
    eager_counted: bool = False  # both counted in an eager forward, not in fx graphs
    forward_rewrite_ms: float | None = None
    step_rewrite_ms: float | None = None
    step_rewrite_iqr_ms: float | None = None
    compiled_rewrite_step_ms: float | None = None  # --compile
    compiled_rewrite_step_iqr_ms: float | None = None
    compile_rewrite_s: float | None = None
    max_abs_error: float | None = None
    decided_by: str = ""  # the test equivalence was judged by
    notes: list[str] = field(default_factory=list)


@dataclass
class Row:
    """One class: the original's figures, and a trial per candidate rewrite (the one
    `--fix --unsafe-fixes` writes first)."""

    target: str
    rule: str
    members: int | None = None
    batch: int | None = None  # the first input dimension timed (--batch)
    device: str = ""
    dtype: str = ""
    status: str = ""  # the verdict on the preferred rewrite; "mismatch" if any candidate mismatches
    forward_original_ms: float | None = None
    step_original_ms: float | None = None
    step_original_iqr_ms: float | None = None
    compiled_step_ms: float | None = None  # --compile: the compiled original's training step
    compiled_step_iqr_ms: float | None = None
    compile_s: float | None = None
    rtol: float | None = None
    atol: float | None = None
    notes: list[str] = field(default_factory=list)
    trials: list[Trial] = field(default_factory=list)
    recommendation: str = ""  # a candidate's form, KEEP_LOOP, NO_CLEAR or COMPILE_LOOP
    recommended_compiled: bool = False  # the recommended form is fastest under torch.compile
    config_table: str = ""  # needs config: the [tool.enslint.verify."Class"] table to paste

    @property
    def preferred(self) -> Trial | None:
        return self.trials[0] if self.trials else None

    def speedup(self, trial: Trial, step: bool = True) -> float | None:
        if step:
            return ratio(self.step_original_ms, trial.step_rewrite_ms)
        return ratio(self.forward_original_ms, trial.forward_rewrite_ms)

    @property
    def step_speedup(self) -> float | None:
        return self.speedup(self.preferred) if self.preferred else None

    def as_json(self) -> dict:
        """The class's figures with the preferred rewrite's at the top level (as one
        rewrite per class reads), and every candidate under `candidates`."""
        data = asdict(self)
        trials = data.pop("trials")
        first = trials[0] if trials else {f: None for f in Trial.__dataclass_fields__}
        for key, value in first.items():
            if key in ("notes", "status"):
                continue
            data[key] = value
        data["forward_speedup"] = self.speedup(self.preferred, step=False) if self.preferred else None
        data["step_speedup"] = self.step_speedup
        data["candidates"] = [
            {**t, "forward_speedup": self.speedup(trial, step=False), "step_speedup": self.speedup(trial)}
            for t, trial in zip(trials, self.trials, strict=True)  # `trials` is asdict's copy of them
        ]
        return data


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None
