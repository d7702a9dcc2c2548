"""Build the original module and its rewrite, with the same weights, and their inputs.

The original class is imported from its file; each rewritten class is executed from a
rewritten source held in memory (nothing is written to disk), under the same file name
so that its relative lookups behave the same. Both are built with the same seed; the
rewrite then loads the original's state_dict through its checkpoint migration hook,
which is exactly what a user's old checkpoint goes through.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import inspect
import linecache
import pickle
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import torch

from enslint.config import Config, VerifySpec
from enslint.verify import questions
from enslint.verify.targets import Target

_serial = count()


class SetupError(Exception):
    """The class cannot be built or called as configured: one line for the user."""


class NeedsConfig(SetupError):
    """Keys must be added to [tool.enslint.verify."Class"]; `table` is ready to paste."""

    def __init__(self, message: str, table: str = "") -> None:
        super().__init__(message)
        self.table = table


@dataclass
class Pair:
    """The original, built; `rewrite(source)` builds a candidate with the same weights."""

    original: torch.nn.Module
    method: str
    shapes: list[tuple[int, ...]]
    spec_name: str  # the config name it was built from, or "defaults"
    target: Target
    kwargs: Callable[[], dict]  # the constructor's arguments, evaluated afresh per call
    seed: int

    def rewrite(self, source: str) -> torch.nn.Module:
        cls = load_rewrite(self.target, source)
        torch.manual_seed(self.seed)
        # Arguments of its own: modules passed in ("=expr") must not be shared with the
        # original, whose state the rewrite's constructor could otherwise change.
        rewritten = cls(**self.kwargs())
        load_rewrite_weights(self.original, rewritten)
        return rewritten


@contextlib.contextmanager
def _importable_from(folder: Path) -> Iterator[None]:
    """`folder` on sys.path while the file runs, so its imports resolve."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))


def package_of(file: Path) -> tuple[str | None, Path]:
    """(the dotted package `file` belongs to, the folder its top package sits in): the
    folders above it that hold an `__init__.py`. (None, its own folder) outside a package."""
    folder = file.resolve().parent
    parts: list[str] = []
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        parts.insert(0, folder.name)
        folder = folder.parent
    return (".".join(parts) or None), (folder if parts else file.resolve().parent)


def _execute(name: str, file: Path, source: str | None, package: str | None = None) -> types.ModuleType:
    """Run `file` (or `source` in its place) as a fresh module called `name`; with
    `package`, as a module of that package, so that its relative imports resolve."""
    if source is None:
        spec = importlib.util.spec_from_file_location(name, file)
        assert spec is not None and spec.loader is not None, "a Python file has a source loader"
        loader = spec.loader
        module = importlib.util.module_from_spec(spec)
    else:
        module = types.ModuleType(name)
        module.__file__ = str(file)
    if package is not None:
        module.__package__ = package
    sys.modules[name] = module  # dataclasses and pickling look their module up
    root = package_of(file)[1]
    try:
        with _importable_from(root), _importable_from(file.resolve().parent):
            if source is None:
                loader.exec_module(module)
            else:
                # Tracebacks and torch.fx's messages read the rewrite's own lines.
                shown = f"<enslint rewrite of {file}>"
                linecache.cache[shown] = (len(source), None, source.splitlines(keepends=True), shown)
                exec(compile(source, shown, "exec"), module.__dict__)  # noqa: S102 - the user's own code, rewritten
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_original(target: Target) -> type:
    """The original class. A file of a package runs as that package's module (`from .mlp
    import MLP` works)."""
    package, root = package_of(target.file)
    module_name = target.module_name or (f"{package}.{target.file.stem}" if package else None)
    if module_name:
        with _importable_from(root):
            module = importlib.import_module(module_name)
    else:
        module = _execute(f"enslint_verify_original_{next(_serial)}_{target.file.stem}", target.file, None)
    return _module_class(module, target)


def load_rewrite(target: Target, source: str) -> type:
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
    return _module_class(_execute(name, target.file, source, package), target)


def _module_class(module: types.ModuleType, target: Target) -> type:
    found = getattr(module, target.class_name, None)
    if not isinstance(found, type) or not issubclass(found, torch.nn.Module):
        raise SetupError(f"{target.class_name} is not an nn.Module class")
    return found


def spec_for(target: Target, config: Config) -> tuple[str, VerifySpec]:
    """The table for the class; else the construction a profiled run captured."""
    table = config.verify_table(target.names())
    if table is not None:
        return table
    captured = config.verify.get(captured_name(target.file, target.class_name))
    if captured is not None and captured.captured:
        return captured.captured, captured
    return "defaults", VerifySpec()


def captured_name(file: Path, class_name: str) -> str:
    """The key a captured construction is kept under in `Config.verify`."""
    return f"captured:{file.resolve().as_posix()}::{class_name}"


def _captured_kwargs(spec: VerifySpec, target: Target) -> dict:
    """The captured arguments afresh: a deep copy, or the pickle loaded again (with the
    file's folders importable, as the program had them)."""
    if spec.init_pickle is None:
        return copy.deepcopy(spec.init or {})
    root = package_of(target.file)[1]
    try:
        with _importable_from(root), _importable_from(target.file.resolve().parent):
            return pickle.loads(Path(spec.init_pickle).read_bytes())  # noqa: S301 - the user's own run wrote it
    except Exception as error:  # noqa: BLE001
        raise SetupError(f"the captured arguments cannot be loaded: {type(error).__name__}: {error}") from None


def init_kwargs(spec: VerifySpec) -> dict:
    kwargs = {}
    for key, value in (spec.init or {}).items():
        # "=expr": a Python expression, for arguments TOML cannot spell (a module, a config).
        if isinstance(value, str) and value.startswith("="):
            try:
                value = eval(value[1:], {"torch": torch, "nn": torch.nn})  # noqa: S307 - the user's own config
            except Exception as error:  # noqa: BLE001
                raise SetupError(
                    f"init.{key}: cannot evaluate {value[1:]!r}: {type(error).__name__}: {error}"
                ) from None
        kwargs[key] = value
    return kwargs


def _inferred_shapes(model: torch.nn.Module, method: str) -> list[tuple[int, ...]] | None:
    """The inputs when unambiguous: one tensor argument, and a first layer that is an
    nn.Linear, so a 2-D input (batch, in_features); None otherwise."""
    parameters = [
        p
        for p in inspect.signature(getattr(model, method)).parameters.values()
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    first = next((m for m in model.modules() if m is not model and not list(m.children())), None)
    if len(parameters) == 1 and isinstance(first, torch.nn.Linear):
        return [(32, first.in_features)]
    return None


def _ask(cls: type, target: Target, method: str, spec: VerifySpec, ask_init: bool, ask_inputs: bool) -> None:
    """Raise NeedsConfig naming every key still missing, if any is."""
    found = questions.ask(cls, target.class_name, method, spec.init, ask_init, ask_inputs)
    if found:
        raise NeedsConfig(found.summary(), found.table())


def build(target: Target, config: Config, batch: int | None, seed: int = 0) -> Pair:
    """The original on the CPU in float32, with what it takes to build a rewrite of it."""
    spec_name, spec = spec_for(target, config)
    original_cls = load_original(target)
    kwargs = (lambda: _captured_kwargs(spec, target)) if spec.captured else (lambda: init_kwargs(spec))  # noqa: E731
    method = spec.method or target.method or "forward"
    if not callable(getattr(original_cls, method, None)):
        raise NeedsConfig(
            f'{target.class_name} has no method {method!r}: add method = "..." to '
            f'[tool.enslint.verify."{target.class_name}"] in pyproject.toml'
        )
    # Every key that is missing, in one question: the inputs cannot be inferred before the
    # class is built, so while init is missing they are asked for too.
    if not spec.captured and questions.required_init(original_cls, spec.init):
        _ask(original_cls, target, method, spec, ask_init=True, ask_inputs=spec.inputs is None)
    torch.manual_seed(seed)
    arguments = kwargs()
    try:
        original = original_cls(**arguments)
    except TypeError as error:
        raise SetupError(f"{target.class_name}({', '.join(arguments)}): {error}") from None
    shapes = list(spec.inputs) if spec.inputs is not None else _inferred_shapes(original, method)
    if shapes is None:
        _ask(original_cls, target, method, spec, ask_init=False, ask_inputs=True)
    assert shapes is not None, "_ask always raises when it asks for the inputs"
    if batch is not None:
        shapes = [(batch, *shape[1:]) for shape in shapes]
    return Pair(original, method, shapes, spec_name, target, kwargs, seed)


def load_rewrite_weights(original: torch.nn.Module, rewritten: torch.nn.Module) -> None:
    """The original's state_dict into the rewrite, through its migration hook; every key
    must land (strict), as it would for a user's old checkpoint."""
    state = original.state_dict()
    floating = next((t for t in state.values() if t.is_floating_point()), None)
    if floating is not None:
        # A lazy layer takes the loaded values at its own dtype: match the original's first.
        rewritten.to(floating.dtype)
    rewritten.load_state_dict(state, strict=True)


def make_inputs(shapes: list[tuple[int, ...]], dtype: torch.dtype, device: str, seed: int = 1) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator).to(device=device, dtype=dtype) for shape in shapes]
