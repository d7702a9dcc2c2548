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
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return True
    scan = _Registrations()
    scan.visit(tree)
    if scan.names_container:
        return True
    if scan.in_loop:
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


class _Registrations(ast.NodeVisitor):
    """One pass over a file's tree for `builds_collections`."""

    def __init__(self) -> None:
        self.names_container = False
        self.in_loop = False  # a registration inside a loop of its own method
        self.registering_functions: set[str] = set()  # methods that register outside a loop
        self.called_in_loops: set[str] = set()  # names called inside a loop (`self.build(...)`)
        self.calls_by_function: dict[str, set[str]] = {}  # names each function calls
        self._functions: list[tuple[str, str | None]] = []  # (name, first parameter)
        self._loops = [0]  # loops around the current node, per function

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in COLLECTION_CLASSES:
            self.names_container = True

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in COLLECTION_CLASSES:
            self.names_container = True
        self.generic_visit(node)

    def visit_alias(self, node: ast.alias) -> None:
        if node.name.rpartition(".")[2] in COLLECTION_CLASSES:
            self.names_container = True

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        arguments = [*node.args.posonlyargs, *node.args.args]
        self._functions.append((node.name, arguments[0].arg if arguments else None))
        self._loops.append(0)
        self.generic_visit(node)
        self._loops.pop()
        self._functions.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def _loop(self, node: ast.AST) -> None:
        self._loops[-1] += 1
        self.generic_visit(node)
        self._loops[-1] -= 1

    visit_For = visit_AsyncFor = visit_While = _loop
    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _loop

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if called is not None:
            if self._loops[-1]:
                self.called_in_loops.add(called)
            if self._functions:
                self.calls_by_function.setdefault(self._functions[-1][0], set()).add(called)
        if self._functions and self._registers(node):
            if self._loops[-1]:
                self.in_loop = True
            else:
                self.registering_functions.add(self._functions[-1][0])
        self.generic_visit(node)

    def _registers(self, call: ast.Call) -> bool:
        """`self.add_module(...)`, or `setattr(self, <computed name>, ...)`, with `self`
        the method's first parameter."""
        own = self._functions[-1][1]
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
