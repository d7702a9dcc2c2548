"""Where each member sits in the program's module tree: which collection of which
holder. Filled as modules are registered (PyTorch's registration hook: a container's
children before any call, so that a member called only as `member.forward(x)` is
watched from the start) and by walking a tree from its top module when a module of it is
first called."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from torch import nn

from enslint.profiling.frames import user_frame

_CONTAINERS = (nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class Place:
    """Where a member sits: the module holding the collection, its name, the member's key."""

    holder: weakref.ReferenceType[nn.Module]
    collection: str
    key: str
    container: str = ""  # "nn.ModuleList", "nn.ModuleDict" when the members are in one


def _kind(container: nn.Module) -> str:
    return "nn.ModuleDict" if isinstance(container, nn.ModuleDict) else "nn.ModuleList"


def _caller_module(start: FrameType | None) -> nn.Module | None:
    """The module whose method (or a comprehension in it) made the call, if any."""
    frame = user_frame(start)
    for _ in range(3):
        if frame is None:
            return None
        code = frame.f_code
        if code.co_argcount and not code.co_name.startswith("<"):
            owner = frame.f_locals.get(code.co_varnames[0])
            return owner if isinstance(owner, nn.Module) else None
        frame = user_frame(frame.f_back)
    return None


class MemberPlaces:
    """`place_of(module)`; `walk_for(module, stack)` before a module's first call.
    `watch(cls)` is called for each class whose instances are members."""

    def __init__(self, watch: Callable[[type], None]) -> None:
        # Keyed by the modules themselves, weakly: an id is reused once its module dies.
        self._places: weakref.WeakKeyDictionary[nn.Module, Place] = weakref.WeakKeyDictionary()
        self.walked: weakref.WeakSet[nn.Module] = weakref.WeakSet()
        self._parents: weakref.WeakKeyDictionary[nn.Module, weakref.ReferenceType[nn.Module]] = (
            weakref.WeakKeyDictionary()
        )
        self._watch = watch

    def place_of(self, module: nn.Module) -> Place | None:
        return self._places.get(module)

    def walk_for(self, module: nn.Module, stack: list[nn.Module], frame: FrameType | None) -> None:
        """Before `module`'s first call (the caller tests `module in walked`), the tree it
        belongs to: the outermost module running (members built after its first call, in
        fit(), say), the module it was registered in (a call from module-level code), or the
        module whose method calls it (`agent.q_values(x)`)."""
        holder = stack[0] if stack else self._registered_top(module)
        if holder is module:
            holder = _caller_module(frame) or module
        self._walk(holder)

    def _walk(self, root: nn.Module) -> None:
        """Place every member below `root`: containers' children, list attributes'
        elements, children registered one by one under numbered names."""
        for parent in root.modules():
            if parent in self.walked:
                continue
            self.walked.add(parent)
            if isinstance(parent, _CONTAINERS):
                self._place_own_children(parent)
                continue
            for name, child in parent.named_children():
                if isinstance(child, _CONTAINERS):
                    for key, member in child.named_children():
                        self._place(member, parent, name, key, _kind(child))
            for attribute, value in vars(parent).items():
                if isinstance(value, list | tuple) and not attribute.startswith("_"):
                    for index, element in enumerate(value):
                        if isinstance(element, nn.Module):
                            self._place(element, parent, attribute, str(index))
            for name, child in parent.named_children():
                stem = name.rstrip("0123456789").rstrip("_")
                if stem and stem != name and not isinstance(child, _CONTAINERS):
                    self._place(child, parent, f"{stem}*", name)

    def _place_own_children(self, container: nn.Module) -> None:
        """A container's children whose holder did not place them: a container in a
        container (`heads[0]`), or a class deriving from nn.ModuleList that loops over
        itself (`<self>`)."""
        place = self._places.get(container)
        holder = place.holder() if place is not None else None
        if place is not None and holder is not None:
            prefix = f"{place.collection}[*]"  # every inner container: one loop nest
        elif type(container) not in _CONTAINERS:
            holder, prefix = container, "<self>"
        else:
            return
        for key, child in container.named_children():
            self._place(child, holder, prefix, key, _kind(container))

    def registered(self, module: nn.Module, name: str, submodule: nn.Module) -> None:
        self._parents[submodule] = weakref.ref(module)
        # Children by numbered name (`h1`, `h2`) are as often layers of a chain as members:
        # their `.forward(x)` calls go unwatched (module hooks still see their calls).
        if isinstance(module, _CONTAINERS) and not isinstance(submodule, _CONTAINERS):
            self._watch(type(submodule))  # before any call: `.forward` may be its only one

    def _registered_top(self, module: nn.Module) -> nn.Module:
        top = module
        for _ in range(64):
            parent = self._parents.get(top)
            found = parent() if parent is not None else None
            if found is None:
                return top
            top = found
        return top

    def _place(self, member: nn.Module, holder: nn.Module, collection: str, key: str, container: str = "") -> None:
        self._places.setdefault(member, Place(weakref.ref(holder), collection, key, container))
        if not collection.endswith("*"):
            self._watch(type(member))
