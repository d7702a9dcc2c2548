"""Whether a file's code builds a member collection, read on Python's own tree.

The bytes tests of kinds.py find the words (`ModuleList`, `add_module`) wherever they
are, docstrings and comments included; this reads where they stand, about ten times
faster than libcst parses, for the files whose bytes name a collection: the prefilter
(checking/prefilter.py) and the project index's search for exports (project.py) skip
what it rules out. It must only rule out what the analysis (members.py) would not read
as a collection. Never imports libcst.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field

from enslint.analysis.kinds import COLLECTION_CLASSES


def builds_collections(data: bytes) -> bool:
    """Whether the code (not its strings and comments) holds what the analysis builds a
    member collection from (analysis/members.py), read on Python's tree:

    - the container classes as code: `nn.ModuleList(...)`, `ModuleDict`, a base class, an
      import of one (an alias is then called under another name);
    - a registration one member at a time: `self.add_module(...)`, or `setattr(self, ...)`
      under a computed name, where `self` is the method's first parameter, in a loop, or
      in a method that a loop calls, directly or through other methods (the analysis
      reads a called method's statements at the call).

    `torch.nn.Module` itself names `add_module` only to define it and call it once:
    libcst's parse of its 4,000 lines was a fifth of a cold check of torch/nn. A file
    Python cannot parse here passes: the analysis gives its verdict (ENS000, or a target
    Python newer than this one)."""
    tree = _tree(data)
    if tree is None:
        return True
    scan = _scan(tree)
    if scan.names_container or scan.in_loop:
        return True
    # Methods a loop calls, then those they call, and so on: a registration in one of
    # them runs once per iteration.
    reached = set(scan.called_in_loops)
    pending = list(reached)
    while pending:
        for callee in scan.calls_by_function.get(pending.pop(), ()):
            if callee not in reached:
                reached.add(callee)
                pending.append(callee)
    return any(function in reached for function in scan.registering_functions)


_LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass
class _Scan:
    names_container: bool = False
    in_loop: bool = False  # a registration inside a loop of its own method
    registering_functions: set[str] = field(default_factory=set)  # methods that register outside a loop
    called_in_loops: set[str] = field(default_factory=set)  # names called inside a loop (`self.build(...)`)
    calls_by_function: dict[str, set[str]] = field(default_factory=dict)  # the names each function calls


@functools.lru_cache(maxsize=2)  # the file being checked, beside one other
def _tree(data: bytes) -> ast.Module | None:
    """Python's tree of `data`, once for both tests (a file may need both); None when
    Python cannot parse it here."""
    try:
        return ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


_Function = ast.FunctionDef | ast.AsyncFunctionDef | None  # None: module level


def _walk(tree: ast.Module) -> Iterator[tuple[ast.AST, _Function, int]]:
    """Every node but the `Load`/`Store` and operator markers, with the function it is
    in and how many loops surround it there, walked with a stack of its own: a file
    nested as deeply as Python takes is walked without recursion."""
    stack: list[tuple[ast.AST, _Function, int]] = [(tree, None, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, function, loops = pop()
        yield node, function, loops
        kind = type(node)
        if kind in _LOOPS:
            loops += 1
        elif kind in _FUNCTIONS:
            function, loops = node, 0  # type: ignore[assignment]  # one of _FUNCTIONS
        for name in _child_fields(kind):
            value = getattr(node, name, None)
            if type(value) is list:
                for item in value:
                    if isinstance(item, ast.AST):
                        push((item, function, loops))
            elif isinstance(value, ast.AST):
                push((value, function, loops))


_MARKER_FIELDS = {"ctx", "op"}  # ast.Load, ast.Add: markers, never code of their own
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(kind: type) -> tuple[str, ...]:
    fields = _CHILD_FIELDS.get(kind)
    if fields is None:
        fields = _CHILD_FIELDS[kind] = tuple(f for f in getattr(kind, "_fields", ()) if f not in _MARKER_FIELDS)
    return fields


def _scan(tree: ast.Module) -> _Scan:
    scan = _Scan()
    for node, function, loops in _walk(tree):
        if isinstance(node, ast.Name):
            scan.names_container |= node.id in COLLECTION_CLASSES
        elif isinstance(node, ast.Attribute):
            scan.names_container |= node.attr in COLLECTION_CLASSES
        elif isinstance(node, ast.alias):
            scan.names_container |= node.name.rpartition(".")[2] in COLLECTION_CLASSES
        elif isinstance(node, ast.Call):
            _call(scan, node, function, loops)
    return scan


def _call(scan: _Scan, call: ast.Call, function: _Function, loops: int) -> None:
    func = call.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if called is not None:
        if loops:
            scan.called_in_loops.add(called)
        if function is not None:
            scan.calls_by_function.setdefault(function.name, set()).add(called)
    if function is not None and _registers(call, _first_parameter(function)):
        if loops:
            scan.in_loop = True
        else:
            scan.registering_functions.add(function.name)


def _first_parameter(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    arguments = [*function.args.posonlyargs, *function.args.args]
    return arguments[0].arg if arguments else None


def _registers(call: ast.Call, own: str | None) -> bool:
    """`self.add_module(...)`, or `setattr(self, <computed name>, ...)`, with `self`
    the method's first parameter (`own`)."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "add_module":
        return isinstance(func.value, ast.Name) and func.value.id == own
    if isinstance(func, ast.Name) and func.id == "setattr" and len(call.args) >= 2:
        target, name = call.args[0], call.args[1]
        return isinstance(target, ast.Name) and target.id == own and _computed_name(name)
    return False


def _computed_name(node: ast.expr) -> bool:
    """The spellings of members.computed_name: `f"head{i}"`, `"head" + str(i)`, `"fc%d" % i`,
    `"h{}".format(i)`, `str(i)`."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id == "str":
            return True
        return (
            isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant)
            and isinstance(node.func.value.value, str)
        )
    return False


def builds_plain_lists(data: bytes) -> bool:
    """Whether the code fills a plain list on `self` with what calls build and then calls
    its elements in a loop:

    - filled: `self.heads = [Head() for _ in range(n)]`, or `self.critics.append(...)` in
      a loop, of a call or of a name the function binds to a call (`q = Mlp(...)`);
    - called: `self.critics[i](x)` in a loop, or a loop over `self.heads` (or its
      `enumerate`/`zip`) that calls its element (`for head in self.heads: head(x)`).

    The analysis takes such a list only where the constructor proves it builds modules,
    which needs the analysis itself (model.py). A file Python cannot parse here passes."""
    tree = _tree(data)
    if tree is None:
        return True
    lists = _PlainLists()
    for node, function, loops in _walk(tree):
        lists.read(node, id(function), loops)
    return bool(lists.filled() & lists.used)


@dataclass
class _PlainLists:
    """What `builds_plain_lists` gathers in its one pass."""

    used: set[str] = field(default_factory=set)  # attributes whose elements a loop calls
    assigned: set[str] = field(default_factory=set)  # attributes assigned a list of calls
    built: dict[int, set[str]] = field(default_factory=dict)  # per function (by id): names bound to a call
    appended: list[tuple[int, str, ast.expr]] = field(default_factory=list)  # (function, attribute, value)

    def read(self, node: ast.AST, function: int, loops: int) -> None:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if isinstance(node.value, (ast.ListComp, ast.List)) and _built_by_calls(node.value):
                self.assigned.update(a for target in targets for a in _self_attributes(target))
            if isinstance(node.value, ast.Call):
                self.built.setdefault(function, set()).update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Call) and loops:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "append" and len(node.args) == 1:
                self.appended.extend((function, attr, node.args[0]) for attr in _self_attributes(func.value))
            called = func.value if isinstance(func, ast.Attribute) else func
            if isinstance(called, ast.Subscript):
                self.used.update(_self_attributes(called.value))
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.used.update(_iterated_and_called(node.iter, node.target, node.body))
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            results = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            for generator in node.generators:
                self.used.update(_iterated_and_called(generator.iter, generator.target, results))

    def filled(self) -> set[str]:
        """Attributes assigned a list of calls, or appended a call (or a name bound to one) in a loop."""
        appended = {
            attr
            for function, attr, value in self.appended
            if isinstance(value, ast.Call) or (isinstance(value, ast.Name) and value.id in self.built.get(function, ()))
        }
        return self.assigned | appended


def _built_by_calls(value: ast.ListComp | ast.List) -> bool:
    """`[Head() for _ in range(n)]`, `[Head(), Head()]`."""
    if isinstance(value, ast.ListComp):
        return isinstance(value.elt, ast.Call)
    return bool(value.elts) and all(isinstance(element, ast.Call) for element in value.elts)


def _iterated_and_called(iterated: ast.expr, target: ast.expr, body: list) -> list[str]:
    """The `self` attributes a loop runs over (`self.heads`, `enumerate(self.heads)`,
    `zip(self.heads, xs)`) when the body calls what the loop binds."""
    sources = [iterated]
    if (
        isinstance(iterated, ast.Call)
        and isinstance(iterated.func, ast.Name)
        and iterated.func.id in ("enumerate", "zip", "reversed")
    ):
        sources = list(iterated.args)
    attrs = [a for source in sources for a in _self_attributes(source) if isinstance(source, ast.Attribute)]
    if not attrs:
        return []
    bound = {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    for part in body:
        for found in ast.walk(part):
            if isinstance(found, ast.Call) and isinstance(found.func, ast.Name) and found.func.id in bound:
                return attrs
    return []


def _self_attributes(node: ast.AST) -> list[str]:
    """`x` for `<name>.x`, and each of `<name>.a, <name>.b` in a tuple of targets."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return [node.attr]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [a for element in node.elts for a in _self_attributes(element)]
    return []
