"""What to verify: the classes `enslint check` flags, or the ones named on the command line.

A target is `path/to/file.py::ClassName`, `package.module:ClassName`, or a path (a file
or a folder), which stands for every flagged class in it. Finding them runs the checker
(no import); each flagged class is paired with its findings and its candidates: the file
as each form of fix on offer for that class would rewrite it, held in memory. The first
candidate is what `--fix --unsafe-fixes` writes; then the vmap form where a more specific
fused form is preferred, and the safe fix (`unbind`, one shared call) where there is one.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from enslint.checking import FileJob
from enslint.config import Config, table_names
from enslint.discovery import discover
from enslint.engine.transaction import fix_file
from enslint.findings import Applicability, Diagnostic, Fix, Form
from enslint.runner import check_all, make_jobs

_MODULE_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_FLAGGED_METHOD = re.compile(r"^`\w+\.(\w+)`")


class TargetError(Exception):
    """A target that names nothing: one line for the user."""


@dataclass
class Candidate:
    """One way to rewrite a class: `choose` picks each of its findings' fix (the same
    choice on every pass of the fix engine), `source` is the file it gives."""

    form: str  # "stacked weights", "vmap", "unbind", ... (forms joined by " + ")
    safety: str
    source: str
    choose: Callable[[Diagnostic], Fix | None]


@dataclass
class Target:
    file: Path
    class_name: str
    display: str  # `path::Class` as the user reads it
    module_name: str | None = None  # set for `package.module:Class` targets
    findings: list[Diagnostic] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)  # preferred first
    job: FileJob | None = None  # how check read its file, for --apply

    @property
    def rewritten(self) -> str | None:
        """The file after --fix --unsafe-fixes (this class's findings); None: no rewrite."""
        return self.candidates[0].source if self.candidates else None

    @property
    def rules(self) -> str:
        return ",".join(sorted({d.code for d in self.findings})) or "-"

    @property
    def method(self) -> str | None:
        """The method its findings are in (`batched_forward`), the most flagged one first."""
        found = [m.group(1) for d in self.findings for m in [_FLAGGED_METHOD.match(d.message)] if m]
        return max(dict.fromkeys(found), key=found.count) if found else None

    def names(self) -> list[str]:
        """The names its config may be given under, most specific first."""
        module = [f"{self.module_name}:{self.class_name}"] if self.module_name else []
        return [*dict.fromkeys([*module, self.display, *table_names(self.file.as_posix(), self.class_name)])]


def _classes_at(source: str, file: Path) -> list[tuple[str, int, int]]:
    """(name, first line, last line) of every class, outermost first."""
    try:
        tree = ast.parse(source, filename=str(file))
    except SyntaxError as error:
        raise TargetError(f"{file}:{error.lineno or 1}: cannot parse: {error.msg}") from None
    return [
        (node.name, node.lineno, node.end_lineno or node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    ]


def _class_of(classes: list[tuple[str, int, int]], row: int) -> str | None:
    inside = [c for c in classes if c[1] <= row <= c[2]]
    return min(inside, key=lambda c: c[2] - c[1])[0] if inside else None


def module_file(module_name: str, search: list[str]) -> Path:
    """The file of `package.module` on the import path, found without importing it."""
    parts = module_name.split(".")
    for entry in search:
        base = Path(entry or ".").joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    raise TargetError(f"{module_name}: no such module on the import path")


def _flagged(file: Path, display_root: Path, config: Config, warnings: list[str]) -> dict[str, Target]:
    """Every class of `file` with a finding, each with its candidate rewrites."""
    # As `enslint check` reads it: within its project, other files read for the index.
    (job,), (outcome,) = check_all(make_jobs([file.resolve()], config, display_root, use_cache=False), workers=1)
    job = replace(job, path=_display(file, display_root))
    diagnostics = [replace(d, path=job.path) for d in outcome.diagnostics]
    warnings.extend(f"{d.path}: skipped: {d.message}" for d in diagnostics if d.code == "ENS000")
    diagnostics = [d for d in diagnostics if d.code != "ENS000"]
    if not diagnostics:
        return {}
    source = file.read_text(encoding="utf-8")
    classes = _classes_at(source, file)
    found: dict[str, Target] = {}
    for d in diagnostics:
        name = _class_of(classes, d.row)
        if name is None:
            continue
        target = found.setdefault(name, Target(file, name, f"{job.path}::{name}", job=job))
        target.findings.append(d)
    for target in found.values():
        target.candidates = candidates(target)
    return found


@dataclass(frozen=True)
class _Chooser:
    """Which fix of a finding in class `class_name` a candidate takes: `unsafe` (the
    preferred, fused rewrite), `vmap` (the vmap form where there is one) or `safe`. A
    class, not a closure, so a target can be sent to verify's worker process."""

    class_name: str
    kind: str

    def __call__(self, d: Diagnostic) -> Fix | None:
        # Findings name their place `Class.method`; fixing passes re-check the file, so a
        # finding's class is read from its message rather than from line numbers that move.
        if not d.message.startswith(f"`{self.class_name}."):
            return None
        if self.kind == "unsafe":
            return d.fix_for(True)
        if self.kind == "vmap":
            return d.fix_of_form(Form.VMAP) or d.fix_for(False)
        return d.fix_for(False)


def candidates(target: Target) -> list[Candidate]:
    """The distinct rewrites of `target`'s class on offer, preferred first."""
    choosers = [_Chooser(target.class_name, kind) for kind in ("unsafe", "vmap", "safe")]
    found: list[Candidate] = []
    for choose in choosers:
        chosen = [f for d in target.findings if (f := choose(d)) is not None]
        if not chosen:
            continue
        # Standalone: the helpers defined in the text, which runs from memory; `--fix`
        # imports the same definitions from the package's helper module instead.
        job = target.job
        assert job is not None, "a class with findings carries the job that checked its file"
        outcome = fix_file(replace(job, standalone=True), unsafe=True, choose=choose)
        if not outcome.changed or any(c.source == outcome.after for c in found):
            continue
        safety = (
            Applicability.UNSAFE if any(f.applicability == Applicability.UNSAFE for f in chosen) else Applicability.SAFE
        )
        # Named by its fused forms: a safe fix beside one is mostly taken over by it
        # (the nest's unbind fix is inside the grouped-heads rewrite).
        forms = list(dict.fromkeys(f.form for f in chosen if f.applicability == safety))
        found.append(Candidate(" + ".join(forms), safety, outcome.after, choose))
    return found


def _display(file: Path, root: Path) -> str:
    try:
        return file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return file.as_posix()


def collect(arguments: list[str], config: Config, cwd: Path, warnings: list[str] | None = None) -> list[Target]:
    """The targets, in the order given (a folder's files sorted); files that cannot be
    analysed are skipped with a line in `warnings`."""
    warnings = [] if warnings is None else warnings
    targets: list[Target] = []
    for argument in arguments or ["."]:
        if "::" in argument:
            path_text, class_name = argument.rsplit("::", 1)
            file = Path(path_text)
            if not file.is_file():
                raise TargetError(f"{path_text}: no such file")
            targets.append(_named(file, class_name, config, cwd, warnings))
        elif _MODULE_TARGET.match(argument) and not Path(argument).exists():
            module_name, class_name = argument.split(":")
            file = module_file(module_name, [str(cwd), *sys.path])
            target = _named(file, class_name, config, cwd, warnings)
            target.module_name = module_name
            target.display = argument
            targets.append(target)
        else:
            path = Path(argument)
            if not path.exists():
                hint = ""
                if re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+", argument) and not argument.endswith(".py"):
                    module, _, name = argument.rpartition(".")
                    hint = f" (a class of a module is named with a colon: `{module}:{name}`)"
                raise TargetError(f"{argument}: no such file or folder{hint}")
            for file in discover([path], config):
                targets.extend(_flagged(file, cwd, config, warnings).values())
    return targets


def _named(file: Path, class_name: str, config: Config, cwd: Path, warnings: list[str]) -> Target:
    source = file.read_text(encoding="utf-8")
    if not any(name == class_name for name, _, _ in _classes_at(source, file)):
        raise TargetError(f"{file}: no class named {class_name}")
    flagged = _flagged(file, cwd, config, warnings)
    if class_name in flagged:
        return flagged[class_name]
    return Target(file, class_name, f"{_display(file, cwd)}::{class_name}")
