"""The analysis's fast replacements for libcst services give libcst's own answers.

`children_of` reads each node type's visit order from libcst, and `Positions` counts
characters instead of lines and columns; both are checked node by node against libcst
on every fixture, the package's own source and the line-ending edge cases."""

from __future__ import annotations

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
    from enslint.analysis.model import _looped_by_class
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
    looped = _looped_by_class_in_python_tree(source)
    if looped is not None:
        assert _looped_by_class(module) == looped


def _looped_by_class_in_python_tree(source: str) -> dict[str, set[str]] | None:
    """The oracle: the attributes read in loops of each top-level class (and those in
    top-level `if`/`try` blocks), by name, from Python's own tree."""
    import ast
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

    looped: dict[str, set[str]] = {}
    loops = (ast.For, ast.AsyncFor, ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.SetComp)
    for node in top_level(tree.body):
        if isinstance(node, ast.ClassDef):
            names = looped.setdefault(node.name, set())
            for loop in ast.walk(node):
                if isinstance(loop, loops):
                    names.update(n.attr for n in ast.walk(loop) if isinstance(n, ast.Attribute))
    return looped
