"""Where a rewrite of a member loop goes, and what the loop's result was.

Both fused rewrites of ENS001 (one wide layer; stacked member weights) replace the same
thing: a loop calling every member on one input, and the code that combines the outputs.
`find_site` recognises the two spellings they handle and says what to replace:

- a comprehension, `torch.stack([m(x) for m in self.members], dim=d)` and its kin
  (`torch.cat(..., dim=d)`, `sum(...)`, `torch.stack(...).mean(d)`, `list(...)`,
  `tuple(...)`, a list comprehension returned as it is): the combining call is replaced;
- `outs = []` directly followed by `for m in self.members: outs.append(m(x))`: the two
  statements become `outs = list(...)`, and whatever consumes `outs` stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from enslint.analysis.loops import MemberLoop
from enslint.analysis.syntax import NodeIndex, arg_at, code_of, int_value

_LIST_MAKERS = (cst.ListComp, cst.GeneratorExp)


@dataclass(frozen=True)
class Site:
    replaced: object  # a node, or a (first, last) pair of statements
    kind: str  # "stack", "cat", "sum", "mean" or "unbind"
    dim: str | None  # the stack's dim as written; the cat's dim
    wrapper: str | None  # "list" or "tuple" around an unbind
    assigned: str | None  # `outs` for the append-loop spelling
    argument: cst.BaseExpression  # the one input every member reads


def _combine(value: cst.BaseExpression, index: NodeIndex, torch_name: str):
    parent = index.parent(value)
    if isinstance(parent, cst.Return) and isinstance(value, cst.ListComp):
        return value, "unbind", None, "list"
    if not isinstance(parent, cst.Arg):
        return None
    call = index.parent(parent)
    if not isinstance(call, cst.Call) or call.args[0] is not parent:
        return None
    name = code_of(call.func)
    if name in ("tuple", "list") and len(call.args) == 1:
        return call, "unbind", None, name
    if name == "sum" and len(call.args) == 1:
        return call, "sum", None, None
    if name not in (f"{torch_name}.stack", f"{torch_name}.cat") or len(call.args) > 2:
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


def find_site(loop: MemberLoop, torch_name: str) -> Site | None:
    if len(loop.calls) != 1:
        return None
    call = loop.calls[0].node
    if len(call.args) != 1 or call.args[0].keyword or call.args[0].star:
        return None
    argument = call.args[0].value
    index = NodeIndex(loop.cls.methods[loop.method])
    if isinstance(loop.node, cst.CompFor):
        comprehension = loop.report_node
        if not isinstance(comprehension, _LIST_MAKERS) or comprehension.elt is not call or loop.node.ifs:
            return None
        if comprehension.for_in is not loop.node or loop.node.inner_for_in is not None:
            return None
        found = _combine(comprehension, index, torch_name)
        return None if found is None else Site(*found, None, argument)
    loop_node = loop.node
    body = loop_node.body.body
    if loop_node.orelse is not None or len(body) != 1 or not isinstance(body[0], cst.SimpleStatementLine):
        return None
    statement = body[0].body[0] if len(body[0].body) == 1 else None
    if not (
        isinstance(statement, cst.Expr)
        and isinstance(statement.value, cst.Call)
        and isinstance(statement.value.func, cst.Attribute)
        and statement.value.func.attr.value == "append"
        and isinstance(statement.value.func.value, cst.Name)
        and len(statement.value.args) == 1
        and statement.value.args[0].value is call
    ):
        return None
    name = statement.value.func.value.value
    siblings = list(getattr(index.parent(loop_node), "body", ()))
    position = next((i for i, s in enumerate(siblings) if s is loop_node), None)
    if not position:
        return None
    init = siblings[position - 1]
    if not (
        isinstance(init, cst.SimpleStatementLine)
        and len(init.body) == 1
        and isinstance(init.body[0], cst.Assign)
        and code_of(init.body[0].targets[0].target) == name
        and isinstance(init.body[0].value, cst.List)
        and not init.body[0].value.elements
    ):
        return None
    return Site((init, loop_node), "unbind", None, "list", name, argument)


def render(site: Site, fused: str, member_axis: int, cat: tuple[int, str]) -> str | None:
    """The code that replaces `site.replaced`, given `fused`, an expression whose
    `member_axis` runs over the members, and `cat`: (the one axis a concatenation may
    run along, the code for it). None when the combine is not supported."""
    if site.kind == "cat":
        if site.dim != str(cat[0]):
            return None
        code = cat[1]
    elif site.kind == "stack":
        same_place = site.dim == str(member_axis)
        code = fused if same_place else f"{fused}.movedim({member_axis}, {site.dim})"
    elif site.kind in ("sum", "mean"):
        code = f"{fused}.{site.kind}({member_axis})"
    else:
        code = f"{site.wrapper}({fused}.unbind({member_axis}))"
    return f"{site.assigned} = {code}" if site.assigned else code
