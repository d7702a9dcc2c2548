"""Where each node of a module lies: libcst's `PositionProvider` ranges, computed faster.

libcst's provider follows line and column through code generation, splitting every
token on line breaks as it goes; on a file of many classes that costs more than parsing
it. Here code generation only counts characters, and a node's line and column are worked
out from its character offsets when a finding or a fix asks for them. The ranges are the
provider's own: the same syntactic positions (`record_syntactic_position`), the same line
breaks (\\n, \\r\\n and \\r), checked against the provider in the tests.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Literal

import libcst as cst
from libcst._nodes.internal import CodegenState
from libcst._position import CodePosition, CodeRange

from enslint.source import line_starts


@dataclass
class _CountingState(CodegenState):
    """Code generation that records each node's start and end as character offsets,
    keyed by the node's id (the module holds its nodes; a node's own hash is a Python
    call, made twice for every node)."""

    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)  # id(node) -> (start, end)
    length: int = 0
    popped: str = ""  # the final line break a file without one is generated with, then loses
    _stack: list[int] = field(default_factory=list)

    def add_indent_tokens(self) -> None:
        self.tokens.extend(self.indent_tokens)
        for token in self.indent_tokens:
            self.length += len(token)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self.length += len(value)

    def pop_trailing_newline(self) -> None:
        # The provider's count keeps the dropped break (the module's range ends after it).
        if self.tokens:
            self.popped = self.tokens.pop()

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._stack.append(self.length)

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self._stack.pop()
        key = id(node)
        if key not in self.offsets:  # a syntactic position recorded inside wins
            self.offsets[key] = (start, self.length)

    # libcst declares this a @contextmanager generator; a class context does the same at a
    # fraction of the cost (see _Recording), which mypy sees as a different return type.
    def record_syntactic_position(  # type: ignore[override]
        self, node: cst.CSTNode, *, start_node: cst.CSTNode | None = None, end_node: cst.CSTNode | None = None
    ) -> _Recording:
        return _Recording(self, node, start_node, end_node)


class _Recording:
    """`record_syntactic_position`'s context: a class, not a generator (it is entered for
    most nodes, and a generator-based context costs several times more)."""

    __slots__ = ("state", "node", "start_node", "end_node", "start")
    start: int

    def __init__(
        self,
        state: _CountingState,
        node: cst.CSTNode,
        start_node: cst.CSTNode | None,
        end_node: cst.CSTNode | None,
    ) -> None:
        self.state, self.node, self.start_node, self.end_node = state, node, start_node, end_node

    def __enter__(self) -> None:
        self.start = self.state.length

    def __exit__(self, kind: type[BaseException] | None, *exception: object) -> Literal[False]:
        if kind is not None:
            return False  # code generation failed (too deep): nothing to record, let it rise
        offsets = self.state.offsets
        start = offsets[id(self.start_node)][0] if self.start_node is not None else self.start
        end = offsets[id(self.end_node)][1] if self.end_node is not None else self.state.length
        offsets[id(self.node)] = (start, end)
        return False


class Positions:
    """`positions[node]`: the node's CodeRange (1-based lines, 0-based columns), as
    libcst's PositionProvider gives it; `source` is the module's code."""

    def __init__(self, module: cst.Module, source: str) -> None:
        state = _CountingState(default_indent=module.default_indent, default_newline=module.default_newline)
        module._codegen(state)
        self._offsets = state.offsets
        self._module = module  # keeps every node, so no id is reused while this lives
        # Positions were taken before the file's missing final line break was dropped.
        self._starts = line_starts(source + state.popped)

    def _position(self, offset: int) -> CodePosition:
        line = bisect_right(self._starts, offset)
        return CodePosition(line, offset - self._starts[line - 1])

    def __getitem__(self, node: cst.CSTNode) -> CodeRange:
        start, end = self._offsets[id(node)]
        return CodeRange(self._position(start), self._position(end))

    def get(self, node: cst.CSTNode, default: CodeRange | None = None) -> CodeRange | None:
        return self[node] if id(node) in self._offsets else default

    def __contains__(self, node: cst.CSTNode) -> bool:
        return id(node) in self._offsets
