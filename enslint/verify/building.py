"""Build the original module and its rewrite, with the same weights, and their inputs.

The original class is imported from its file; each rewritten class is executed from a
rewritten source held in memory (nothing is written to disk), under the same file name
so that its relative lookups behave the same. Both are built with the same seed; the
rewrite then loads the original's state_dict through its checkpoint migration hook,
which is exactly what a user's old checkpoint goes through.
"""

from __future__ import annotations

import copy
import inspect
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from enslint.config import Config, VerifySpec
from enslint.verify import questions
from enslint.verify.loading import SetupError, importable_from, load_original, load_rewrite, search_folders
from enslint.verify.targets import Target

__all__ = ["NeedsConfig", "Pair", "SetupError", "build", "init_kwargs", "load_rewrite_weights", "make_inputs"]


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
    only_definitions: bool = False  # --definitions-only

    def rewrite(self, source: str) -> torch.nn.Module:
        cls = load_rewrite(self.target, source, self.only_definitions)
        torch.manual_seed(self.seed)
        # Arguments of its own: modules passed in ("=expr") must not be shared with the
        # original, whose state the rewrite's constructor could otherwise change.
        rewritten = cls(**self.kwargs())
        load_rewrite_weights(self.original, rewritten)
        return rewritten


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
    try:
        with importable_from(search_folders(target)):
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


def build(target: Target, config: Config, batch: int | None, seed: int = 0, only_definitions: bool = False) -> Pair:
    """The original on the CPU in float32, with what it takes to build a rewrite of it."""
    spec_name, spec = spec_for(target, config)
    original_cls = load_original(target, only_definitions)
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
    return Pair(original, method, shapes, spec_name, target, kwargs, seed, only_definitions)


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
