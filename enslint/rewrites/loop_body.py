"""The call-time rewrite of a whole `for i in range(n)` body: several collections per
member, several sliced tensors, preallocated outputs.

Decomposition and per-variable models run two or three collections per index, on slices
of one or more tensors, into lists or preallocated tensors:

    for i in range(self.channels):
        seasonal_output[:, i, :] = self.Linear_Seasonal[i](seasonal_init[:, i, :])
        trend_output[:, i, :] = self.Linear_Trend[i](trend_init[:, i, :])

The body becomes a function of one member of each collection and one slice of each
tensor, run for every index at once by `vmap_members` (call_time.py: the members are
kept, their tensors stacked per call):

    def per_member(linear_seasonal, linear_trend, seasonal_init_i, trend_init_i):
        return linear_seasonal(seasonal_init_i), linear_trend(trend_init_i)

    seasonal_output[:, : self.channels, :], trend_output[:, : self.channels, :] = vmap_members(
        zip(self.Linear_Seasonal, self.Linear_Trend), per_member, seasonal_init, trend_init, in_dims=(1, 1), out_dims=1
    )

A preallocated output keeps its allocation and receives the members' results in the
region the loop wrote (its dtype and the rest of it as they were); a list appended to
becomes the stacked results, and a `torch.stack(outs, dim=d)` that only combines it is
folded into `out_dims`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import libcst as cst

from enslint.analysis import kinds
from enslint.analysis.combine import append_of, direct_consumer, empty_list_named, sibling, single_statement
from enslint.analysis.imports import ImportTable
from enslint.analysis.loops import MemberLoop
from enslint.analysis.syntax import NodeIndex, arg_at, code_of, int_value, names_in, target_names, walk
from enslint.rewrites.reasons import Reason, Rejection, reject

NodeT = TypeVar("NodeT", bound=cst.CSTNode)
FUNCTION = "per_member"
HELPER = kinds.CALL_TIME_RUN


@dataclass
class _Output:
    """Where one of the body's results goes: a list appended to, or a region written."""

    value: cst.BaseExpression
    listed: str | None = None  # the list appended to
    written: cst.Subscript | None = None  # `out[:, i, :]`
    axis: int = 0  # the written dim that runs over the members


@dataclass
class Body:
    """The loop body as a function of members and slices, and where its results go."""

    members: dict[str, str] = field(default_factory=dict)  # collection as written -> parameter
    slices: dict[tuple[str, int], str] = field(default_factory=dict)  # (tensor, dim) -> parameter
    statements: list[cst.BaseStatement] = field(default_factory=list)  # the temporaries
    outputs: list[_Output] = field(default_factory=list)


class _Substitute(cst.CSTTransformer):
    """`self.heads[i]` -> the member parameter, `x[:, i, :]` -> the slice parameter."""

    def __init__(self, replacements: dict[int, str]) -> None:
        self.replacements = replacements

    def leave_Subscript(self, original_node: cst.Subscript, updated_node: cst.Subscript) -> cst.BaseExpression:
        name = self.replacements.get(id(original_node))
        return cst.Name(name) if name is not None else updated_node


def loop_body_code(loop: MemberLoop, imports: ImportTable) -> tuple[list, str] | Rejection:
    """(what to replace: a node or a (first, last) pair, and consumers; the code), or the
    reason the body cannot be run under vmap."""
    node = loop.node
    if not isinstance(node, cst.For) or loop.index_var is None or not isinstance(node.target, cst.Name):
        return reject(Reason.BODY_NOT_INDEXED_RANGE)
    bound = _range_bound(node)
    if bound is None:
        return reject(Reason.BODY_NOT_INDEXED_RANGE)
    body = _body(loop)
    if isinstance(body, Rejection):
        return body
    method = loop.cls.methods[loop.method]
    index = NodeIndex.of(method)
    block = list(getattr(index.parent(node), "body", ()))
    first: cst.CSTNode = node
    as_list = False  # one list of results no stack consumes: a list it stays
    consumers: list[tuple[cst.CSTNode, str]] = []
    targets, out_dims = [], []
    for output in body.outputs:
        if output.written is not None:
            targets.append(_region(output.written, loop.index_var, bound))
            out_dims.append(output.axis)
            continue
        init = _list_created_before(block, node, output.listed)
        if init is None:
            return reject(Reason.BODY_LIST_NOT_FRESH, listed=output.listed)
        first = init if index.before(init, first) else first
        listed = output.listed
        assert listed is not None  # an output is written or listed
        folded = _stacked_right_after(block, node, listed, imports) if len(body.outputs) == 1 else None
        if folded is not None:
            last, target, dim = folded
            targets.append(target)
            out_dims.append(dim)
            return [(first, last)], _render(loop, body, targets, out_dims, False, _opens_body(index, block, first))
        found = direct_consumer(method, node, listed, imports)
        if found is not None and found[1] == "stack" and found[2] is not None:
            consumers.append((found[0], listed))
            out_dims.append(int(found[2]))
            targets.append(listed)
        elif len(body.outputs) == 1:
            targets.append(listed)
            out_dims.append(0)
            as_list = True
        else:
            return reject(Reason.BODY_LIST_NOT_ONLY_STACKED, listed=listed)
    code = _render(loop, body, targets, out_dims, as_list, _opens_body(index, block, first))
    replaced = (first, node) if first is not node else node
    return [replaced, *consumers], code


def _stacked_right_after(
    block: list, loop_node: cst.CSTNode, name: str | None, imports: ImportTable
) -> tuple[cst.CSTNode, str, int] | None:
    """(the statement, its target, the dim) for `y = torch.stack(name, dim=d)` or
    `return torch.stack(name, dim=d)` right after the loop, `y` a plain name (often `name`
    itself; "return" for the return): the loop and it become one statement (which keeps
    that line's comment)."""
    statement = sibling(block, loop_node, 1)
    if statement is None:
        return None
    small = single_statement(statement)
    if isinstance(small, cst.Return) and small.value is not None:
        target = "return"
    elif isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
        target = small.targets[0].target.value
    else:
        return None
    value = small.value
    if not isinstance(value, cst.Call) or imports.qualify(value.func) != "torch.stack" or not value.args:
        return None
    if code_of(value.args[0].value) != name or value.args[0].keyword is not None:
        return None
    dim_arg = arg_at(value, 1, "dim")
    dim = int_value(dim_arg) if dim_arg is not None else 0
    if dim is None or dim < 0 or len(value.args) > 2:
        return None
    return statement, target, dim


def _range_bound(node: cst.For) -> str | None:
    """`n` of `range(n)` or `range(0, n)`."""
    call = node.iter
    if not isinstance(call, cst.Call) or code_of(call.func) != "range" or any(a.keyword for a in call.args):
        return None
    if len(call.args) == 1:
        return code_of(call.args[0].value)
    if len(call.args) == 2 and code_of(call.args[0].value) == "0":
        return code_of(call.args[1].value)
    return None


def _body(loop: MemberLoop) -> Body | Rejection:
    assert isinstance(loop.node, cst.For)
    if not isinstance(loop.node.body, cst.IndentedBlock):
        return reject(Reason.BODY_ON_FOR_LINE)
    statements: list[cst.BaseStatement] = list(loop.node.body.body)
    body = Body()
    replacements = _members_and_slices(loop, statements, body)
    if set(body.members) != {text for _, text in loop.collections}:
        return reject(Reason.BODY_NOT_ALL_INDEXED)
    assigned: set[str] = set()
    for statement in statements:
        problem = _take(statement, loop, body, assigned)
        if problem is not None:
            return problem
    if not body.outputs:
        return reject(Reason.BODY_KEEPS_NOTHING)
    substituted = _Substitute(replacements)
    body.statements = [_visited(s, substituted) for s in body.statements]
    for output in body.outputs:
        output.value = _visited(output.value, substituted)
    leftover = {n for s in body.statements for n in names_in(s)} | {n for o in body.outputs for n in names_in(o.value)}
    if loop.index_var in leftover:
        return reject(Reason.BODY_INDEX_USED, index=loop.index_var)
    if leftover & (set(loop.varying) - assigned - {loop.index_var}):
        return reject(Reason.BODY_MORE_THAN_MEMBERS)
    if assigned & _used_after(loop):
        return reject(Reason.BODY_NAME_READ_AFTER)
    return body


def _members_and_slices(loop: MemberLoop, statements: list, body: Body) -> dict[int, str]:
    """Name a parameter for each collection indexed (`self.heads[i]`) and each tensor
    sliced by the index (`x[:, i, :]`); returns which node each one replaces."""
    taken = set(loop.method_names)
    collections = {text for _, text in loop.collections}
    replacements: dict[int, str] = {}
    # What the body writes (`out[:, i, :] = ...`) is an output, not a slice it reads.
    written = {
        id(t.target) for s in statements if isinstance(small := single_statement(s), cst.Assign) for t in small.targets
    }
    for node in (n for statement in statements for n in walk(statement)):
        if not isinstance(node, cst.Subscript) or not _indexed_by(node, loop.index_var) or id(node) in written:
            continue
        owner = code_of(node.value)
        if owner in collections:
            if owner not in body.members:
                body.members[owner] = _fresh(_singular(owner.rsplit(".", 1)[-1]), taken)
            replacements[id(node)] = body.members[owner]
            continue
        dim = _sliced_dim(node, loop.index_var)
        if dim is None or not isinstance(node.value, cst.Name) or node.value.value in loop.varying:
            continue
        key = (node.value.value, dim)
        if key not in body.slices:
            body.slices[key] = _fresh(f"{node.value.value}_{loop.index_var}", taken)
        replacements[id(node)] = body.slices[key]
    return replacements


def _take(statement: cst.BaseStatement, loop: MemberLoop, body: Body, assigned: set[str]) -> Rejection | None:
    """Add one statement of the loop's body to `body`: an output (an append, a write
    at the index) or a temporary before the outputs; the reason it is neither."""
    small = single_statement(statement)
    appended = append_of(statement)
    if appended is not None and "." not in appended[0]:
        body.outputs.append(_Output(appended[1], listed=appended[0]))
        return None
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        target = small.targets[0].target
        if (
            isinstance(target, cst.Subscript)
            and isinstance(target.value, cst.Name)
            and _indexed_by(target, loop.index_var)
        ):
            axis = _sliced_dim(target, loop.index_var)
            if axis is None:
                return reject(Reason.BODY_WRITES_NOT_ENTRY, target=code_of(target))
            body.outputs.append(_Output(small.value, written=target, axis=axis))
            return None
        if isinstance(target, cst.Name) and not body.outputs:
            if target.value in names_in(small.value) and target.value not in assigned:
                return reject(Reason.BODY_CARRIES_VALUE, name=target.value)
            assigned.add(target.value)
            body.statements.append(statement)
            return None
    return reject(Reason.BODY_DOES_MORE, code=code_of(statement).strip())


def _visited(node: NodeT, transformer: cst.CSTTransformer) -> NodeT:
    """`node` with the transformer's replacements made inside it (never of it)."""
    result = node.visit(transformer)
    assert isinstance(result, type(node))
    return result


def _used_after(loop: MemberLoop) -> set[str]:
    method = loop.cls.methods[loop.method]
    index = NodeIndex.of(method)
    return {
        n.value
        for n in index.order
        if isinstance(n, cst.Name) and index.before(loop.node, n) and not index.is_inside(n, loop.node)
    }


def _indexed_by(node: cst.Subscript, index_var: str | None) -> bool:
    return any(
        isinstance(e.slice, cst.Index) and isinstance(e.slice.value, cst.Name) and e.slice.value.value == index_var
        for e in node.slice
    )


def _sliced_dim(node: cst.Subscript, index_var: str | None) -> int | None:
    """The dim of `x[:, i, :]` that the index picks, when every other element is a full
    slice `:` (a leading `...` counts the dims from the end)."""
    elements = list(node.slice)
    dims = []
    for position, element in enumerate(elements):
        inner = element.slice
        if isinstance(inner, cst.Index) and isinstance(inner.value, cst.Name) and inner.value.value == index_var:
            dims.append(position)
        elif isinstance(inner, cst.Index) and isinstance(inner.value, cst.Ellipsis) and position == 0:
            continue
        elif not (isinstance(inner, cst.Slice) and inner.lower is None and inner.upper is None and inner.step is None):
            return None
    if len(dims) != 1:
        return None
    leading_ellipsis = isinstance(elements[0].slice, cst.Index) and isinstance(elements[0].slice.value, cst.Ellipsis)
    return dims[0] - len(elements) if leading_ellipsis else dims[0]


def _region(written: cst.Subscript, index_var: str, bound: str) -> str:
    """`out[:, : n, :]`: the part of `out` that `out[:, i, :]` covers over `range(n)`."""
    parts = [
        f": {bound}" if _indexed_by(cst.Subscript(written.value, [element]), index_var) else code_of(element.slice)
        for element in written.slice
    ]
    return f"{code_of(written.value)}[{', '.join(parts)}]"


def _list_created_before(block: list, loop_node: cst.CSTNode, name: str | None) -> cst.CSTNode | None:
    previous = sibling(block, loop_node, -1)
    while previous is not None and name is not None:
        if empty_list_named(previous) == name:
            return previous
        if name in names_in(previous) or name in _assigned(previous):
            return None
        previous = sibling(block, previous, -1)
    return None


def _assigned(statement: cst.CSTNode) -> set[str]:
    small = single_statement(statement)
    if isinstance(small, cst.Assign):
        return {n for t in small.targets for n in target_names(t.target)}
    return set()


def _singular(attr: str) -> str:
    name = attr.lower()
    if name.endswith("ies") and len(name) > 4:
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss") and len(name) > 3:
        return name[:-1]
    return name


def _line(statement: cst.BaseStatement) -> str:
    """One statement of the body as a line of the function, its comment kept."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return code_of(statement).strip()
    code = "; ".join(code_of(small).strip() for small in statement.body)
    comment = statement.trailing_whitespace.comment
    return f"{code}  {comment.value}" if comment else code


def _fresh(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _opens_body(index: NodeIndex, block: list, statement: cst.CSTNode) -> bool:
    """Whether `statement` is the first of a function's body: the one place a nested
    definition has no blank line before it (ruff's and black's formatters add one at the
    start of an `if` or `for` block too)."""
    if sibling(block, statement, -1) is not None:
        return False
    suite = index.parent(statement)
    owner = index.parent(suite) if suite is not None else None
    return isinstance(owner, (cst.FunctionDef, cst.ClassDef))


def _render(
    loop: MemberLoop, body: Body, targets: list[str], out_dims: list[int], as_list: bool, opens_block: bool
) -> str:
    params = [*body.members.values(), *body.slices.values()]
    function = _fresh(FUNCTION, set(loop.method_names) | set(params))
    # PEP 8: a blank line before a nested definition, but at the start of a function.
    lines = [*([] if opens_block else [""]), f"def {function}({', '.join(params)}):"]
    lines += [f"    {_line(s)}" for s in body.statements]
    lines.append(f"    return {', '.join(code_of(o.value) for o in body.outputs)}")
    members = list(body.members)
    collections = members[0] if len(members) == 1 else f"zip({', '.join(members)})"
    tensors = "".join(f", {tensor}" for tensor, _ in body.slices)
    in_dims = ", ".join(str(dim) for _, dim in body.slices)
    in_dims = f"({in_dims},)" if len(body.slices) == 1 else f"({in_dims})"
    dims = str(out_dims[0]) if len(set(out_dims)) == 1 else f"({', '.join(map(str, out_dims))})"
    out = "" if dims == "0" else f", out_dims={dims}"
    call = f"{HELPER}({collections}, {function}{tensors}, in_dims={in_dims}{out})"
    if as_list:
        call = f"list({call}.unbind(0))"
    assigned = f"return {call}" if targets == ["return"] else f"{', '.join(targets)} = {call}"
    lines += ["", assigned]
    return "\n".join(lines)
