"""Small, pure helpers over libcst nodes shared by the analysis passes.

They never resolve metadata: the analysis works from the tree alone, which is what
keeps `enslint check` fast (metadata resolution, not parsing, dominates the cost of
comparable linters).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections import OrderedDict
from collections.abc import Iterator
from typing import ClassVar

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


# Per node type, the fields libcst visits, in the order it visits them (source order),
# read once from the type's `_visit_and_replace_children`; None where that cannot be
# read, and libcst's own `children` is asked instead. `children` visits the node to find
# them, several times slower, and the passes walk every class and method many times.
_VISITED: dict[type, tuple[str, ...] | None] = {}
_VISIT_CALL = re.compile(r'visit_\w+\(\s*self,\s*"(\w+)"')


def _visited_fields(kind: type) -> tuple[str, ...] | None:
    try:
        text = inspect.getsource(kind._visit_and_replace_children)
    except (OSError, TypeError, AttributeError):
        return None
    names = tuple(dict.fromkeys(_VISIT_CALL.findall(text)))
    fields = {field.name for field in dataclasses.fields(kind)}
    return names if set(names) <= fields else None


def children_of(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The nodes directly below `node`, in source order: libcst's `children`, faster."""
    kind = type(node)
    if kind not in _VISITED:
        _VISITED[kind] = _visited_fields(kind)
    names = _VISITED[kind]
    if names is None:
        return list(node.children)
    found: list[cst.CSTNode] = []
    for name in names:
        value = getattr(node, name)
        kind = type(value)
        if kind is list or kind is tuple:
            found.extend(item for item in value if _is_node(type(item)))
        elif _is_node(kind):
            found.append(value)
    return found


_NODE_TYPES: dict[type, bool] = {}


def _is_node(kind: type) -> bool:
    """isinstance(x, cst.CSTNode) by type, cached: CSTNode is an ABC, whose isinstance
    is slow, and this runs for every field of every node walked."""
    known = _NODE_TYPES.get(kind)
    if known is None:
        known = _NODE_TYPES[kind] = issubclass(kind, cst.CSTNode)
    return known


def walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """`node` and every node below it (any order)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(children_of(current))


def attribute_uses(node: cst.CSTNode, attr: str) -> int:
    """How many times `<name>.attr` appears below `node` (`self.heads`, whatever `self` is)."""
    return len(NodeIndex.of(node).attributes(attr))


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


class NodeIndex:
    """Parent links and a source-ordered node list for one subtree (a method).

    `NodeIndex.of(root)` shares one index per subtree among the passes and rewrites that
    ask for it (each fix of each finding asks again)."""

    _recent: ClassVar[OrderedDict[int, NodeIndex]] = OrderedDict()
    _RECENT = 64  # a class and its methods, several classes over

    @classmethod
    def of(cls, root: cst.CSTNode) -> NodeIndex:
        # Keyed by id: the index holds its root, so the id cannot be reused while cached.
        index = cls._recent.get(id(root))
        if index is None or index.root is not root:
            index = cls._recent[id(root)] = cls(root)
            if len(cls._recent) > cls._RECENT:
                cls._recent.popitem(last=False)
        else:
            cls._recent.move_to_end(id(root))
        return index

    def __init__(self, root: cst.CSTNode) -> None:
        self.root = root
        self.order: list[cst.CSTNode] = []
        self.parents: dict[cst.CSTNode, cst.CSTNode] = {}
        stack = [root]
        while stack:
            node = stack.pop()
            self.order.append(node)
            below = children_of(node)
            for child in below:
                self.parents[child] = node
            stack.extend(reversed(below))
        self._position = {node: i for i, node in enumerate(self.order)}
        self._attributes: dict[str, list[cst.Attribute]] | None = None

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

    def attributes(self, attr: str) -> list[cst.Attribute]:
        """Every `<name>.attr` in the subtree (`self.heads`, whatever `self` is), in source order."""
        if self._attributes is None:
            self._attributes = {}
            for node in self.order:
                if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
                    self._attributes.setdefault(node.attr.value, []).append(node)
        return self._attributes.get(attr, [])


def names_in(node: cst.CSTNode) -> set[str]:
    """Every bare name read or written anywhere inside `node` (attribute names and keyword
    argument names excluded)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            found.add(current.value)
        elif isinstance(current, (cst.Attribute, cst.Arg)):
            stack.append(current.value)
        else:
            stack.extend(children_of(current))
    return found


def free_names(node: cst.CSTNode) -> set[str]:
    """`names_in` less the names that comprehensions inside `node` bind for themselves."""
    bound = {name for clause in walk(node) if isinstance(clause, cst.CompFor) for name in target_names(clause.target)}
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
