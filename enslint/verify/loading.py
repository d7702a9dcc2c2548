"""Import the user's file, and its rewrite held in memory, as Python would import them.

The folders a file's absolute imports start from are the ones `enslint check`'s project
index resolves them from (analysis/project.py): above the file's top package, the
project's root and its `src/`. So a sub-project whose files import `layers.x` from its
own root verifies without the user setting PYTHONPATH.

A file that does work when imported (a training script that reads its data or parses
its arguments at module level) fails before its class can be built: the error names the
module-level line that failed, and `--definitions-only` loads only the file's imports,
definitions and constant assignments, each at its own line (the others are blanked, so
tracebacks still point at the user's lines).
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import linecache
import sys
import traceback
import types
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import TypeVar

import torch

from enslint.analysis.project import import_bases
from enslint.verify.targets import Target

_serial = count()
T = TypeVar("T")
DEFINITIONS_ONLY = "--definitions-only"


class SetupError(Exception):
    """The class cannot be built or called as configured: one line for the user."""


class ImportTimeError(SetupError):
    """The file's own module-level code failed while it was imported."""


@contextlib.contextmanager
def importable_from(folders: list[Path]) -> Iterator[None]:
    """`folders` at the front of sys.path, in order, while the file runs."""
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)


def package_of(file: Path) -> tuple[str | None, Path]:
    """(the dotted package `file` belongs to, the folder its top package sits in): the
    folders above it that hold an `__init__.py`. (None, its own folder) outside a package."""
    folder = file.resolve().parent
    parts: list[str] = []
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        parts.insert(0, folder.name)
        folder = folder.parent
    return (".".join(parts) or None), (folder if parts else file.resolve().parent)


def search_folders(target: Target) -> list[Path]:
    """Where the file's imports resolve from: its top package's folder, its own folder,
    then the bases the project index resolves absolute imports from."""
    project = target.job.project_root if target.job is not None else None
    file = target.file.resolve()
    bases = import_bases(file, Path(project) if project else None)
    return [f for f in dict.fromkeys([package_of(file)[1], file.parent, *bases]) if f.is_dir()]


def definitions_only(source: str, filename: str = "<file>") -> str:
    """`source` with every module-level statement blanked except imports, function and
    class definitions, constant assignments (`X = 3`, `NAMES = ("a", "b")`) and the
    `try`/`if` blocks that hold only those (an optional import, `if TYPE_CHECKING:`);
    the kept ones stay at their lines."""
    tree = ast.parse(source, filename)
    lines = source.splitlines(keepends=True)
    for node in tree.body:
        if _kept(node):
            continue
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        for index in range(first - 1, node.end_lineno or node.lineno):
            lines[index] = "\n"
    return "".join(lines)


def _kept(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        try:
            ast.literal_eval(node.value)
        except ValueError:
            return False
        return True
    if isinstance(node, ast.Try):
        return all(_kept(n) for n in [*node.body, *node.orelse, *node.finalbody]) and all(
            all(_kept(n) or isinstance(n, ast.Pass) for n in handler.body) for handler in node.handlers
        )
    if isinstance(node, ast.If):
        return all(_kept(n) for n in [*node.body, *node.orelse]) and "__main__" not in ast.unparse(node.test)
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)  # a docstring


def _execute(
    name: str, target: Target, source: str | None, package: str | None = None, only_definitions: bool = False
) -> types.ModuleType:
    """Run the target's file (or `source` in its place) as a fresh module called `name`;
    with `package`, as a module of that package, so that its relative imports resolve."""
    file = target.file
    shown = f"<enslint rewrite of {file}>"
    if source is None and only_definitions:
        source, shown = file.read_text(encoding="utf-8"), str(file)
    if source is None:
        spec = importlib.util.spec_from_file_location(name, file)
        assert spec is not None and spec.loader is not None, "a Python file has a source loader"
        loader = spec.loader
        module = importlib.util.module_from_spec(spec)
    else:
        if only_definitions:
            source = definitions_only(source, shown)
        # Tracebacks and torch.fx's messages read the rewrite's own lines.
        linecache.cache[shown] = (len(source), None, source.splitlines(keepends=True), shown)
        code = compile(source, shown, "exec")
        module = types.ModuleType(name)
        module.__file__ = str(file)
    if package is not None:
        module.__package__ = package
    sys.modules[name] = module  # dataclasses and pickling look their module up
    try:
        with importable_from(search_folders(target)):
            if source is None:
                _run_module_code(target, lambda: loader.exec_module(module))
            else:
                _run_module_code(target, lambda: exec(code, module.__dict__))  # noqa: S102 - the user's code
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _run_module_code(target: Target, run: Callable[[], T]) -> T:
    """Run a module's code; a failure of its own module-level code (not of an import it
    makes, nor a missing dependency) becomes an ImportTimeError naming the line."""
    try:
        return run()
    except (ModuleNotFoundError, SetupError, SystemExit, KeyboardInterrupt):
        raise
    except Exception as error:
        frame = _module_level_frame(error, search_folders(target))
        if frame is None:
            raise
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        own = Path(frame.filename).resolve() == target.file.resolve()
        where = f"line {frame.lineno}" if own else f"{_shown(Path(frame.filename))}:{frame.lineno}"
        # The option filters the flagged file, not the project's modules it imports.
        advice = f"; {DEFINITIONS_ONLY} loads only its imports, definitions and constant assignments" if own else ""
        raise ImportTimeError(
            f"importing {target.file.name} runs module-level code, which failed at {where} "
            f"(`{(frame.line or '').strip()}`): {type(error).__name__}: {text}{advice}"
        ) from None


def _module_level_frame(error: BaseException, folders: list[Path]) -> traceback.FrameSummary | None:
    """The innermost module-level frame of the project's own files that the error came
    through: the statement that failed, or the import that led to it."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.name == "<module>"
        and not frame.filename.startswith("<")
        and "site-packages" not in frame.filename
        and any(Path(frame.filename).resolve().is_relative_to(folder) for folder in folders)
    ]
    return frames[-1] if frames else None


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def load_original(target: Target, only_definitions: bool = False) -> type:
    """The original class. A file of a package runs as that package's module (`from .mlp
    import MLP` works)."""
    package, _ = package_of(target.file)
    module_name = target.module_name or (f"{package}.{target.file.stem}" if package else None)
    if module_name and not only_definitions:
        with importable_from(search_folders(target)):
            module = _run_module_code(target, lambda: importlib.import_module(module_name))
    else:
        name = module_name or f"enslint_verify_original_{next(_serial)}_{target.file.stem}"
        package = module_name.rpartition(".")[0] or None if module_name else None
        module = _execute(name, target, None, package, only_definitions)
    return _module_class(module, target)


def load_rewrite(target: Target, source: str, only_definitions: bool = False) -> type:
    """The class as `source` (the rewritten file) defines it, run beside the original
    under another name of the same package."""
    serial = next(_serial)
    package = package_of(target.file)[0]
    if target.module_name:
        package = target.module_name.rpartition(".")[0] or None
    name = (
        f"{package}._enslint_rewrite_{serial}_{target.file.stem}"
        if package
        else f"enslint_verify_rewrite_{serial}_{target.file.stem}"
    )
    return _module_class(_execute(name, target, source, package, only_definitions), target)


def _module_class(module: types.ModuleType, target: Target) -> type:
    found = getattr(module, target.class_name, None)
    if not isinstance(found, type) or not issubclass(found, torch.nn.Module):
        raise SetupError(f"{target.class_name} is not an nn.Module class")
    return found
