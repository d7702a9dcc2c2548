"""Watch every module call of the running program and keep what one loop over siblings did.

PyTorch's global module hooks see each call. A call matters only when the module is a
member of a collection (a child of an `nn.ModuleList` or `nn.ModuleDict`, an element of a
list attribute, one of `q0`, `q1`, ... registered one by one); every other call costs a
dictionary lookup. For a member call the recorder notes the line of the user's code that
made it (the first frame outside torch and enslint), what it received, and how long its
forward took; its backward is timed on the autograd nodes the call created, found from its
outputs down to the nodes that existed before it (by the nodes' sequence numbers).

Calls of members of one collection from one line of one running frame form one run of a
loop (`Occurrence`), judged as it ends (occurrences.py); `groups.py` turns each site's
verdicts into a group or a rejection. Which collection a module belongs to is tree.py's.
Nothing here changes a value the program computes: the hooks return nothing and register
only timing hooks on autograd nodes.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import torch
from torch import nn
from torch.compiler import is_compiling
from torch.optim.optimizer import register_optimizer_step_post_hook

from enslint.profiling.frames import user_frame
from enslint.profiling.occurrences import SAME, SLICES, MemberCall, Occurrence, seen, tensors_in, verdict
from enslint.profiling.tree import MemberPlaces

now = time.perf_counter


@dataclass
class Site:
    """Everything seen at one (collection, line): its loop runs' verdicts and their cost."""

    holder_class: str
    container: str
    collection: str
    path: str
    line: int
    qualname: str  # of the function that made the calls: "Ensemble.forward"
    current: Occurrence | None = None  # the run being recorded; the others are folded below
    calls: int = 0
    loops: int = 0  # runs that called two distinct members or more
    members: int = 0  # the most distinct members one run called
    kinds: set[str] = field(default_factory=set)  # SAME, SLICES
    reason: str | None = None  # the first run that was not an ensemble's, why
    signatures: set[tuple] = field(default_factory=set)
    first: MemberCall | None = None  # the first call of the first full run
    forward_s: float = 0.0
    backward_s: float = 0.0
    # What it had spent and called at the first and the last optimizer step.
    at_first_step: tuple[float, int] | None = None
    at_last_step: tuple[float, int] | None = None
    owner: Site | None = None  # the whole calls of the method that holds the loop

    def close(self) -> None:
        """Judge the run being recorded and keep only its verdict."""
        run, self.current = self.current, None
        if run is None or len({c.member for c in run.calls}) < 2:
            return  # one member picked by index: not a loop over them
        self.loops += 1
        self.members = max(self.members, len({c.member for c in run.calls}))
        self.signatures |= {c.signature for c in run.calls}
        if self.first is None:
            self.first = run.calls[0]
        found = verdict(run.calls)
        if found in (SAME, SLICES):
            self.kinds.add(found)
        elif self.reason is None:
            self.reason = found


@dataclass
class StepClock:
    """The training steps, timed by one optimizer's `step()`: the share of a step is the
    time between its first and last step, where start-up and data loading are not."""

    optimizer: int = 0  # id of the optimizer whose steps are counted
    steps: int = 0
    first: tuple[float, float] | None = None  # (time, hooks' time) at the first step
    last: tuple[float, float] | None = None

    @property
    def span_s(self) -> float | None:
        """Time between the first and the last step, the hooks' own taken out."""
        if self.first is None or self.last is None or self.steps < 2:
            return None
        return (self.last[0] - self.first[0]) - (self.last[1] - self.first[1])


def put_back(cls: type, name: str, own: Any) -> None:
    """Undo a class-level wrap: the class's own method again, or the inherited one."""
    if own is None:
        delattr(cls, name)
    else:
        setattr(cls, name, own)


def like_original(wrapper: Any, original: Any) -> Any:
    """`wrapper` as seen by code that reads `original`: its name, source (`__wrapped__`)
    and globals, so that TorchScript compiles the original's source against the names of
    the original's module. The wrapper must therefore reach everything it uses through
    its closure (or builtins), never through a global of this module."""
    function = types.FunctionType(
        wrapper.__code__,
        getattr(original, "__globals__", wrapper.__globals__),
        original.__name__,
        None,
        wrapper.__closure__,
    )
    return functools.update_wrapper(function, original)


class Recorder:
    """Install with `with recorder:`; read `sites` and `hooks_s` after."""

    def __init__(
        self,
        on_first_loop_call: Callable[[FrameType, nn.Module], None] | None = None,
        on_call: Callable[[nn.Module, tuple], None] | None = None,
    ) -> None:
        """`on_call(module, args)`: every module call, before the recorder's own work (one
        global hook serves both: each costs every module call of the program)."""
        self.sites: dict[tuple, Site] = {}
        self.hooks_s = 0.0  # the recorder's own time: taken out of every figure
        self._places = MemberPlaces(self._watch_forward)
        self._signatures: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, str]] = weakref.WeakKeyDictionary()
        self._stack: list[nn.Module] = []
        self._open: list[tuple[float, float, Site | None, MemberCall | None]] = []
        self._probe = torch.zeros((), requires_grad=True)
        self._handles: list[Any] = []
        self._on_first_loop_call = on_first_loop_call
        self._on_call = on_call
        # Methods wrapped at class level, with what to put back: member classes' `forward`
        # (the seed's members are called as `head.forward(x)`, which no module hook sees)
        # and the methods that hold a loop, when they are not `forward`.
        self._wrapped: dict[tuple[type, str], Any] = {}
        self.clock = StepClock()
        self._thread = threading.get_ident()
        # The methods that hold a loop, per instance: timed whole, as verify times a class.
        self._owner_calls: weakref.WeakKeyDictionary[nn.Module, dict[str, Site]] = weakref.WeakKeyDictionary()

    def __enter__(self) -> Recorder:
        hooks = nn.modules.module
        self._handles = [
            hooks.register_module_forward_pre_hook(self._before),
            hooks.register_module_forward_hook(self._after, always_call=True),
            hooks.register_module_module_registration_hook(self._registered),
            register_optimizer_step_post_hook(self._stepped),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        for (cls, name), own in self._wrapped.items():
            put_back(cls, name, own)
        self._wrapped = {}
        self._handles = []

    def _stepped(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if is_compiling():
            return
        entered = now()
        clock = self.clock
        if clock.steps == 0:
            clock.optimizer = id(optimizer)
        if id(optimizer) == clock.optimizer:
            clock.steps += 1
            clock.last = (entered, self.hooks_s)
            if clock.first is None:
                clock.first = clock.last
            owners = [site for owned in self._owner_calls.values() for site in owned.values()]
            for site in [*self.sites.values(), *owners]:
                spent = (site.forward_s + site.backward_s, site.calls)
                site.at_last_step = spent
                if site.at_first_step is None:
                    site.at_first_step = spent
        self.hooks_s += now() - entered

    def _registered(self, module: nn.Module, name: str, submodule: nn.Module) -> None:
        entered = now()
        self._places.registered(module, name, submodule)
        self.hooks_s += now() - entered

    def _watch_forward(self, cls: type) -> None:
        """Route a direct `member.forward(x)` through the same two hooks as a call."""
        self._wrap(cls, "forward", None)

    def _wrap(self, cls: type, name: str, owner_of: Callable[[nn.Module], Site | None] | None) -> None:
        """Time calls of `cls.name` as the hooks time module calls: with `owner_of`, the
        calls on the instances it gives a site for (a method that holds a loop); without,
        a member's `forward` when it is called directly, not through `__call__`."""
        if not self._handles or (cls, name) in self._wrapped:
            return
        self._wrapped[(cls, name)] = cls.__dict__.get(name)
        original = getattr(cls, name)
        recorder = self

        def method(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
            owner = None
            if not recorder._handles:
                timed = False
            elif owner_of is None:  # not through __call__, whose hooks saw it already
                timed = not (recorder._stack and recorder._stack[-1] is module)
            else:  # on an instance whose loop is timed
                owner = owner_of(module)
                timed = owner is not None
            if not timed:
                return original(module, *args, **kwargs)
            recorder._before(module, args, owner)
            output = None
            try:
                output = original(module, *args, **kwargs)
                return output
            finally:
                recorder._after(module, args, output)

        setattr(cls, name, like_original(method, original))

    def _signature(self, module: nn.Module) -> tuple[tuple, str]:
        known = self._signatures.get(module)
        if known is None:
            cls = type(module)
            known = (
                (
                    f"{cls.__module__}.{cls.__qualname__}",
                    tuple((n, tuple(p.shape), str(p.dtype)) for n, p in module.named_parameters()),
                    tuple((n, tuple(b.shape), str(b.dtype)) for n, b in module.named_buffers()),
                ),
                cls.__name__,
            )
            self._signatures[module] = known
        return known

    # -- the hooks --------------------------------------------------------------------
    def _before(self, module: nn.Module, args: tuple, owner: Site | None = None) -> None:
        """`owner`: the call is of the method that holds a loop (timed whole, for the
        share of the class that verify's speed-up applies to)."""
        # While torch.compile traces, nothing runs: what it compiles is no Python loop any
        # more, and dynamo must not trace the recorder. One call stack: the main thread's.
        if is_compiling() or threading.get_ident() != self._thread:
            return
        if self._on_call is not None and owner is None:
            self._on_call(module, args)  # outside the recorder's time: it keeps its own
        entered = now()
        if module not in self._places.walked:
            self._places.walk_for(module, self._stack, sys._getframe(1))
        self._stack.append(module)
        site, call = self._member_call(module, args) if owner is None else (None, None)
        if site is None:  # not a member: maybe the forward of a class whose loop is timed whole
            owner = owner or self._owner_calls.get(module, {}).get("forward")
            if owner is not None:
                site, call = self._owner_call(owner, args)
        self._sync(call)
        self.hooks_s += now() - entered
        self._open.append((now(), self.hooks_s, site, call))

    def _after(self, module: nn.Module, args: tuple, output: Any) -> None:
        if is_compiling() or threading.get_ident() != self._thread:
            return
        self._sync(self._open[-1][3] if self._open else None)
        entered = now()
        if not self._stack or self._stack[-1] is not module:
            self.hooks_s += now() - entered
            return  # a call that began before the hooks were installed
        self._stack.pop()
        started, hooks_then, site, call = self._open.pop()
        if site is not None and call is not None:
            site.forward_s += (entered - started) - (self.hooks_s - hooks_then)
            outputs = tensors_in(output if isinstance(output, tuple | list) else (output,))
            call.outputs = [t.data_ptr() for t in outputs]
            if torch.is_grad_enabled():
                call.last_node = self._sequence_number()
                self._time_backward(outputs, site, call)
        self.hooks_s += now() - entered

    def _member_call(self, module: nn.Module, args: tuple) -> tuple[Site | None, MemberCall | None]:
        place = self._places.place_of(module)
        holder = place.holder() if place is not None else None
        if place is None or holder is None:
            return None, None
        frame = user_frame(sys._getframe(2))
        if frame is None:
            return None, None
        key = (id(holder), place.collection, frame.f_code.co_filename, frame.f_lineno)
        site = self.sites.get(key)
        if site is None:
            site = Site(
                type(holder).__name__,
                place.container,
                place.collection,
                os.path.abspath(frame.f_code.co_filename),
                frame.f_lineno,
                frame.f_code.co_qualname,
            )
            self.sites[key] = site
            if self.clock.steps:
                site.at_first_step = (0.0, 0)  # it had spent nothing at the first step
            self._time_owner(frame, site)
            if self._on_first_loop_call is not None:
                self._on_first_loop_call(frame, holder)
        signature, member_class = self._signature(module)
        tensors = tensors_in(args)
        call = MemberCall(id(module), signature, member_class, [seen(t) for t in tensors])
        call.cuda = any(t.is_cuda for t in tensors)
        last = site.current
        if last is None or last.frame != id(frame) or any(c.member == call.member for c in last.calls):
            site.close()
            last = site.current = Occurrence(id(frame))
        last.calls.append(call)
        site.calls += 1
        if torch.is_grad_enabled():
            previous = last.calls[-2].last_node if len(last.calls) > 1 else None
            call.first_node = previous + 1 if previous is not None else self._sequence_number()
        return site, call

    def _owner_call(self, owner: Site, args: tuple) -> tuple[Site, MemberCall]:
        tensors = tensors_in(args)
        call = MemberCall(0, (), "", [], cuda=any(t.is_cuda for t in tensors))
        if torch.is_grad_enabled():
            call.first_node = self._sequence_number()
        owner.calls += 1
        return owner, call

    def _time_owner(self, frame: FrameType, site: Site) -> None:
        """Time, from its next call on, the method whose loop `site` is: the class's own
        share of a step, which verify's speed-up of the class applies to."""
        method: FrameType | None = frame
        while method is not None and method.f_code.co_name.startswith("<"):
            method = user_frame(method.f_back)  # out of a comprehension
        code = method.f_code if method is not None else None
        instance = (
            method.f_locals.get(code.co_varnames[0]) if method is not None and code and code.co_argcount else None
        )
        if not isinstance(instance, nn.Module) or code is None:
            return
        name = code.co_name
        owned = self._owner_calls.setdefault(instance, {})
        if name not in owned:
            owned[name] = Site(type(instance).__name__, "", "", site.path, 0, f"{type(instance).__name__}.{name}")
            if self.clock.steps:
                owned[name].at_first_step = (0.0, 0)
            if name != "forward":
                self._wrap(type(instance), name, lambda module: self._owner_calls.get(module, {}).get(name))
        site.owner = owned[name]

    def _sequence_number(self) -> int:
        """A fresh autograd node's sequence number: every node made after it is higher."""
        return self._probe.view(()).grad_fn._sequence_nr()  # type: ignore[union-attr]

    def _sync(self, call: MemberCall | None) -> None:
        if call is not None and call.cuda:
            torch.cuda.synchronize()

    def _time_backward(self, outputs: list[torch.Tensor], site: Site, call: MemberCall) -> None:
        """Time each autograd node the call created, when backward runs it."""
        first = call.first_node
        cuda = call.cuda or any(t.is_cuda for t in outputs)
        todo = [t.grad_fn for t in outputs if t.grad_fn is not None]
        visited: set[int] = set()
        while todo:
            node = todo.pop()
            if node is None or id(node) in visited:
                continue
            visited.add(id(node))
            if node._sequence_nr() < first or type(node).__name__ == "AccumulateGrad":
                continue  # made before the call, or a parameter's gradient sink
            self._timed(node, site, cuda)
            todo.extend(next_node for next_node, _ in node.next_functions if next_node is not None)

    def _timed(self, node: Any, site: Site, cuda: bool) -> None:
        started = [0.0]

        def before(grad_outputs: Any) -> None:
            entered = now()
            if cuda:
                torch.cuda.synchronize()
            started[0] = now()
            self.hooks_s += started[0] - entered

        def after(grad_inputs: Any, grad_outputs: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            entered = now()
            site.backward_s += entered - started[0]
            self.hooks_s += now() - entered

        node.register_prehook(before)
        node.register_hook(after)
