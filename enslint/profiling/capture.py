"""How the program builds and first calls each of its module classes, for `verify`.

While the program runs, `nn.Module.__init__` is wrapped: after it returns, the first
instance of each class of the program's own code (not torch's) has its constructor's
arguments read from the constructor's frame, as they stand when it calls
`super().__init__()`. They are kept as JSON where JSON holds them exactly, else as a
pickle taken at once (a config object, a tuple), else with the reason. The first forward
call of that instance gives the input shapes and dtypes; a loop in another method
(`predict`, a training step) gives that method's tensor arguments instead.

Nothing the program computes changes: the wrapper calls the original first and only reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import pickle
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import torch
from torch import nn

from enslint.profiles import Capture
from enslint.profiling.frames import user_frame
from enslint.profiling.occurrences import tensors_in
from enslint.profiling.recorder import like_original, now, put_back

_CO_VARARGS, _CO_VARKEYWORDS = inspect.CO_VARARGS, inspect.CO_VARKEYWORDS
_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


@dataclass
class Construction:
    path: str
    cls: str
    instance: weakref.ReferenceType[nn.Module]
    init: dict | None = None
    pickled: bytes | None = None
    init_problem: str | None = None
    inputs: list[list[int]] | None = None
    dtypes: list[str] | None = None
    method: str = "forward"
    inputs_problem: str | None = None
    called: bool = False

    def capture(self, pickle_name: str | None) -> Capture:
        return Capture(
            self.path,
            self.cls,
            self.init,
            pickle_name if self.pickled is not None else None,
            self.init_problem,
            self.inputs,
            self.dtypes,
            self.method,
            self.inputs_problem,
        )


def _exact_json(value: Any) -> bool:
    """Whether JSON gives `value` back as it is (a tuple would come back a list)."""
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return value == value and value not in (float("inf"), float("-inf"))
    if type(value) is list:
        return all(_exact_json(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _exact_json(v) for k, v in value.items())
    return False


class Constructions:
    """Install with `with constructions.installed():` and pass `called` and `loop_called`
    to the recorder; `hooks_s` is its own time."""

    def __init__(self) -> None:
        self.by_class: dict[type, Construction] = {}
        self.hooks_s = 0.0
        self._wrapped: list[tuple[type, str, Any]] = []  # methods wrapped until their next call

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = nn.Module.__init__

        def init(module: nn.Module, *args: Any, **kwargs: Any) -> None:
            original(module, *args, **kwargs)
            if type(module) not in self.by_class:
                entered = now()
                self._constructed(module)
                self.hooks_s += now() - entered

        nn.Module.__init__ = init  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            nn.Module.__init__ = original  # type: ignore[method-assign]
            for cls, name, own in list(self._wrapped):
                self._unwrap(cls, name, own)

    # -- construction -----------------------------------------------------------------
    def _constructed(self, module: nn.Module) -> None:
        cls = type(module)
        self.by_class[cls] = construction = Construction("", cls.__name__, weakref.ref(module))
        try:
            path = inspect.getsourcefile(cls)
        except (TypeError, OSError):
            path = None
        if path is None or os.path.abspath(path).startswith(_TORCH_DIR) or "<" in cls.__qualname__:
            construction.path = ""  # torch's own, or a class defined in a function
            return
        construction.path = os.path.abspath(path)
        frame = self._init_frame(module)
        arguments, problem = self._arguments(frame) if frame is not None else ({}, None)
        if problem is not None:
            construction.init_problem = problem
        elif _exact_json(arguments):
            construction.init = arguments
        else:
            try:
                construction.pickled = pickle.dumps(arguments, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as error:  # noqa: BLE001 - any object's pickling may fail its own way
                construction.init_problem = f"its arguments cannot be pickled ({type(error).__name__}: {error})"

    @staticmethod
    def _init_frame(module: nn.Module) -> FrameType | None:
        code = getattr(type(module).__init__, "__code__", None)
        frame = inspect.currentframe()
        for _ in range(64):
            if frame is None:
                return None
            if frame.f_code is code and code.co_varnames and frame.f_locals.get(code.co_varnames[0]) is module:
                return frame
            frame = frame.f_back
        return None

    @staticmethod
    def _arguments(frame: FrameType) -> tuple[dict, str | None]:
        code = frame.f_code
        named = code.co_argcount + code.co_kwonlyargcount
        local = frame.f_locals
        arguments = {name: local[name] for name in code.co_varnames[1:named] if name in local}
        extra = named
        if code.co_flags & _CO_VARARGS:
            if local.get(code.co_varnames[extra]):
                return {}, "its constructor was called with *args, which verify cannot pass by name"
            extra += 1
        if code.co_flags & _CO_VARKEYWORDS:
            arguments.update(local.get(code.co_varnames[extra], {}))
        return arguments, None

    # -- first call -------------------------------------------------------------------
    def called(self, module: nn.Module, args: tuple) -> None:
        """A module call (the recorder's hook passes each on, outside torch.compile's
        tracing): the first call of a captured instance gives its inputs."""
        construction = self.by_class.get(type(module))
        if construction is None or construction.called or construction.instance() is not module:
            return
        entered = now()
        construction.called = True
        self._inputs(construction, "forward", list(args))
        self.hooks_s += now() - entered

    def loop_called(self, frame: FrameType, holder: nn.Module) -> None:
        """A loop over members ran in `frame`: where its method is not `forward`, that
        method's tensor arguments at its next call are the class's inputs for verify (not
        its arguments now: the method may have rebound them before the loop)."""
        entered = now()
        method_frame: FrameType | None = frame
        while method_frame is not None and method_frame.f_code.co_name.startswith("<"):
            method_frame = user_frame(method_frame.f_back)  # out of a comprehension
        if method_frame is not None and method_frame.f_code.co_name != "forward":
            code = method_frame.f_code
            owner = method_frame.f_locals.get(code.co_varnames[0]) if code.co_argcount else None
            construction = self.by_class.get(type(owner)) if isinstance(owner, nn.Module) else None
            if construction is not None and construction.instance() is owner and construction.method == "forward":
                construction.method = code.co_name
                construction.inputs = construction.dtypes = None
                construction.inputs_problem = f"`{code.co_name}` ran once: its arguments on entry were not seen"
                self._watch_next_call(type(owner), code.co_name, construction)
        self.hooks_s += now() - entered

    def _watch_next_call(self, cls: type, name: str, construction: Construction) -> None:
        """Wrap `cls.name` until its next call on the captured instance, which it records."""
        own = cls.__dict__.get(name)
        original = getattr(cls, name)
        constructions, clock = self, now  # through the closure: see like_original

        def method(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
            if construction.instance() is module and construction.inputs is None:
                entered = clock()
                constructions._inputs(construction, name, list(args) + list(kwargs.values()))
                constructions._unwrap(cls, name, own)
                constructions.hooks_s += clock() - entered
            return original(module, *args, **kwargs)

        self._wrapped.append((cls, name, own))
        setattr(cls, name, like_original(method, original))

    def _unwrap(self, cls: type, name: str, own: Any) -> None:
        if (cls, name, own) not in self._wrapped:
            return
        self._wrapped.remove((cls, name, own))
        put_back(cls, name, own)

    @staticmethod
    def _inputs(construction: Construction, method: str, values: list[Any]) -> None:
        construction.method = method
        tensors = tensors_in(values)
        if len(tensors) != len(values) or not tensors:
            construction.inputs, construction.dtypes = None, None
            construction.inputs_problem = f"`{method}` takes arguments that are not tensors"
            return
        construction.inputs = [list(t.shape) for t in tensors]
        construction.dtypes = [str(t.dtype).removeprefix("torch.") for t in tensors]
        construction.inputs_problem = None

    def write(self, wanted: set[tuple[str, str]], folder: Any) -> list[Capture]:
        """The captures of the (path, class) pairs wanted, pickles written into `folder`."""
        captures = []
        for construction in self.by_class.values():
            if (construction.path, construction.cls) not in wanted:
                continue
            name = None
            if construction.pickled is not None:
                folder.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256(construction.path.encode()).hexdigest()[:8]
                name = f"{construction.cls}-{digest}.init.pickle"
                (folder / name).write_bytes(construction.pickled)
            captures.append(construction.capture(name))
        return captures
