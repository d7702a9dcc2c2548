"""`enslint verify`: for each class, build, trace, compare, time, and report one row.

One class's failure (its constructor raises, it runs out of memory, it mismatches) is
recorded in its row and never stops the others.
"""

from __future__ import annotations

import copy
import re
import sys
import warnings
from dataclasses import asdict, dataclass, field

import torch

from enslint.config import Config
from enslint.verify import building, graphs, timing
from enslint.verify.equivalence import TOLERANCES, compare, full_precision, run_step
from enslint.verify.targets import Target

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}
# The status is the verdict on equivalence alone; whether fx could trace each side is
# its own column (`traced`).
EQUIVALENT, MISMATCH, NO_REWRITE = "equivalent", "mismatch", "no rewrite"
_COLLECTION = re.compile(r"loops over `\w+\.(\w+)`")
# The message's closing "(no fused rewrite: ...)", which may itself hold `clones()`.
_REASON = re.compile(r"\(((?:[^()]|\([^()]*\))*(?:fix|rewrite)(?:[^()]|\([^()]*\))*)\)$")


@dataclass
class Options:
    device: str
    dtype: str
    batch: int | None
    compile: bool
    min_time: float


@dataclass
class Row:
    target: str
    rule: str
    members: int | None = None
    device: str = ""
    dtype: str = ""
    status: str = ""
    # "both", "original only", "rewrite only" or "neither": which side torch.fx traced
    # (where one cannot be, both are compared eagerly all the same).
    traced: str = ""
    calls_original: int | None = None
    calls_rewrite: int | None = None
    forward_original_ms: float | None = None
    forward_rewrite_ms: float | None = None
    step_original_ms: float | None = None
    step_rewrite_ms: float | None = None
    compiled_step_ms: float | None = None  # --compile: the compiled original's training step
    compile_s: float | None = None
    compiled_rewrite_step_ms: float | None = None  # and the compiled rewrite's
    compile_rewrite_s: float | None = None
    max_abs_error: float | None = None
    rtol: float | None = None
    atol: float | None = None
    notes: list[str] = field(default_factory=list)
    eager_counted: bool = False  # calls counted in an eager forward, not in fx graphs

    @property
    def forward_speedup(self) -> float | None:
        return _ratio(self.forward_original_ms, self.forward_rewrite_ms)

    @property
    def step_speedup(self) -> float | None:
        return _ratio(self.step_original_ms, self.step_rewrite_ms)

    def as_json(self) -> dict:
        data = asdict(self)
        data["forward_speedup"] = self.forward_speedup
        data["step_speedup"] = self.step_speedup
        return data


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _members(target: Target, model: torch.nn.Module) -> int | None:
    for d in target.findings:
        match = _COLLECTION.search(d.message)
        collection = getattr(model, match.group(1), None) if match else None
        if isinstance(collection, (torch.nn.ModuleList, torch.nn.ModuleDict)):
            return len(collection)
    return None


def verify_one(target: Target, config: Config, options: Options) -> Row:
    row = Row(target.display, target.rules, device=options.device, dtype=options.dtype)
    if target.rewritten is None or not any(d.fixes for d in target.findings):
        row.status = NO_REWRITE
        reasons = [m.group(1) for d in target.findings for m in [_REASON.search(d.message)] if m]
        row.notes = reasons[:1] or (["no finding in this class"] if not target.findings else [])
        return row
    dtype = DTYPES[options.dtype]
    row.rtol, row.atol = TOLERANCES[dtype]
    pair = building.build(target, config, options.batch)
    row.members = _members(target, pair.original)
    files = {str(target.file), f"<enslint rewrite of {target.file}>"}

    original, rewritten = pair.original, pair.rewritten
    traced_original = graphs.trace(original, pair.method, files)
    traced_rewrite = graphs.trace(rewritten, pair.method, files)
    row.calls_original, row.calls_rewrite = traced_original.calls, traced_rewrite.calls
    row.traced = {(True, True): "both", (True, False): "original only", (False, True): "rewrite only", (False, False): "neither"}[
        (not traced_original.problem, not traced_rewrite.problem)
    ]
    if traced_original.problem:
        row.notes.append(f"fx cannot trace the original ({traced_original.problem})")
    if traced_rewrite.problem:
        row.notes.append(f"fx cannot trace the rewrite ({traced_rewrite.problem})")

    # Compared in eval mode, where dropout is off and both compute one function.
    for model in (original, rewritten):
        model.to(device=options.device, dtype=dtype).eval()
    inputs = building.make_inputs(pair.shapes, dtype, options.device)
    # Where fx cannot trace either one, the torch calls of one eager forward of each
    # stand in for the graphs (counted the same way on both sides, so comparable).
    if traced_original.calls is None or traced_rewrite.calls is None:
        row.calls_original = graphs.eager_calls(original, pair.method, inputs)
        row.calls_rewrite = graphs.eager_calls(rewritten, pair.method, inputs)
        row.eager_counted = True
    call = lambda model, *xs: getattr(model, pair.method)(*xs)  # noqa: E731
    with full_precision():
        reference = None
        if dtype != torch.float64:  # judged against the original run in float64
            exact = copy.deepcopy(original).to(torch.float64)
            reference = run_step(exact, call, [x.to(torch.float64) for x in inputs])
            del exact
        result = compare(run_step(original, call, inputs), run_step(rewritten, call, inputs), rewritten, dtype, reference)
    row.max_abs_error = result.max_abs_error
    if not result.equivalent:
        row.status = MISMATCH
        row.notes += result.problems[:5]
        return row
    row.status = EQUIVALENT

    for model in (original, rewritten):
        model.train()
    first, second = (
        timing.measure(getattr(model, pair.method), list(model.parameters()), inputs, options.min_time, options.device)
        for model in (original, rewritten)
    )
    row.forward_original_ms, row.forward_rewrite_ms = first.forward_ms, second.forward_ms
    row.step_original_ms, row.step_rewrite_ms = first.step_ms, second.step_ms
    if options.compile:
        for side, model in (("original", original), ("rewrite", rewritten)):
            try:
                seconds, compiled = timing.compile_and_measure(
                    getattr(model, pair.method), list(model.parameters()), inputs, options.min_time, options.device
                )
            except Exception as error:  # noqa: BLE001 - compile trouble is a note, not a failure
                row.notes.append(f"torch.compile of the {side} failed: {type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}")
                continue
            if side == "original":
                row.compile_s, row.compiled_step_ms = seconds, compiled.step_ms
            else:
                row.compile_rewrite_s, row.compiled_rewrite_step_ms = seconds, compiled.step_ms
    return row


def _with_torch_warnings(target: Target, config: Config, options: Options) -> Row:
    """verify_one, with what torch warned about on the way kept as notes (a vmap batching
    rule that falls back to a slow loop, say): they explain the timings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row = verify_one(target, config, options)
    seen = dict.fromkeys(str(w.message).split(". ")[0] for w in caught if "NumPy" not in str(w.message))
    row.notes += [f"torch warned: {message}" for message in seen]
    return row


def run(targets: list[Target], config: Config, options: Options, progress) -> list[Row]:
    rows = []
    for number, target in enumerate(targets, start=1):
        progress(f"enslint verify [{number}/{len(targets)}] {target.display} on {options.device} ({options.dtype})")
        try:
            row = _with_torch_warnings(target, config, options)
        except building.NeedsConfig as error:
            row = Row(target.display, target.rules, device=options.device, dtype=options.dtype, status=f"error: {error}")
            row.notes.append("needs config")
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            row = Row(target.display, target.rules, device=options.device, dtype=options.dtype, status="error: out of memory")
        except Exception as error:  # noqa: BLE001 - one class's failure must not stop the others
            text = str(error).strip().splitlines()[0] if str(error).strip() else ""
            row = Row(target.display, target.rules, device=options.device, dtype=options.dtype, status=f"error: {type(error).__name__}: {text[:200]}")
            if isinstance(error, TypeError) and "required positional argument" in text:
                # The method takes more inputs than were configured (or inferred).
                row.status = (
                    f"error: {text}: add inputs = [[batch, ...], ...] with one shape per argument to "
                    f'[tool.enslint.verify."{target.class_name}"] in pyproject.toml'
                )
                row.notes.append("needs config")
        rows.append(row)
    return rows


def exit_code(rows: list[Row]) -> int:
    """0 every verified class equivalent; 1 any mismatch or failure; 2 a class that needs
    configuration (and nothing worse)."""
    if any(r.status == MISMATCH or (r.status.startswith("error") and "needs config" not in r.notes) for r in rows):
        return 1
    if any("needs config" in r.notes for r in rows):
        return 2
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(rows: list[Row], with_compile: bool) -> str:
    header = ["class", "rule", "E", "device", "dtype", "fx calls", "fwd ms", "fwd rewrite ms", "fwd speed-up", "fwd+bwd ms", "fwd+bwd rewrite ms", "fwd+bwd speed-up"]
    if with_compile:
        header += ["compiled fwd+bwd ms", "compiled rewrite ms", "compile s"]
    header += ["max abs error", "fx traced", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes = []
    for row in rows:
        calls = "-"
        if row.calls_original is not None:
            mark = "*" if row.eager_counted else ""
            calls = f"{row.calls_original} -> {row.calls_rewrite}{mark}"
        cells = [
            row.target, row.rule, "-" if row.members is None else str(row.members), row.device, row.dtype, calls,
            _ms(row.forward_original_ms), _ms(row.forward_rewrite_ms), _x(row.forward_speedup),
            _ms(row.step_original_ms), _ms(row.step_rewrite_ms), _x(row.step_speedup),
        ]
        if with_compile:
            seconds = [t for t in (row.compile_s, row.compile_rewrite_s) if t is not None]
            cells += [_ms(row.compiled_step_ms), _ms(row.compiled_rewrite_step_ms), " + ".join(f"{t:.1f}" for t in seconds) or "-"]
        cells += ["-" if row.max_abs_error is None else f"{row.max_abs_error:.2e}", row.traced or "-", row.status]
        lines.append("| " + " | ".join(cells) + " |")
        notes += [f"{row.target}: {note}" for note in row.notes if note != "needs config"]
    tolerances = sorted({(r.dtype, r.rtol, r.atol) for r in rows if r.rtol is not None})
    lines += [""] + [f"tolerance {d}: rtol={rt:g}, atol={at:g} x max(1, largest magnitude)" for d, rt, at in tolerances]
    if any(r.dtype != "float64" for r in rows):
        lines.append("below float64: the rewrite's error against the original run in float64 must be at most twice the original's, plus atol")
    if any(row.eager_counted for row in rows):
        lines.append("fx calls: call nodes of the torch.fx graphs; *: torch calls of one eager forward of each, where fx cannot trace one of them")
    lines += notes
    return "\n".join(lines).rstrip("\n")


def progress_printer(stream=sys.stderr):
    def show(text: str) -> None:
        print(text, file=stream, flush=True)

    return show
