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

SOURCES = {str(p.relative_to(ROOT)): p.read_text() for folder in (FIXTURES, ROOT / "enslint") for p in sorted(folder.rglob("*.py"))}
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
