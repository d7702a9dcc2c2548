"""What `enslint verify` measured, kept so that `check` can tell it and `--fix` heed it.

A fused rewrite is not faster everywhere: on a CPU, or with few members, the loop may
win. verify times each candidate rewrite of a class against its loop; this module keeps
the last verdict per class, tied to the file's exact content (a measurement of other
code says nothing), in `.enslint_cache/measurements.json` beside the configuration.
`check` then prints the measured speed-up and device beside the class's findings, and
`--fix` leaves a rewrite that verify found slower unless asked to apply it anyway.

Torch-free, like the rest of `check`: verify turns its rows into `Measurement`s.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from enslint.findings import Diagnostic, Fix

STORE_NAME = "measurements.json"
_FORMAT = 1
# Every finding's message opens with the flagged method, `Class.method`.
_FLAGGED_CLASS = re.compile(r"`(\w+)\.\w+`")

FASTER, SLOWER, NO_CLEAR = "faster", "slower", "no clear difference"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Candidate:
    """One candidate rewrite as timed: `form` joins the forms of its fixes with " + "."""

    form: str
    status: str  # verify's verdict on equivalence ("equivalent", "mismatch", "error: ...")
    step_speedup: float | None  # the loop's training step time over the rewrite's
    verdict: str  # FASTER, SLOWER, NO_CLEAR beyond the spread of both timings; "" untimed
    compiled_speedup: float | None = None  # --compile: the eager loop's time over the compiled rewrite's


@dataclass(frozen=True)
class Run:
    """One timing run of a class: one batch size on one device."""

    batch: int | None
    candidates: tuple[Candidate, ...]
    recommendation: str  # a candidate's form, "keep the loop", NO_CLEAR or "compile the loop"
    compiled_loop_speedup: float | None = None  # --compile: the eager loop's time over the compiled loop's
    compiled: bool = False  # the recommended form is fastest under torch.compile


@dataclass(frozen=True)
class Measurement:
    """verify's last word on one class of one file, at one content of that file."""

    file: str  # absolute path
    class_name: str
    source_hash: str
    device: str
    dtype: str
    runs: tuple[Run, ...]

    def slower_forms(self) -> frozenset[str]:
        """The fix forms --fix should leave: in every run, each candidate that holds the
        form was measured slower than the loop, or was not equivalent."""
        forms = {part for run in self.runs for c in run.candidates for part in c.form.split(" + ")}
        return frozenset(
            form
            for form in forms
            if all(
                all(_rejected(c) for c in run.candidates if form in c.form.split(" + "))
                and any(form in c.form.split(" + ") for c in run.candidates)
                for run in self.runs
            )
        )

    def summary(self) -> str:
        """`verify on cpu (float32): stacked weights 0.77x, vmap 0.83x: keep the loop`;
        a run per batch size is told per size."""
        parts = []
        for run in self.runs:
            timed = ", ".join(f"{c.form} {_ratio(c)}{_compiled(c.compiled_speedup)}" for c in run.candidates)
            if run.compiled_loop_speedup is not None:
                timed += f", the loop compiled {run.compiled_loop_speedup:.2f}x"
            at = f"batch {run.batch}: " if run.batch is not None and len(self.runs) > 1 else ""
            parts.append(f"{at}{timed or 'nothing timed'}" + _recommends(run.recommendation, run.compiled))
        return f"verify on {self.device} ({self.dtype}): " + "; ".join(parts)

    def as_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, value: object) -> Measurement | None:
        """None for anything that is not a well-formed entry (the store is a cache)."""
        if not isinstance(value, dict):
            return None
        try:
            runs = tuple(
                Run(
                    run["batch"],
                    tuple(Candidate(**c) for c in run["candidates"]),
                    run["recommendation"],
                    run.get("compiled_loop_speedup"),
                    bool(run.get("compiled", False)),
                )
                for run in value["runs"]
            )
            return cls(
                str(value["file"]),
                str(value["class_name"]),
                str(value["source_hash"]),
                str(value["device"]),
                str(value["dtype"]),
                runs,
            )
        except (KeyError, TypeError):
            return None


def _recommends(recommendation: str, compiled: bool = False) -> str:
    if not recommendation:
        return ""
    if recommendation == "keep the loop":
        return ", recommends keeping the loop"
    if recommendation == "compile the loop":
        return ", recommends compiling the loop (torch.compile of it is as fast as any rewrite)"
    if recommendation == NO_CLEAR:
        return ", no clear difference"
    return f", recommends {recommendation}" + (" under torch.compile" if compiled else "")


def _compiled(speedup: float | None) -> str:
    return "" if speedup is None else f" ({speedup:.2f}x compiled)"


def _rejected(candidate: Candidate) -> bool:
    return candidate.verdict == SLOWER or candidate.status not in ("equivalent", "")


def _ratio(candidate: Candidate) -> str:
    if candidate.status not in ("equivalent", ""):
        return candidate.status.split(":")[0]
    return f"{candidate.step_speedup:.2f}x" if candidate.step_speedup is not None else "untimed"


def _key(file: str, class_name: str) -> str:
    return f"{file}::{class_name}"


class MeasurementStore:
    """The measurements of one project (`folder` is its `.enslint_cache`). A store that
    cannot be read is empty; one that cannot be written is left as it was."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / STORE_NAME
        self.entries: dict[str, Measurement] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("format") == _FORMAT and isinstance(data.get("entries"), dict):
            for key, value in data["entries"].items():
                measurement = Measurement.from_json(value)
                if measurement is not None:
                    self.entries[key] = measurement

    def record(self, measurements: Iterable[Measurement]) -> None:
        """Each class's latest measurement replaces its earlier one (other device,
        other code); written whole through a temporary file."""
        for m in measurements:
            self.entries[_key(m.file, m.class_name)] = m
        data = {"format": _FORMAT, "entries": {k: m.as_json() for k, m in sorted(self.entries.items())}}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".measurements.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as stream:
                    json.dump(data, stream, indent=1)
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError:
            pass

    def current(self, filename: str, class_name: str, hashes: dict[str, str | None]) -> Measurement | None:
        """The class's measurement when the file still holds the code it measured.
        `hashes` caches each file's content hash over one run (None: unreadable)."""
        measurement = self.entries.get(_key(filename, class_name))
        if measurement is None:
            return None
        if filename not in hashes:
            try:
                hashes[filename] = content_hash(Path(filename).read_bytes())
            except OSError:
                hashes[filename] = None
        return measurement if hashes[filename] == measurement.source_hash else None


def flagged_class(diagnostic: Diagnostic) -> str | None:
    match = _FLAGGED_CLASS.match(diagnostic.message)
    return match.group(1) if match else None


@dataclass(frozen=True)
class SlowerForms:
    """Per file and class, the fix forms verify measured slower: what --fix leaves.
    Plain data, so that the fix workers can be handed it."""

    forms: dict[str, dict[str, frozenset[str]]]

    def of(self, diagnostic: Diagnostic) -> frozenset[str]:
        class_name = flagged_class(diagnostic)
        if class_name is None:
            return frozenset()
        return self.forms.get(diagnostic.filename, {}).get(class_name, frozenset())


@dataclass(frozen=True)
class MeasuredChoice:
    """`--fix`'s choice of a finding's fix, leaving the forms verify measured slower:
    the next form on offer is taken instead, if there is one."""

    unsafe: bool
    slower: SlowerForms

    def __call__(self, diagnostic: Diagnostic) -> Fix | None:
        left = self.slower.of(diagnostic)
        return next((f for f in diagnostic.fixes if f.applies(self.unsafe) and str(f.form) not in left), None)


def slower_forms(store: MeasurementStore, filenames: Iterable[str]) -> SlowerForms:
    """What verify found slower in these files, where they still hold the measured code."""
    hashes: dict[str, str | None] = {}
    wanted = set(filenames)
    forms: dict[str, dict[str, frozenset[str]]] = {}
    for m in store.entries.values():
        if m.file in wanted and store.current(m.file, m.class_name, hashes) is not None and m.slower_forms():
            forms.setdefault(m.file, {})[m.class_name] = m.slower_forms()
    return SlowerForms(forms)


HOW_TO_MEASURE = (
    "Whether the rewrite is faster depends on the device, the sizes and the member count: "
    "`enslint verify {target}` measures it (`--device cuda` on a GPU)"
)


def annotate(
    diagnostics: Sequence[Diagnostic], store: MeasurementStore | None, unsafe: bool, apply_slower: bool = False
) -> list[Diagnostic]:
    """Each fixable finding says how to measure its rewrite, or what verify measured for
    the class as its file now stands; a fix form verify found slower is taken off the
    finding (so neither its marker nor --fix offers it) unless `apply_slower`, and the
    message says so when it is the fix --fix would have applied."""
    hashes: dict[str, str | None] = {}
    told = []
    for d in diagnostics:
        class_name = flagged_class(d)
        if not d.fixes or class_name is None or not d.filename:
            told.append(d)
            continue
        measured = store.current(d.filename, class_name, hashes) if store is not None else None
        if measured is None:
            note = HOW_TO_MEASURE.format(target=f"{d.path}::{class_name}")
            told.append(replace(d, details=_join(d.details, note)))
            continue
        slower = measured.slower_forms()
        kept = d.fixes if apply_slower else tuple(f for f in d.fixes if str(f.form) not in slower)
        would = d.fix_for(unsafe)
        message = f"{d.message}; {measured.summary()}"
        if would is not None and would not in kept:
            message += f" (--fix leaves the {would.form} rewrite; --apply-slower applies it)"
        told.append(replace(d, message=message, fixes=kept, details=_join(d.details, measured.summary())))
    return told


def _join(details: str, line: str) -> str:
    return f"{details}\n{line}" if details else line
