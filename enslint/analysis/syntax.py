"""Small, pure helpers over libcst nodes shared by the analysis passes.

They never resolve metadata: the analysis works from the tree alone, which is what
keeps `enslint check` fast (metadata resolution, not parsing, dominates the cost of
comparable linters).
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

_EMPTY_MODULE = cst.Module(body=[])


def code_of(node: cst.CSTNode) -> str:
    """Source text of `node`, with runs of whitespace folded to one space."""
    return " ".join(_EMPTY_MODULE.code_for_node(node).split())


def dotted_name(node: cst.BaseExpression) -> str | None:
    """`a.b.c` for a chain of attributes over a name, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


COMPREHENSIONS = (cst.ListComp, cst.GeneratorExp, cst.SetComp, cst.DictComp)


def walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """`node` and every node below it (any order)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.children)


def attribute_uses(node: cst.CSTNode, attr: str) -> int:
    """How many times `<name>.attr` appears below `node` (`self.heads`, whatever `self` is)."""
    return sum(
        1
        for child in walk(node)
        if isinstance(child, cst.Attribute) and child.attr.value == attr and isinstance(child.value, cst.Name)
    )


def first_param(function: cst.FunctionDef) -> str | None:
    """The name a method calls its instance (`self`, whatever it is spelt)."""
    params = function.params.posonly_params or function.params.params
    return params[0].name.value if params else None


def self_attribute(node: cst.BaseExpression, self_name: str | None) -> str | None:
    """`x` for `self.x` (with the method's own name for `self`), else None."""
    if (
        self_name is not None
        and isinstance(node, cst.Attribute)
        and isinstance(node.value, cst.Name)
        and node.value.value == self_name
    ):
        return node.attr.value
    return None


def positional_args(call: cst.Call) -> list[cst.BaseExpression]:
    return [a.value for a in call.args if a.keyword is None and not a.star]


def keyword_arg(call: cst.Call, name: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def arg_at(call: cst.Call, index: int, keyword: str) -> cst.BaseExpression | None:
    """The argument given at `index` positionally or as `keyword=`."""
    positional = positional_args(call)
    if index < len(positional):
        return positional[index]
    return keyword_arg(call, keyword)


def int_value(node: cst.BaseExpression | None) -> int | None:
    if isinstance(node, cst.Integer):
        try:
            return int(node.value.replace("_", ""), 0)
        except ValueError:
            return None
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = int_value(node.expression)
        return None if inner is None else -inner
    return None


class _Indexer(cst.CSTVisitor):
    """Records every node below a root in source order, with its parent."""

    def __init__(self) -> None:
        self.order: list[cst.CSTNode] = []
        self.parents: dict[cst.CSTNode, cst.CSTNode] = {}
        self._stack: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self._stack:
            self.parents[node] = self._stack[-1]
        self._stack.append(node)
        self.order.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self._stack.pop()


class NodeIndex:
    """Parent links and a source-ordered node list for one subtree (a method)."""

    def __init__(self, root: cst.CSTNode) -> None:
        indexer = _Indexer()
        root.visit(indexer)
        self.root = root
        self.order = indexer.order
        self.parents = indexer.parents
        self._position = {node: i for i, node in enumerate(self.order)}

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.parents.get(node)

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        current = self.parents.get(node)
        while current is not None:
            yield current
            current = self.parents.get(current)

    def is_inside(self, node: cst.CSTNode, container: cst.CSTNode) -> bool:
        return any(a is container for a in self.ancestors(node))

    def descendants(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        """Nodes strictly below `node`, in source order."""
        start = self._position[node]
        for candidate in self.order[start + 1 :]:
            if not self.is_inside(candidate, node):
                return
            yield candidate

    def before(self, a: cst.CSTNode, b: cst.CSTNode) -> bool:
        return self._position[a] < self._position[b]


def names_in(node: cst.CSTNode) -> set[str]:
    """Every bare name read or written anywhere inside `node` (attribute names excluded)."""
    found: set[str] = set()

    class _Names(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            found.add(name.value)

        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            attribute.value.visit(self)
            return False

        def visit_Arg(self, arg: cst.Arg) -> bool:
            arg.value.visit(self)
            return False

    node.visit(_Names())
    return found


def free_names(node: cst.CSTNode) -> set[str]:
    """`names_in` less the names that comprehensions inside `node` bind for themselves."""
    bound: set[str] = set()

    class _Targets(cst.CSTVisitor):
        def visit_CompFor(self, clause: cst.CompFor) -> None:
            bound.update(target_names(clause.target))

    node.visit(_Targets())
    return names_in(node) - bound


def target_names(target: cst.BaseExpression) -> list[str]:
    """Names bound by an assignment or loop target (`a`, `a, b`, `(a, (b, c))`)."""
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        names: list[str] = []
        for element in target.elements:
            names.extend(target_names(element.value))
        return names
    return []
