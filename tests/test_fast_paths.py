"""The analysis's fast replacements for libcst services give libcst's own answers.

`children_of` reads each node type's visit order from libcst, and `Positions` counts
characters instead of lines and columns; both are checked node by node against libcst
on every fixture, the package's own source and the line-ending edge cases."""

from __future__ import annotations

import ast
import inspect
import re

import libcst as cst
import pytest
from conftest import FIXTURES, ROOT
from libcst.metadata import MetadataWrapper, PositionProvider

from enslint.analysis.positions import Positions
from enslint.analysis.syntax import children_of, walk

SOURCES = {
    str(p.relative_to(ROOT)): p.read_text()
    for folder in (FIXTURES, ROOT / "enslint")
    for p in sorted(folder.rglob("*.py"))
}
EDGES = [
    "a\nb",  # no final line break
    "x = 1\r\ny = (2,\r\n  3)\r\n",
    "x = 1\ry = (\r 2)\r",
    "",
    "\n",
    "# only a comment",
    "s = '\u2028'\nx = (1 +\n 2)  # \x0c\n",
    "class A:\n\tdef f(self):\n\t\treturn [m(x) for m in self.ms]\n",
    "@d\nasync def f(a, /, b=1, *c, d, **e) -> int:\n    return (yield)\n",
    "x = [y for y in z if y] if a else {k: v for k, v in w}\n",
]


@pytest.mark.parametrize("name", [*SOURCES, *(f"edge-{i}" for i in range(len(EDGES)))])
def test_positions_and_children_are_libcsts(name):
    source = SOURCES[name] if name in SOURCES else EDGES[int(name.split("-")[1])]
    module = cst.parse_module(source)
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    mine = Positions(module, source)
    for node in walk(module):
        assert mine[node] == expected[node], (type(node).__name__, module.code_for_node(node))
        assert [id(c) for c in children_of(node)] == [id(c) for c in node.children], type(node).__name__


def _oracle(root: cst.CSTNode) -> tuple[list[cst.CSTNode], dict[int, cst.CSTNode]]:
    """Source order and parents, by plain recursion over libcst's own `children`."""
    order: list[cst.CSTNode] = []
    parents: dict[int, cst.CSTNode] = {}

    def visit(node: cst.CSTNode) -> None:
        order.append(node)
        for child in node.children:
            parents[id(child)] = node
            visit(child)

    visit(root)
    return order, parents


@pytest.mark.parametrize("name", [*SOURCES, *(f"edge-{i}" for i in range(len(EDGES)))])
def test_views_of_the_module_index_answer_as_their_subtree_does(name, monkeypatch):
    """A method's index is a slice of the module's one walk; every question asked of it
    gets the answer a walk of the method alone gives, and `walk`, `names_in` and the
    rewrites' name counts read from the module's index agree with a walk of the node."""
    from enslint.analysis.model import _attribute_use_by_class
    from enslint.analysis.syntax import NodeIndex, names_in
    from enslint.rewrites.fix_assembly import _usage

    monkeypatch.setattr(NodeIndex, "_trees", [])
    monkeypatch.setattr(NodeIndex, "_recent", type(NodeIndex._recent)())
    source = SOURCES[name] if name in SOURCES else EDGES[int(name.split("-")[1])]
    module = cst.parse_module(source)
    kinds = (cst.ClassDef, cst.FunctionDef, cst.IndentedBlock, cst.For, cst.Call)
    roots = [n for n in walk(module) if isinstance(n, kinds)][:40]
    by_walk = {id(r): ([id(n) for n in walk(r)], names_in(r), _usage(r)) for r in roots}
    assert NodeIndex.tree_holding(module) is None  # the answers above are the walks'
    NodeIndex.index_module(module)
    assert NodeIndex.tree_holding(module) is not None
    for root in roots:
        order, parents = _oracle(root)
        place = {id(n): i for i, n in enumerate(order)}
        index = NodeIndex.of(root)
        assert [id(n) for n in index.order] == [id(n) for n in order]
        for i, node in enumerate(order):
            expected_parent = parents.get(id(node)) if node is not root else None
            assert index.parent(node) is expected_parent
            chain, current = [], node
            while current is not root:
                current = parents[id(current)]
                chain.append(id(current))
            assert [id(a) for a in index.ancestors(node)] == chain
            if i % 17 == 0:
                below = [id(n) for n in _oracle(node)[0][1:]]
                assert [id(n) for n in index.descendants(node)] == below
                inside = set(below)
                assert all(index.is_inside(other, node) == (id(other) in inside) for other in order[::11])
                assert all(index.before(node, other) == (i < place[id(other)]) for other in order[::11])
        attributes = {n.attr.value for n in order if isinstance(n, cst.Attribute) and isinstance(n.value, cst.Name)}
        for attr in attributes:
            expected = [
                n
                for n in order
                if isinstance(n, cst.Attribute) and isinstance(n.value, cst.Name) and n.attr.value == attr
            ]
            assert index.attributes(attr) == expected
        walked, names, usage = by_walk[id(root)]
        assert [id(n) for n in walk(root)] == walked == [id(n) for n in order]
        assert names_in(root) == names
        assert _usage(root) == usage
    assert index.parent(module) is None and NodeIndex.of(roots[0]).parent(module) is None if roots else True
    uses = _attribute_use_in_python_tree(source)
    if uses is not None:
        assert _attribute_use_by_class(module) == uses


def _attribute_use_in_python_tree(source: str) -> dict[str, tuple[set[str], set[str]]] | None:
    """The oracle: for each top-level class (and those in top-level `if`/`try` blocks),
    by name, the attributes of its instance (`self`, or a method's first parameter) read
    in loops, and those it assigns, from Python's own tree."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None

    def top_level(body):
        for node in body:
            yield node
            if isinstance(node, (ast.If, ast.Try)):
                yield from top_level(node.body)
                yield from top_level(getattr(node, "orelse", []))

    uses: dict[str, tuple[set[str], set[str]]] = {}
    loops = (ast.For, ast.AsyncFor, ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.SetComp)
    for node in top_level(tree.body):
        if isinstance(node, ast.ClassDef):
            selves = {"self"}
            for method in node.body:
                if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    params = method.args.posonlyargs + method.args.args
                    if params:
                        selves.add(params[0].arg)

            def own(n, selves=selves):
                return isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in selves

            looped, assigned = uses.setdefault(node.name, (set(), set()))
            for loop in ast.walk(node):
                if isinstance(loop, loops):
                    looped.update(n.attr for n in ast.walk(loop) if own(n))
                assigned.update(t.attr for t in _assigned(loop) if own(t))
    return uses


def _assigned(node):
    """What an assignment writes to, one level of tuple unpacking included."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    else:
        return []
    found = []
    for target in targets:
        for element in target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]:
            found.append(element.value if isinstance(element, ast.Starred) else element)
    return found


def _fields_from_source(kind: type[cst.CSTNode]) -> tuple[str, ...]:
    """The visit order as the source of `_visit_and_replace_children` spells it."""
    text = inspect.getsource(kind._visit_and_replace_children)
    return tuple(dict.fromkeys(re.findall(r'visit_\w+\(\s*self,\s*"(\w+)"', text)))


NODE_TYPES = sorted(
    (
        kind
        for kind in vars(cst).values()
        # The concrete types, those a parsed tree holds.
        if isinstance(kind, type) and issubclass(kind, cst.CSTNode) and not inspect.isabstract(kind)
    ),
    key=lambda kind: kind.__name__,
)


def test_the_visit_order_read_from_constants_is_the_sources_for_every_node_type():
    from enslint.analysis.syntax import _visited_fields

    assert len(NODE_TYPES) > 100
    for kind in NODE_TYPES:
        assert _visited_fields(kind) == _fields_from_source(kind), kind.__name__
