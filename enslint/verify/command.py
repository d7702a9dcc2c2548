"""`enslint verify`: for each class, build, trace, compare, time, and report one row.

One class's failure (its constructor raises, it runs out of memory, it mismatches) is
recorded in its row and never stops the others.

Why one module of this size: it is the command's whole flow for one class and the
report of all of them (text, markdown, JSON); building, tracing, comparing and timing
are in their own modules (building.py, equivalence.py, measurements).
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch

from enslint.config import Config
from enslint.engine.helper_writes import HelperModules
from enslint.engine.transaction import fix_file, write_atomically
from enslint.rewrites.helper_module import HelperModuleError
from enslint.verify import building, graphs, loading, timing
from enslint.verify.equivalence import TOLERANCES, compare, full_precision, run_step
from enslint.verify.graphs import shorten
from enslint.verify.recommendation import COMPILE_LOOP, KEEP_LOOP, NO_CLEAR, recommend, speedup_interval
from enslint.verify.rows import EQUIVALENT, MISMATCH, NO_REWRITE, Row, Trial, ratio
from enslint.verify.targets import Target
from enslint.workers import in_process, isolated_map

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}
_COLLECTION = re.compile(r"loops over `\w+\.(\w+)`")


# A class that has not finished in this many seconds (its import included) is stopped.
DEFAULT_TIME_LIMIT = 600.0


@dataclass
class Options:
    device: str
    dtype: str
    batch: int | None
    compile: bool
    min_time: float
    time_limit: float | None = DEFAULT_TIME_LIMIT  # seconds per class, in its own process
    only_definitions: bool = False  # --definitions-only


def _members(target: Target, model: torch.nn.Module) -> int | None:
    for d in target.findings:
        match = _COLLECTION.search(d.details or d.message)
        collection = getattr(model, match.group(1), None) if match else None
        if isinstance(collection, (torch.nn.ModuleList, torch.nn.ModuleDict)):
            return len(collection)
    return None


def verify_one(target: Target, config: Config, options: Options) -> Row:
    row = Row(target.display, target.rules, device=options.device, dtype=options.dtype)
    if not target.candidates:
        row.status = NO_REWRITE
        reasons = [d.no_fix for d in target.findings if d.no_fix]
        row.notes = reasons[:1] or (["no finding in this class"] if not target.findings else [])
        return row
    dtype = DTYPES[options.dtype]
    row.rtol, row.atol = TOLERANCES[dtype]
    pair = building.build(target, config, options.batch, only_definitions=options.only_definitions)
    if pair.spec_name.startswith("built as"):
        row.notes.append(pair.spec_name)
    original = pair.original
    row.members = _members(target, original)
    row.batch = pair.shapes[0][0] if pair.shapes and pair.shapes[0] else None
    files = {str(target.file), f"<enslint rewrite of {target.file}>"}
    traced_original = graphs.trace(original, pair.method, files)
    if traced_original.problem:
        row.notes.append(f"fx cannot trace the original ({traced_original.problem})")
    original.to(device=options.device, dtype=dtype).eval()
    inputs = building.make_inputs(pair.shapes, dtype, options.device)
    call = lambda model, *xs: getattr(model, pair.method)(*xs)  # noqa: E731
    with full_precision():
        reference = None
        if dtype != torch.float64:  # judged against the original run in float64
            exact = copy.deepcopy(original).to(torch.float64)
            reference = run_step(exact, call, [x.to(torch.float64) for x in inputs])
            del exact
        original_step = run_step(original, call, inputs)

    for candidate in target.candidates:
        trial = Trial(candidate.form, candidate.safety)
        row.trials.append(trial)
        rewritten = pair.rewrite(candidate.source)
        traced_rewrite = graphs.trace(rewritten, pair.method, files)
        trial.calls_original, trial.calls_rewrite = traced_original.calls, traced_rewrite.calls
        trial.traced = {
            (True, True): "both",
            (True, False): "original only",
            (False, True): "rewrite only",
            (False, False): "neither",
        }[(not traced_original.problem, not traced_rewrite.problem)]
        if traced_rewrite.problem:
            trial.notes.append(f"fx cannot trace the rewrite ({traced_rewrite.problem})")
        # Compared in eval mode, where dropout is off and both compute one function.
        rewritten.to(device=options.device, dtype=dtype).eval()
        # Where fx cannot trace either one, the torch calls of one eager forward of each
        # stand in for the graphs (counted the same way on both sides, so comparable).
        if traced_original.calls is None or traced_rewrite.calls is None:
            trial.calls_original = graphs.eager_calls(original, pair.method, inputs)
            trial.calls_rewrite = graphs.eager_calls(rewritten, pair.method, inputs)
            trial.eager_counted = True
        with full_precision():
            result = compare(original_step, run_step(rewritten, call, inputs), rewritten, dtype, reference)
        trial.max_abs_error, trial.decided_by = result.max_abs_error, result.rule
        trial.status = EQUIVALENT if result.equivalent else MISMATCH
        if not result.equivalent:
            trial.notes += result.problems[:5]
            continue
        rewritten.train()
        if row.step_original_ms is None:
            original.train()
            timed = timing.measure(
                getattr(original, pair.method), list(original.parameters()), inputs, options.min_time, options.device
            )
            row.forward_original_ms, row.step_original_ms, row.step_original_iqr_ms = (
                timed.forward_ms,
                timed.step_ms,
                timed.step_iqr_ms,
            )
        timed = timing.measure(
            getattr(rewritten, pair.method), list(rewritten.parameters()), inputs, options.min_time, options.device
        )
        trial.forward_rewrite_ms, trial.step_rewrite_ms, trial.step_rewrite_iqr_ms = (
            timed.forward_ms,
            timed.step_ms,
            timed.step_iqr_ms,
        )
        if options.compile:
            if row.compiled_step_ms is None and not any("torch.compile of the original" in n for n in row.notes):
                _compile(row, None, original, pair.method, inputs, options)
            _compile(row, trial, rewritten, pair.method, inputs, options)
        del rewritten

    first = row.trials[0]
    row.status = MISMATCH if any(t.status == MISMATCH for t in row.trials) else first.status
    row.notes += [note if trial is first else f"{trial.form}: {note}" for trial in row.trials for note in trial.notes]
    choice = recommend(row)
    row.recommendation, row.recommended_compiled = choice.recommendation, choice.compiled
    return row


def _compile(
    row: Row, trial: Trial | None, model: torch.nn.Module, method: str, inputs: list[torch.Tensor], options: Options
) -> None:
    """Time the compiled original (trial None) or the compiled candidate."""
    side = "original" if trial is None else "rewrite"
    try:
        seconds, compiled = timing.compile_and_measure(
            getattr(model, method), list(model.parameters()), inputs, options.min_time, options.device
        )
    except Exception as error:  # noqa: BLE001 - compile trouble is a note, not a failure
        first_line = shorten(str(error).splitlines()[0], 120) if str(error) else ""
        (row.notes if trial is None else trial.notes).append(
            f"torch.compile of the {side} failed: {type(error).__name__}: {first_line}"
        )
        return
    if trial is None:
        row.compile_s, row.compiled_step_ms, row.compiled_step_iqr_ms = seconds, compiled.step_ms, compiled.step_iqr_ms
    else:
        trial.compile_rewrite_s = seconds
        trial.compiled_rewrite_step_ms, trial.compiled_rewrite_step_iqr_ms = compiled.step_ms, compiled.step_iqr_ms


def _with_torch_warnings(target: Target, config: Config, options: Options) -> Row:
    """verify_one, with what torch warned about on the way kept as notes (a vmap batching
    rule that falls back to a slow loop, say): they explain the timings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row = verify_one(target, config, options)
    seen = dict.fromkeys(str(w.message).split(". ")[0] for w in caught if "NumPy" not in str(w.message))
    row.notes += [f"torch warned: {message}" for message in seen]
    return row


def run(targets: list[Target], config: Config, options: Options, progress: Callable[[str], None]) -> list[Row]:
    """A row per target. Each class is imported and run in a worker process (one at a
    time, the same process while none fails), so that a module that hangs, exits or
    crashes at import costs its own row (`error: ...` with the reason) and no other; and
    whatever the user's code prints goes to standard error, never into the report."""

    def started(index: int) -> None:
        target = targets[index]
        progress(f"enslint verify [{index + 1}/{len(targets)}] {target.display} on {options.device} ({options.dtype})")

    def died(item: tuple[Target, Config, Options], reason: str) -> Row:
        target = item[0]
        if reason.startswith("stopped after"):
            why = f"{reason} (--timeout): it did not finish importing or running"
        else:
            why = f"its process {reason} while importing or running the class"
        return _failed(target, options, f"error: {why}")

    items = [(target, config, options) for target in targets]
    if in_process():
        rows = []
        for index, item in enumerate(items):
            started(index)
            rows.append(_verify_item(item))
        return rows
    # A fresh interpreter, never a fork: a fork copies torch's thread pools as they are,
    # and once this process has run a parallel op (a caller's, or an earlier test's) or
    # started CUDA, a forked child that runs one waits forever on threads it does not
    # have. No thread count tells a started pool from torch's own; the interpreter costs
    # about a second per run, once, as the worker is kept for the next class.
    return isolated_map(_verify_item, items, 1, died, time_limit=options.time_limit, fork=False, started=started)


def _verify_item(item: tuple[Target, Config, Options]) -> Row:
    """One class's row, in a worker: module level, so a fresh interpreter can run it."""
    target, config, options = item
    with _prints_to_stderr():
        return _verified(target, config, options)


@contextlib.contextmanager
def _prints_to_stderr() -> Iterator[None]:
    """The user's prints (Python's and native code's) to standard error, for the call."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _verified(target: Target, config: Config, options: Options) -> Row:
    """The target's row, whatever goes wrong in the user's code."""
    try:
        row = _with_torch_warnings(target, config, options)
    except building.NeedsConfig as error:
        row = _failed(target, options, f"error: {error}")
        row.notes.append("needs config")
        row.config_table = error.table
    except loading.ImportTimeError as error:
        row = _failed(target, options, f"error: {error}")
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        row = _failed(target, options, "error: out of memory")
    except Exception as error:  # noqa: BLE001 - one class's failure must not stop the others
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        row = _failed(target, options, f"error: {type(error).__name__}: {shorten(text, 200)}")
        if isinstance(error, ModuleNotFoundError) and error.name:
            row.status = f"error: {missing_dependency(error, target)}"
        if isinstance(error, TypeError) and "required positional argument" in text:
            # The method takes more inputs than were configured (or inferred).
            row.status = (
                f"error: {text}: add inputs = [[batch, ...], ...] with one shape per argument to "
                f'[tool.enslint.verify."{target.class_name}"] in pyproject.toml'
            )
            row.notes.append("needs config")
    except SystemExit as error:  # the user's code called sys.exit()
        row = _failed(target, options, f"error: the class's code called sys.exit({error.code!r})")
    return row


def _failed(target: Target, options: Options, status: str) -> Row:
    """The row of a class that could not be measured."""
    return Row(target.display, target.rules, device=options.device, dtype=options.dtype, status=status)


def missing_dependency(error: ModuleNotFoundError, target: Target) -> str:
    """A module the project imports is not installed here: the environment's problem, not
    the configuration's, said with the line of the project that imports it."""
    where = ""
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if "importlib" not in f.filename and not f.filename.startswith("<")]
    if own:
        frame = own[-1]
        try:
            shown = Path(frame.filename).resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            shown = Path(frame.filename)
        where = f" (imported at {shown.as_posix()}:{frame.lineno})"
    # Not "pip install NAME": a module's distribution is often named otherwise (cv2, sklearn).
    return (
        f"{target.class_name}'s code needs {error.name!r}, which is not installed in this environment{where}: "
        "install the project's own dependencies and run verify again; the configuration is not the problem"
    )


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


def advice(row: Row) -> str:
    """The recommendation as the tables print it."""
    return f"{row.recommendation}, compiled" if row.recommended_compiled else row.recommendation


def _compiled_speedups(row: Row) -> str:
    """`loop 1.22x, stacked weights 1.49x`: what torch.compile made of each side, as a
    speed-up over the eager loop; empty where nothing was compiled."""
    parts = []
    if row.compiled_step_ms is not None:
        parts.append(f"loop {_x(ratio(row.step_original_ms, row.compiled_step_ms))}")
    parts += [
        f"{trial.form} {_x(ratio(row.step_original_ms, trial.compiled_rewrite_step_ms))}"
        for trial in row.trials
        if trial.compiled_rewrite_step_ms is not None
    ]
    return ", ".join(parts)


def _speedup_cell(row: Row, trial: Trial) -> str:
    interval = speedup_interval(row, trial)
    if interval is None:
        return "-"
    number = lambda v: f"{v:.1f}" if v >= 10 else f"{v:.2f}"  # noqa: E731 - 15 columns at most
    return f"{number(row.speedup(trial))}x {number(interval[0])}-{number(interval[1])}"


def _rules(row: Row) -> str:
    codes = row.rule.split(",")
    return codes[0] + "".join(f",{c[-3:].lstrip('0') or '0'}" for c in codes[1:])  # ENS001,2


def _verdict(row: Row, trial: Trial | None) -> str:
    return trial.status if trial is not None else row.status


def _legend(rows: list[Row]) -> list[str]:
    lines = []
    tolerances = sorted({(r.dtype, r.rtol, r.atol) for r in rows if r.rtol is not None})
    lines += [
        f"equivalent in {d}: outputs and gradients within rtol={rt:g}, atol={at:g} x max(1, largest |value|)"
        for d, rt, at in tolerances
    ]
    if any(r.dtype != "float64" and r.rtol is not None for r in rows):
        lines.append("  and the rewrite's error against a float64 run at most twice the original's plus atol")
    return lines


def _fit(text: str, width: int) -> str:
    """`text` in `width` columns: a long `path::Class` keeps its end (the class)."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def terminal_table(rows: list[Row]) -> str:
    """At most 100 columns: per class and candidate, the training-step speed-up with the
    range its measurements' spread allows, the verdict, and the recommendation. Notes
    only where something failed; every figure and note is in --format markdown/json."""
    widths = (21, 10, 15, 15, 10)  # + the recommendation, "no clear difference" the longest: 100
    header = ("class", "rule", "rewrite", "fwd+bwd speed-up", "verdict", "recommendation")
    layout = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    lines = [layout.format(*header)]
    notes = []
    # Over a sweep a class has a row per batch size: the size goes beside its name.
    sweeping = len({row.target for row in rows}) < len(rows)
    for row in rows:
        suffix = f" @{row.batch}" if sweeping and row.batch is not None else ""
        name = _fit(row.target.rsplit("/", 1)[-1], widths[0] - len(suffix)) + suffix
        if row.trials:  # where its construction came from, when not from a table
            notes += [f"{row.target}: {note}" for note in row.notes if note.startswith("built as")]
        status = row.status if len(row.status) <= widths[4] else row.status.split(":")[0]
        if not row.trials:
            lines.append(layout.format(name, _rules(row), "-", "-", status, "").rstrip())
            notes += [
                f"{row.target}: {note}"
                for note in [row.status if status != row.status else "", *row.notes]
                if note and note != "needs config"
            ]
            if row.config_table:
                notes += ["", row.config_table, ""]
        for i, trial in enumerate(row.trials):
            first = i == 0
            lines.append(
                layout.format(
                    name if first else "",
                    _rules(row) if first else "",
                    _fit(trial.form, widths[2]),
                    _speedup_cell(row, trial),
                    trial.status,
                    row.recommendation if first else "",
                ).rstrip()
            )
            if trial.status != EQUIVALENT:
                notes += [f"{row.target} ({trial.form}): {note}" for note in trial.notes]
        compiled = _compiled_speedups(row)
        if compiled:
            lines.append(f"{'':<{widths[0]}}  torch.compile: {compiled}")
        if row.recommended_compiled:
            pad = " " * widths[0]
            lines.append(f"{pad}  recommended: {row.recommendation}, compiled (fastest under torch.compile)")
    lines += [""] + _legend(rows)
    if any(r.recommendation for r in rows):
        lines.append("speed-up: original / rewrite time of one training step (forward and backward), then its range")
        lines.append("  with each median moved by half its interquartile range")
        lines.append(f'recommendation: the fastest equivalent rewrite if faster beyond that spread; "{NO_CLEAR}"')
        lines.append(f'  when the ranges overlap, "{KEEP_LOOP}" when every rewrite is slower')
    if any(r.compiled_step_ms is not None for r in rows):
        lines.append("torch.compile: the eager loop's time over the compiled loop's and each compiled rewrite's;")
        lines.append("  the recommendation holds every rewrite, compiled or not, against the faster loop,")
        lines.append(f'  "{COMPILE_LOOP}" where none beats the compiled loop')
    lines += notes  # whole, never cut: the advice in them is copied into config files
    return "\n".join(lines).rstrip("\n")


def markdown_table(rows: list[Row], with_compile: bool) -> str:
    """Every figure, one line per candidate rewrite."""
    header = [
        "class",
        "rule",
        "rewrite",
        "E",
        "batch",
        "device",
        "dtype",
        "fx calls",
        "fwd ms",
        "fwd rewrite ms",
        "fwd speed-up",
        "fwd+bwd ms",
        "fwd+bwd rewrite ms",
        "fwd+bwd speed-up",
    ]
    if with_compile:
        header += ["compiled fwd+bwd ms", "compiled rewrite ms", "compile s"]
    header += ["max abs error", "decided by", "fx traced", "verdict", "recommendation"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes = []
    for row in rows:
        trials: Sequence[Trial | None] = row.trials or [None]
        for trial in trials:
            calls = "-"
            if trial is not None and trial.calls_original is not None:
                mark = "*" if trial.eager_counted else ""
                calls = f"{trial.calls_original} -> {trial.calls_rewrite}{mark}"
            cells = [
                row.target,
                row.rule,
                trial.form if trial else "-",
                "-" if row.members is None else str(row.members),
                "-" if row.batch is None else str(row.batch),
                row.device,
                row.dtype,
                calls,
                _ms(row.forward_original_ms),
                _ms(trial.forward_rewrite_ms if trial else None),
                _x(row.speedup(trial, step=False) if trial else None),
                _ms(row.step_original_ms),
                _ms(trial.step_rewrite_ms if trial else None),
                _speedup_cell(row, trial) if trial else "-",
            ]
            if with_compile:
                seconds = [t for t in (row.compile_s, trial.compile_rewrite_s if trial else None) if t is not None]
                cells += [
                    _ms(row.compiled_step_ms),
                    _ms(trial.compiled_rewrite_step_ms if trial else None),
                    " + ".join(f"{t:.1f}" for t in seconds) or "-",
                ]
            error = trial.max_abs_error if trial else None
            cells += [
                "-" if error is None else f"{error:.2e}",
                (trial.decided_by if trial else "") or "-",
                (trial.traced if trial else "") or "-",
                _verdict(row, trial),
                advice(row) if trial is row.preferred else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        notes += [f"{row.target}: {note}" for note in row.notes if note != "needs config"]
        if row.config_table:
            notes += ["", f"{row.target}: {row.status}", "", "```toml", row.config_table, "```"]
    lines += [""] + _legend(rows)
    if any(t.eager_counted for row in rows for t in row.trials):
        lines.append(
            "fx calls: call nodes of the torch.fx graphs; *: torch calls of one eager forward of each, "
            "where fx cannot trace one of them"
        )
    lines += notes
    return "\n".join(lines).rstrip("\n")


def apply_recommended(targets: list[Target], rows: list[Row]) -> list[str]:
    """Write each class's recommended candidate to its file, one transaction per class
    (the file is re-read, so several classes of one file each land); a line per class.
    Over a batch sweep, a class is rewritten only when every batch recommends the same."""
    lines = []
    for target in targets:
        mine = [row for row in rows if row.target == target.display]
        chosen = {row.recommendation for row in mine}
        if len(chosen) > 1:
            lines.append(
                f"{target.display}: not applied: the batch sizes recommend different things "
                f"({', '.join(sorted(chosen))})"
            )
            continue
        if chosen == {COMPILE_LOOP}:
            lines.append(f"{target.display}: not applied: torch.compile of the loop is as fast as any rewrite")
            continue
        candidate = next((c for c in target.candidates if mine and c.form == mine[0].recommendation), None)
        if candidate is None or any(row.status != EQUIVALENT for row in mine):
            continue
        assert target.job is not None, "a class with candidates carries the job that checked its file"
        outcome = fix_file(target.job, unsafe=True, choose=candidate.choose)
        if outcome.error is not None:
            lines.append(f"{target.display}: not applied: {outcome.error}")
            continue
        if not outcome.changed:
            continue
        try:
            for written in HelperModules().write_for(outcome.helpers):
                lines.append(written)
            write_atomically(outcome)
        except (OSError, HelperModuleError) as error:
            lines.append(f"{target.display}: not applied: {error}")
            continue
        lines.append(f"{target.display}: applied the {candidate.form} rewrite ({candidate.safety})")
    return lines


def sweep(
    targets: list[Target],
    config: Config,
    options: Options,
    batches: list[int | None],
    progress: Callable[[str], None],
) -> list[Row]:
    """`run` at each batch size, rows grouped by class (in the targets' order)."""
    from dataclasses import replace

    per_batch = [run(targets, config, replace(options, batch=batch), progress) for batch in batches]
    return [rows[i] for i in range(len(targets)) for rows in per_batch]


def progress_printer(stream: TextIO = sys.stderr) -> Callable[[str], None]:
    def show(text: str) -> None:
        print(text, file=stream, flush=True)

    return show
