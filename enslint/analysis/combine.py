"""How a member loop's results are combined: one fact per loop, read by the rules and
the rewrites.

The analysis (analysis/loops.py) records a `Combine` for every member loop: how the
results are combined, in the words a message uses ("stacked", "summed", "written into a
preallocated tensor by index", "returned as a list", ...), and, where the loop has one
member call and a combine a rewrite can replace, the `Site`: the nodes to replace, the
kind and dim of the combine, the per-member element and the later consumer. Two
spellings have a site:

- a comprehension, `torch.stack([m(x) for m in self.members], dim=d)` and its kin
  (`torch.cat(..., dim=d)`, `sum(...)`, `sum(...) / len(...)`, `torch.stack(...).mean(d)`,
  `list(...)`, `tuple(...)`, a list comprehension returned or assigned as it is);
- a `for` loop right after the statement that starts what it fills: `outs = []` and
  `outs.append(...)` (with the one later expression that only combines `outs`),
  `total = 0` and `total += ...`, `out = x.new_zeros(...)` and `out[:, i] = ...`;
  temporaries of the body (`h = m(x)`, `outs.append(h)`) are read through.

The statement helpers (`sibling`, `single_statement`, `append_of`, ...) are the ones the
rewrites use for the shapes they read themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

import libcst as cst

from enslint.analysis.imports import ImportTable
from enslint.analysis.syntax import NodeIndex, arg_at, code_of, int_value, names_in, walk


@dataclass(frozen=True)
class LoopSpan:
    """What finding a site reads of a member loop with one member call."""

    method: cst.FunctionDef  # the method holding the loop
    node: cst.For | cst.CompFor  # the `for`, or the comprehension's clause
    report_node: cst.CSTNode  # the comprehension, for a clause
    call: cst.Call  # the loop's one member call
    collection_text: str  # "self.heads"
    index_var: str | None
    read: str | None  # the tensor the members read (sliced or whole), as written


_LIST_MAKERS = (cst.ListComp, cst.GeneratorExp)


# The one later use that only combines a list of the members' results: (node, kind, dim).
Consumer: TypeAlias = tuple[cst.BaseExpression, str, str | None]


# How the members' results are combined: (node replaced, kind, dim, wrapper), as in `Site`.
_Combined: TypeAlias = tuple[cst.BaseExpression, str, str | None, str | None]


@dataclass(frozen=True)
class Site:
    replaced: object  # a node, or a (first, last) pair of statements
    kind: str  # "stack", "cat", "sum", "mean" or "unbind"
    dim: str | None  # the stack's dim as written; the cat's dim
    wrapper: str | None  # "list" or "tuple" around an unbind
    assigned: str | None  # `outs` for the append-loop spelling
    argument: cst.BaseExpression  # the member call's first argument
    element: cst.BaseExpression  # what the loop produces per member: the call, or an expression around it
    # For the append-loop spelling: the one later expression that only combines the list
    # (`torch.stack(outs, dim=1)`), replaced by `outs`, which then holds the combined result
    # directly instead of a list to be stacked again.
    consumer: cst.CSTNode | None = None


def find_site(span: LoopSpan, imports: ImportTable) -> Site | None:
    """The loop and combine to replace; each member's result may be an expression around
    the member call (`m(x).transpose(0, 1)`), with any arguments."""
    call = span.call
    if not call.args:
        return None
    argument = call.args[0].value

    def produces(element: cst.CSTNode) -> bool:
        return any(node is call for node in walk(element))

    index = NodeIndex.of(span.method)
    if isinstance(span.node, cst.CompFor):
        return _comprehension_site(span, span.node, index, imports, argument, produces)
    return _for_loop_site(span, span.node, index, imports, argument, produces)


def _comprehension_site(
    span: LoopSpan,
    clause: cst.CompFor,
    index: NodeIndex,
    imports: ImportTable,
    argument: cst.BaseExpression,
    produces: Callable[[cst.CSTNode], bool],
) -> Site | None:
    """The site of a comprehension over the members (`[m(x) for m in self.members]`) and
    the call that combines it; a list comprehension assigned to a name that one later
    expression only combines is replaced with that name's statement."""
    comprehension = span.report_node
    if not isinstance(comprehension, _LIST_MAKERS) or not produces(comprehension.elt) or clause.ifs:
        return None
    if comprehension.for_in is not clause or clause.inner_for_in is not None:
        return None
    found = _combine(comprehension, index, imports, span.collection_text)
    if found is None:
        return None
    assign = index.parent(comprehension)
    statement = index.parent(assign) if assign is not None else None
    if (
        found[1] == "unbind"
        and isinstance(assign, cst.Assign)
        and len(assign.targets) == 1
        and isinstance(assign.targets[0].target, cst.Name)
        and isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
    ):
        # `steps = [m(x) for ...]` only combined later (`torch.cat(steps, dim=1)`):
        # the name holds the combined result directly.
        name = assign.targets[0].target.value
        consumer = direct_consumer(span.method, statement, name, imports)
        if consumer is not None:
            node, kind, dim = consumer
            return Site(statement, kind, dim, None, name, argument, comprehension.elt, node)
    return Site(*found, None, argument, comprehension.elt)


def _for_loop_site(
    span: LoopSpan,
    loop_node: cst.For,
    index: NodeIndex,
    imports: ImportTable,
    argument: cst.BaseExpression,
    produces: Callable[[cst.CSTNode], bool],
) -> Site | None:
    """The site of a `for` loop whose one statement (temporaries inlined) sums, writes or
    appends each member's result, with the statement right before it that starts the sum,
    the tensor or the list."""
    if loop_node.orelse is not None:
        return None
    body = _inlined(list(loop_node.body.body), loop_node, index)
    if body is None or len(body) != 1:
        return None
    accumulated = _accumulated(body[0], loop_node, index)
    if accumulated is not None:
        start, name, value = accumulated
        return Site((start, loop_node), "sum", None, None, name, argument, value) if produces(value) else None
    written = _indexed_write(body[0], span, index, imports)
    if written is not None:
        allocation, name, axis, value = written
        return (
            Site((allocation, loop_node), "stack", str(axis), None, name, argument, value) if produces(value) else None
        )
    appended = append_of(body[0])
    if appended is None or not produces(appended[1]):
        return None
    name = appended[0]
    init = sibling(getattr(index.parent(loop_node), "body", ()), loop_node, -1)
    if init is None or empty_list_named(init) != name:
        return None
    consumer = direct_consumer(span.method, loop_node, name, imports)
    if consumer is not None:
        node, kind, dim = consumer
        return Site((init, loop_node), kind, dim, None, name, argument, appended[1], node)
    return Site((init, loop_node), "unbind", None, "list", name, argument, appended[1])


def direct_consumer(
    method: cst.FunctionDef, replaced_last: cst.CSTNode, name: str, imports: ImportTable
) -> Consumer | None:
    """(node, kind, dim) of the one use of list `name` after `replaced_last` in the method,
    when that use combines it (`torch.stack(name, dim=d)`, `torch.cat`, `sum`, `.mean`)."""
    index = NodeIndex.of(method)
    uses = [
        n
        for n in index.order
        if isinstance(n, cst.Name)
        and n.value == name
        and index.before(replaced_last, n)
        and not index.is_inside(n, replaced_last)
    ]
    if len(uses) != 1 or isinstance(index.parent(uses[0]), cst.AssignTarget):
        return None
    found = _combine(uses[0], index, imports)
    if found is None or found[1] not in ("stack", "cat", "sum", "mean"):
        return None
    return found[0], found[1], found[2]


def _combine(
    value: cst.BaseExpression, index: NodeIndex, imports: ImportTable, collection_text: str | None = None
) -> _Combined | None:
    parent = index.parent(value)
    if isinstance(parent, (cst.Return, cst.Assign)) and isinstance(value, cst.ListComp):
        return value, "unbind", None, "list"
    if not isinstance(parent, cst.Arg):
        return None
    call = index.parent(parent)
    if not isinstance(call, cst.Call) or call.args[0] is not parent:
        return None
    name = imports.qualify(call.func) or code_of(call.func)
    if name in ("tuple", "list") and len(call.args) == 1:
        # `torch.stack(tuple(net(sa) for net in self.nets), dim=1)`: what combines the
        # members' outputs is the stack (or cat) around the tuple.
        around = _combine(call, index, imports, collection_text)
        if around is not None and around[1] in ("stack", "cat", "mean"):
            return around
        return call, "unbind", None, name
    if name == "sum" and len(call.args) == 1:
        # `sum(...) / len(self.members)`: the mean over the members.
        divided = index.parent(call)
        if (
            isinstance(divided, cst.BinaryOperation)
            and isinstance(divided.operator, cst.Divide)
            and divided.left is call
            and isinstance(divided.right, cst.Call)
            and code_of(divided.right.func) == "len"
            and len(divided.right.args) == 1
            and collection_text is not None
            and code_of(divided.right.args[0].value) == collection_text
        ):
            return divided, "mean", None, None
        return call, "sum", None, None
    if name not in ("torch.stack", "torch.cat") or len(call.args) > 2:
        return None
    dim = arg_at(call, 1, "dim")
    if name.endswith(".cat"):
        return (call, "cat", str(int_value(dim)), None) if dim is not None and int_value(dim) is not None else None
    dim_text = "0" if dim is None else code_of(dim)
    outer = index.parent(call)
    if isinstance(outer, cst.Attribute) and outer.attr.value == "mean":
        mean_call = index.parent(outer)
        if isinstance(mean_call, cst.Call) and mean_call.func is outer and len(mean_call.args) == 1:
            axis = arg_at(mean_call, 0, "dim")
            if axis is not None and code_of(axis) == dim_text:
                return mean_call, "mean", None, None
    return call, "stack", dim_text, None


def _inlined(body: list[cst.CSTNode], loop_node: cst.For, index: NodeIndex) -> list[cst.CSTNode] | None:
    """The loop's body with its temporaries inlined: `h = block(x)`, `y = head(h)`,
    `outs.append(y)` is the one statement `outs.append(head(block(x)))`, when each
    temporary is a plain name read once by what follows it in the body (a name may be
    assigned again: `h = f(h)`), and never read after the loop. The body itself when there is nothing to inline."""
    if len(body) == 1:
        return body
    *temporaries, last = body
    after = [n for n in index.order if index.before(loop_node, n) and not index.is_inside(n, loop_node)]
    read_after = {n.value for n in after if isinstance(n, cst.Name)}
    for position in reversed(range(len(temporaries))):
        statement = temporaries[position]
        small = single_statement(statement)
        if not (
            isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name)
        ):
            return None
        name = small.targets[0].target.value
        uses = [n for n in walk(last) if isinstance(n, cst.Name) and n.value == name]
        # The temporaries after this one are inlined into `last` already, so its one use
        # there is the only read of this binding (`h = f(x); h = g(h)` chains too).
        if name in read_after or len(uses) != 1:
            return None
        value = small.value
        if not isinstance(value, (cst.Call, cst.Name, cst.Attribute, cst.Subscript)):
            value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        last = replaced(last, {id(uses[0]): value})
    return [last]


def _accumulated(
    statement: cst.CSTNode, loop_node: cst.For, index: NodeIndex
) -> tuple[cst.CSTNode, str, cst.BaseExpression] | None:
    """(`total = 0`, `total`, value) for a loop body `total = total + value` (or `+=`)
    right after `total = 0`: the members' results summed."""
    small = single_statement(statement)
    if (
        isinstance(small, cst.AugAssign)
        and isinstance(small.operator, cst.AddAssign)
        and isinstance(small.target, cst.Name)
    ):
        name, value = small.target.value, small.value
    elif (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
        and isinstance(small.value, cst.BinaryOperation)
        and isinstance(small.value.operator, cst.Add)
    ):
        name = small.targets[0].target.value
        left, right = small.value.left, small.value.right
        if isinstance(left, cst.Name) and left.value == name:
            value = right
        elif isinstance(right, cst.Name) and right.value == name:
            value = left
        else:
            return None
    else:
        return None
    if name in names_in(value):
        return None
    init = sibling(getattr(index.parent(loop_node), "body", ()), loop_node, -1)
    start = single_statement(init) if init is not None else None
    if init is None or not (
        isinstance(start, cst.Assign)
        and len(start.targets) == 1
        and code_of(start.targets[0].target) == name
        and isinstance(start.value, (cst.Integer, cst.Float))
        and float(start.value.value) == 0
    ):
        return None
    return init, name, value


# Calls that allocate a tensor every member then writes a part of; what it held before
# is overwritten everywhere, so only its dtype matters (the stacked result has the
# computation's).
_ALLOCATIONS = {"torch.zeros", "torch.empty", "torch.zeros_like", "torch.empty_like"}


_ALLOCATING_METHODS = {"new_zeros", "new_empty"}


def _indexed_write(
    statement: cst.CSTNode, span: LoopSpan, index: NodeIndex, imports: ImportTable
) -> tuple[cst.CSTNode, str, int, cst.BaseExpression] | None:
    """(the allocating statement, `out`, member axis, value) for a loop body
    `out[:, i] = value` right after `out = torch.zeros(...)` (or `h.new_empty(...)`):
    every member writes its own entry along one axis of a preallocated tensor, which is
    the members' results stacked along that axis."""
    small = single_statement(statement)
    if not isinstance(small, cst.Assign) or len(small.targets) != 1 or span.index_var is None:
        return None
    target = small.targets[0].target
    if not isinstance(target, cst.Subscript) or not isinstance(target.value, cst.Name):
        return None
    axis = None
    for position, element in enumerate(target.slice):
        inner = element.slice
        if (
            isinstance(inner, cst.Index)
            and isinstance(inner.value, cst.Name)
            and inner.value.value == span.index_var
            and axis is None
        ):
            axis = position
        elif not (isinstance(inner, cst.Slice) and inner.lower is None and inner.upper is None and inner.step is None):
            return None
    name = target.value.value
    init = sibling(getattr(index.parent(span.node), "body", ()), span.node, -1)
    allocated = single_statement(init) if init is not None else None
    if (
        axis is None
        or init is None
        or not isinstance(allocated, cst.Assign)
        or len(allocated.targets) != 1
        or code_of(allocated.targets[0].target) != name
        or not isinstance(allocated.value, cst.Call)
    ):
        return None
    func = allocated.value.func
    dtype = arg_at(allocated.value, 99, "dtype")
    if isinstance(func, cst.Attribute) and func.attr.value in _ALLOCATING_METHODS:
        pass
    elif imports.qualify(func) in _ALLOCATIONS and dtype is not None:
        pass  # an explicit dtype (`dtype=x.dtype`): without one it is the default, which may differ
    else:
        return None
    if dtype is not None and code_of(dtype) != f"{span.read}.dtype":
        return None
    return init, name, axis, small.value


def sibling(statements: Iterable[cst.CSTNode], statement: cst.CSTNode, step: int) -> cst.CSTNode | None:
    """The statement `step` places after `statement` in its block (-1: the one before)."""
    statements = list(statements)
    position = next((i for i, s in enumerate(statements) if s is statement), None)
    if position is None or not 0 <= position + step < len(statements):
        return None
    return statements[position + step]


def single_statement(statement: cst.CSTNode) -> cst.BaseSmallStatement | None:
    """The one small statement of a simple statement line (`x = f(x)`), else None."""
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        return statement.body[0]
    return None


def empty_list_named(statement: cst.CSTNode) -> str | None:
    """`outs` for a statement `outs = []`."""
    small = single_statement(statement)
    if (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
        and isinstance(small.value, cst.List)
        and not small.value.elements
    ):
        return small.targets[0].target.value
    return None


def append_of(statement: cst.CSTNode) -> tuple[str, cst.BaseExpression] | None:
    """(`outs`, value) for a statement `outs.append(value)`; the list as written, so
    `self.heads.append(...)` gives "self.heads"."""
    small = single_statement(statement)
    if (
        isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Call)
        and isinstance(small.value.func, cst.Attribute)
        and small.value.func.attr.value == "append"
        and len(small.value.args) == 1
    ):
        return code_of(small.value.func.value), small.value.args[0].value
    return None


class _Replace(cst.CSTTransformer):
    """Replace given nodes (by identity) with new ones."""

    def __init__(self, replacements: Mapping[int, cst.CSTNode]) -> None:
        self.replacements = replacements

    # libcst types `on_leave` as keeping each node's own type; this puts any node in place.
    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        return self.replacements.get(id(original_node), updated_node)


def replaced(node: cst.CSTNode, replacements: Mapping[int, cst.CSTNode]) -> cst.CSTNode:
    """`node` with the nodes inside it that `replacements` names (by id) replaced."""
    new = node.visit(_Replace(replacements))
    assert isinstance(new, cst.CSTNode)  # `_Replace` only puts nodes in place, it removes none
    return new


@dataclass
class Combine:
    """How a member loop's results are combined (see the module docstring)."""

    text: str | None = None  # in words, for messages; None when the analysis cannot tell
    site: Site | None = None  # what a rewrite replaces, with any expression around the call
    # The site's element is the member call itself, with one positional argument: what
    # the rewrites that replace the call alone (a wide layer, a shared instance) need.
    call_alone: bool = False

    @property
    def plain_site(self) -> Site | None:
        return self.site if self.call_alone else None


def combine_at(span: LoopSpan | None, imports: ImportTable, text: str | None) -> Combine:
    """The loop's `Combine`: `text` from the analysis, the site from the tree."""
    site = find_site(span, imports) if span is not None else None
    call_alone = (
        site is not None
        and span is not None
        and site.element is span.call
        and len(span.call.args) == 1
        and not span.call.args[0].keyword
        and not span.call.args[0].star
    )
    return Combine(text, site, call_alone)
