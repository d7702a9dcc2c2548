"""Small, pure helpers over libcst nodes shared by the analysis passes.

They never resolve metadata: the analysis works from the tree alone, which is what
keeps `enslint check` fast (metadata resolution, not parsing, dominates the cost of
comparable linters).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable, Iterator
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
# read once from the type's `_visit_and_replace_children`: the field names it passes to
# `visit_required(self, "value", ...)` and its kin are that function's string constants,
# which CPython keeps in order of first use (tests/test_fast_paths.py holds this against the
# source for every node type). None where that cannot be read, and libcst's own
# `children` is asked instead. `children` visits the node to find them, several times
# slower, and the passes walk every class and method many times. (Reading the source
# with `inspect` took 50 ms per process, a tenth of a small run.)
_VISITED: dict[type[cst.CSTNode], tuple[str, ...] | None] = {}


def _visited_fields(kind: type[cst.CSTNode]) -> tuple[str, ...] | None:
    code = getattr(getattr(kind, "_visit_and_replace_children", None), "__code__", None)
    if code is None or not dataclasses.is_dataclass(kind):
        return None
    fields = {field.name for field in dataclasses.fields(kind)}
    return tuple(dict.fromkeys(c for c in code.co_consts if isinstance(c, str) and c in fields))


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
        value_kind = type(value)
        if value_kind is list or value_kind is tuple:
            found.extend(item for item in value if _is_node(type(item)))
        elif _is_node(value_kind):
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
    """`node` and every node below it, in source order."""
    found = NodeIndex.tree_holding(node)
    if found is not None:
        tree, here = found
        return iter(tree.order[here : tree.end[here]])
    return _walk(node)


def _walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children_of(current)))


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


class _Tree:
    """One preorder pass over a subtree: each node's position, its parent's position and
    the end of its own subtree (positions are indexes into `order`). Every subtree of it
    is then a slice of `order`: a class, its methods and their bodies share one pass."""

    def __init__(self, root: cst.CSTNode) -> None:
        order: list[cst.CSTNode] = []
        parent: list[int] = []
        stack: list[tuple[cst.CSTNode, int]] = [(root, -1)]
        while stack:
            node, above = stack.pop()
            here = len(order)
            order.append(node)
            parent.append(above)
            below = children_of(node)
            stack.extend((child, here) for child in reversed(below))
        end = list(range(1, len(order) + 1))
        for here in range(len(order) - 1, 0, -1):
            above = parent[here]
            if end[here] > end[above]:
                end[above] = end[here]
        self.root = root
        self.order = order
        self.parent = parent
        self.end = end
        self.position = {id(node): here for here, node in enumerate(order)}
        self._unread: set[int] | None = None

    def find(self, node: cst.CSTNode) -> int | None:
        """`node`'s position, None if it is not in this tree."""
        here = self.position.get(id(node))
        return here if here is not None and self.order[here] is node else None

    def unread(self) -> set[int]:
        """The ids of the names that only label something (the `b` of `a.b`, the `k` of
        `f(k=v)`): `names_in` leaves them out."""
        if self._unread is None:
            self._unread = set()
            for node in self.order:
                if type(node) is cst.Attribute:
                    self._unread.add(id(node.attr))
                elif type(node) is cst.Arg and node.keyword is not None:
                    self._unread.add(id(node.keyword))
        return self._unread


class NodeIndex:
    """Parent links and a source-ordered node list for one subtree (a method).

    `NodeIndex.of(root)` shares one index per subtree among the passes and rewrites that
    ask for it (each fix of each finding asks again), and a subtree of an indexed one (a
    method of an indexed module) is a view of that index, not a new walk."""

    _recent: ClassVar[OrderedDict[int, NodeIndex]] = OrderedDict()
    _RECENT = 64  # a class and its methods, several classes over
    _trees: ClassVar[list[_Tree]] = []  # the module being analysed, indexed whole

    @classmethod
    def of(cls, root: cst.CSTNode) -> NodeIndex:
        # Keyed by id: the index holds its root, so the id cannot be reused while cached.
        index = cls._recent.get(id(root))
        if index is None or index.root is not root:
            index = cls._recent[id(root)] = cls._view(root)
            if len(cls._recent) > cls._RECENT:
                cls._recent.popitem(last=False)
        else:
            cls._recent.move_to_end(id(root))
        return index

    @classmethod
    def _view(cls, root: cst.CSTNode) -> NodeIndex:
        for tree in cls._trees:
            here = tree.find(root)
            if here is not None:
                return cls(tree, here)
        return cls(_Tree(root), 0)

    @classmethod
    def index_module(cls, module: cst.Module) -> None:
        """Walk `module` once: every later index of a subtree of it is a view. The
        previous module's indexes are let go (a worker analyses file after file)."""
        if not any(tree.root is module for tree in cls._trees):
            cls._trees[:] = [_Tree(module)]
            cls._recent.clear()

    @classmethod
    def tree_holding(cls, node: cst.CSTNode) -> tuple[_Tree, int] | None:
        """The indexed module holding `node`, and its position there."""
        for tree in cls._trees:
            here = tree.find(node)
            if here is not None:
                return tree, here
        return None

    def __init__(self, tree: _Tree, here: int) -> None:
        self._tree = tree
        self._start = here
        self._end = tree.end[here]
        self.root = tree.order[here]
        self._attributes: dict[str, list[cst.Attribute]] | None = None
        self._order: list[cst.CSTNode] | None = None

    @property
    def tree(self) -> _Tree:
        """The walk this index is a slice of."""
        return self._tree

    @property
    def order(self) -> list[cst.CSTNode]:
        """The subtree's nodes in source order, its root first."""
        if self._order is None:
            self._order = self._tree.order[self._start : self._end]
        return self._order

    def _find(self, node: cst.CSTNode) -> int | None:
        here = self._tree.find(node)
        return here if here is not None and self._start <= here < self._end else None

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        here = self._find(node)
        if here is None or here == self._start:
            return None
        return self._tree.order[self._tree.parent[here]]

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        here = self._find(node)
        if here is None:
            return
        parent, order = self._tree.parent, self._tree.order
        while here != self._start:
            here = parent[here]
            yield order[here]

    def is_inside(self, node: cst.CSTNode, container: cst.CSTNode) -> bool:
        here, outer = self._find(node), self._find(container)
        return here is not None and outer is not None and outer < here < self._tree.end[outer]

    def descendants(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        """Nodes strictly below `node`, in source order."""
        here = self._find(node)
        if here is None:
            raise KeyError(node)
        return iter(self._tree.order[here + 1 : self._tree.end[here]])

    def before(self, a: cst.CSTNode, b: cst.CSTNode) -> bool:
        first, second = self._find(a), self._find(b)
        if first is None or second is None:
            raise KeyError(a if first is None else b)
        return first < second

    def attributes(self, attr: str) -> list[cst.Attribute]:
        """Every `<name>.attr` in the subtree (`self.heads`, whatever `self` is), in source order."""
        if self._attributes is None:
            self._attributes = {}
            for node in self.order:
                if type(node) is cst.Attribute and type(node.value) is cst.Name:
                    self._attributes.setdefault(node.attr.value, []).append(node)
        return self._attributes.get(attr, [])


def calls_of(
    index: NodeIndex, roots: Iterable[cst.CSTNode], name: str, *, through_forward: bool, skip_params: bool
) -> int | None:
    """How many times the name `name` is called below `roots` (`name(...)`, and with
    `through_forward` `name.forward(...)`); None when it is used any other way. With
    `skip_params`, a parameter of that name (a function's own) is no use."""
    count = 0
    for root in roots:
        for found in walk(root):
            if not (isinstance(found, cst.Name) and found.value == name):
                continue
            user = index.parent(found)
            if skip_params and isinstance(user, cst.Param):
                continue
            if (
                through_forward
                and isinstance(user, cst.Attribute)
                and user.value is found
                and user.attr.value == "forward"
            ):
                found, user = user, index.parent(user)
            if not (isinstance(user, cst.Call) and user.func is found):
                return None
            count += 1
    return count


def names_in(node: cst.CSTNode) -> set[str]:
    """Every bare name read or written anywhere inside `node` (attribute names and keyword
    argument names excluded)."""
    held = NodeIndex.tree_holding(node)
    if held is not None:
        tree, here = held
        unread = tree.unread()
        return {n.value for n in tree.order[here : tree.end[here]] if type(n) is cst.Name and id(n) not in unread}
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
