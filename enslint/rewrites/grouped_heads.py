"""The seed's nest fused: E groups of H `nn.Linear(a, b)` heads, group g reading slice g
of one tensor, become one batched matmul for all E x H heads.

    self.ensemble = nn.ModuleList()                 self.ensemble_weight = nn.Parameter(...)  # (E, a, H * b)
    for g in range(E):                              self.ensemble_bias = nn.Parameter(...)    # (E, 1, H * b)
        self.ensemble.append(nn.ModuleList())       ...
        for _ in range(H):                   ->
            self.ensemble[g].append(nn.Linear(a, b))

    groups = []                                     x_groups = x.movedim(1, 0)
    for g, heads in enumerate(self.ensemble):       fused = torch.baddbmm(bias, x_groups..., weight)
        outs = []                                   groups = list(fused.unflatten(...).movedim(...).unbind(0))
        for head in heads:
            outs.append(head(x[:, g, :]))
        groups.append(torch.stack(outs, dim=1))

Head (g, h)'s weight is the transposed block `weight[g][:, h*b:(h+1)*b]`; a
load-state-dict pre-hook maps an old checkpoint's `ensemble.{g}.{h}.weight`/`.bias`
onto the fused tensors. What consumes `groups` afterwards is left as it is. Offered only
for exactly this shape of code; unsafe, since the state_dict keys change.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from enslint.analysis import kinds
from enslint.analysis.combine import append_of, direct_consumer, empty_list_named, sibling
from enslint.analysis.context import Member
from enslint.analysis.imports import ImportTable
from enslint.analysis.kinds import GROUP, LINEAR, SAME, SLICE
from enslint.analysis.loops import MemberLoop
from enslint.analysis.syntax import (
    NodeIndex,
    arg_at,
    attribute_uses,
    code_of,
    first_param,
    int_value,
    names_in,
)
from enslint.findings import Form, NodeEdit, RuleFix
from enslint.rewrites.common import building_statements, combined_over_first, nn_name
from enslint.rewrites.common import torch_name as torch_name_for
from enslint.rewrites.fix_assembly import unsafe_rewrite
from enslint.rewrites.helper_module import HelperHome
from enslint.rewrites.reasons import NOT_APPLICABLE, Reason, Rejection, reject

HOOK = kinds.GROUPED_HEAD_HOOK
WIDE_HOOK = kinds.NESTED_HEAD_HOOK


def _per_group_list(
    body: Sequence[cst.BaseStatement | cst.BaseSmallStatement], inner: MemberLoop
) -> tuple[str, tuple[str, cst.BaseExpression]] | None:
    """(`outs`, the `groups.append(...)` parts) when the outer loop's body is either

    outs = []                                   outs = [head(x[:, g]) for head in heads]
    for head in heads: outs.append(head(...))   groups.append(torch.stack(outs, dim=1))
    groups.append(torch.stack(outs, dim=1))
    """
    if len(inner.calls) != 1 or len(inner.calls[0].node.args) != 1:
        return None
    call = inner.calls[0].node
    if len(body) == 3 and body[1] is inner.node and isinstance(inner.node, cst.For) and not inner.node.orelse:
        outs = empty_list_named(body[0])
        inner_body = inner.node.body.body
        inner_append = append_of(inner_body[0]) if len(inner_body) == 1 else None
        if outs is None or inner_append is None or inner_append != (outs, call):
            return None
    elif len(body) == 2 and isinstance(inner.node, cst.CompFor):
        small = body[0].body[0] if isinstance(body[0], cst.SimpleStatementLine) and len(body[0].body) == 1 else None
        comprehension = inner.report_node
        if not (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and isinstance(small.targets[0].target, cst.Name)
            and small.value is comprehension
            and isinstance(comprehension, cst.ListComp)
            and comprehension.elt is call
            and comprehension.for_in is inner.node
            and not inner.node.ifs
            and inner.node.inner_for_in is None
        ):
            return None
        outs = small.targets[0].target.value
    else:
        return None
    appended = append_of(body[-1])
    return None if appended is None else (outs, appended)


def grouped_heads_fix(
    outer: MemberLoop, inner: MemberLoop, module: cst.Module, imports: ImportTable, home: HelperHome | None = None
) -> RuleFix | Rejection:
    """The rewrite of a nest of groups of linear heads, or why none (NOT_APPLICABLE when
    the loop is not such a nest)."""
    collection = outer.collection
    member = collection.member
    assert member is not None  # a member loop runs over identical members (analysis/loops.py)
    if member.kind != GROUP or member.inner is None or member.inner.member is None:
        return NOT_APPLICABLE
    head = member.inner.member
    heads = member.inner.size
    groups = collection.size
    found = torch_name_for(imports)
    if found is None:
        return reject(Reason.TORCH_SHADOWED)
    torch_name, add_import = found
    if head.kind != LINEAR or not heads or not groups or torch_name is None or not head.in_size or not head.out_size:
        return reject(Reason.NEST_HEADS, head=head.type_name)
    func = head.text.split("(", 1)[0]
    if head.text != f"{func}({head.in_size}, {head.out_size})":
        return reject(Reason.NEST_HEAD_ARGUMENTS)
    on_one_input = (
        bool(outer.calls)
        and all(c.input == SAME for c in outer.calls)
        and len({c.input_text for c in outer.calls}) == 1
    )
    if (
        not outer.calls
        or not on_one_input
        and any(
            c.input != SLICE or c.slice is None or c.slice.via not in ("index", "select", "unbind") for c in outer.calls
        )
    ):
        return reject(Reason.NEST_INPUTS)
    if on_one_input:
        return _wide_nest(outer, inner, module, imports, head, groups, heads, func, torch_name, add_import, home)
    slice_info = outer.calls[0].slice
    assert slice_info is not None  # every call reads a slice: checked above
    tensor, dim = slice_info.tensor, slice_info.dim
    if not tensor.isidentifier() or tensor in outer.varying:
        return reject(Reason.NEST_SLICED_TENSOR)

    # The forward: `groups = []`, then the outer loop whose body collects each head's
    # output into a list, and `groups.append(torch.stack(outs, ...))`; or one flat
    # comprehension over both, stacked (`_flat_nest`).
    nest = _nest_in_forward(outer, inner, imports)
    flat = _flat_nest(outer, inner, imports) if nest is SPELLING else None
    if isinstance(flat, Rejection):
        return flat
    if flat is None and not isinstance(nest, tuple):
        return nest

    # The construction: one comprehension line, or `self.x = nn.ModuleList()` followed by
    # the one loop that fills it.
    attr = outer.collection_text.split(".", 1)[-1]
    if "." not in outer.collection_text:
        return reject(Reason.NEST_UNREAD)
    init = outer.cls.methods.get("__init__")
    construction = building_statements(outer)
    if init is None or construction is None:
        return reject(Reason.NEST_UNREAD)
    built_uses = sum(
        attribute_uses(node, attr) for node in (construction if isinstance(construction, tuple) else (construction,))
    )
    if attribute_uses(outer.cls.node, attr) != built_uses + 1:  # + the loop's own `self.ensemble`
        return reject(Reason.NEST_UNREAD)
    names = {f"{attr}_weight", f"{attr}_bias", f"{attr}_heads"}
    if any(attribute_uses(outer.cls.node, name) for name in names):
        return reject(Reason.NAME_TAKEN)

    init_self = first_param(init) or "self"
    nn = func.rsplit(".", 1)[0] if "." in func else nn_name(imports, torch_name)
    parameter = f"{nn}.Parameter"
    init_lines = "\n".join(
        [
            f"# {groups} x {heads} `{func}` heads in one weight (groups, in, heads * out)",
            f"{init_self}.{attr}_heads = {heads}",
            f"{init_self}.{attr}_weight = "
            f"{parameter}({torch_name}.empty({groups}, {head.in_size}, {heads} * {head.out_size}))",
            f"{init_self}.{attr}_bias = {parameter}({torch_name}.empty({groups}, 1, {heads} * {head.out_size}))",
            f"bound = ({head.in_size}) ** -0.5  # the default initialisation of {func}",
            f"{nn}.init.uniform_({init_self}.{attr}_weight, -bound, bound)",
            f"{nn}.init.uniform_({init_self}.{attr}_bias, -bound, bound)",
            f'{init_self}.register_load_state_dict_pre_hook({HOOK}("{attr}", {groups}, {heads}))',
        ]
    )
    if any(name in outer.method_names for name in (f"{tensor}_groups", "fused")) or "bound" in names_in(init):
        return reject(Reason.NAME_TAKEN)
    edits = [NodeEdit(construction, init_lines), *_baddbmm_forward(outer, nest, flat, tensor, dim, torch_name, imports)]
    message = (
        f"Fuse all {groups} x {heads} heads into one `{torch_name}.baddbmm` with weights "
        f"({groups}, {head.in_size}, {heads} * {head.out_size})"
    )
    return unsafe_rewrite(Form.GROUPED, message, edits, module, (HOOK,), torch_name, home, add_import)


def _baddbmm_forward(
    outer: MemberLoop,
    nest: tuple[cst.CSTNode, str, int] | Rejection,
    flat: tuple[cst.BaseStatement, cst.Call, int] | None,
    tensor: str,
    dim: str,
    torch_name: str,
    imports: ImportTable,
) -> list[NodeEdit]:
    """The forward's edits of the sliced nest: the groups' slices moved first, one
    baddbmm, and the heads' outputs placed as the loops (`nest`) or the flat
    comprehension (`flat`) combined them."""
    method = outer.cls.methods[outer.method]
    attr = outer.collection_text.split(".", 1)[-1]
    self_name = first_param(method) or "self"
    moved = f"{tensor}_groups"
    fused_lines = [
        "# all heads in one baddbmm: (groups, batch, in) @ (groups, in, heads * out)",
        f"{moved} = {tensor}.movedim({dim}, 0)",
        f"fused = {torch_name}.baddbmm({self_name}.{attr}_bias, {moved}.flatten(1, -2), {self_name}.{attr}_weight)"
        f".unflatten(1, {moved}.shape[1:-1])",
    ]
    every_head = f"fused.unflatten(-1, ({self_name}.{attr}_heads, -1))"  # (groups, ..., heads, out)
    edits: list[NodeEdit] = []
    if flat is not None:
        # The flat list runs group by group, head by head: both axes side by side at the
        # stack's dim, then one.
        statement, stacked, d = flat
        places = _flat_places(d)
        edits.append(NodeEdit(statement, "\n".join(fused_lines) + "\n", before=True))
        placed = f"{every_head}.movedim((0, -2), {places}).flatten{places}"
        edits.append(NodeEdit(stacked, placed))
    else:
        assert isinstance(nest, tuple)  # the loop spelling, when not the flat one
        before, groups_name, stack_dim_value = nest
        group_axis = f"movedim(-2, {stack_dim_value + 1 if stack_dim_value >= 0 else stack_dim_value})"
        per_group = f"{every_head}.{group_axis}"
        # When the list of groups is only combined later (`torch.stack(groups, dim=1)`), the
        # name holds the combined result itself and that expression becomes the name.
        consumer = direct_consumer(method, outer.node, groups_name, imports)
        combined = None if consumer is None else combined_over_first(consumer[1], consumer[2], per_group)
        fused_lines.append(
            f"{groups_name} = {combined}" if combined else f"{groups_name} = list({per_group}.unbind(0))"
        )
        edits.append(NodeEdit((before, outer.node), "\n".join(fused_lines)))
        if combined and consumer is not None:  # `combined` is only made from a consumer
            edits.append(NodeEdit(consumer[0], groups_name))
    return edits


SPELLING = reject(Reason.NEST_SPELLING)


def _nest_in_forward(
    outer: MemberLoop, inner: MemberLoop, imports: ImportTable
) -> tuple[cst.CSTNode, str, int] | Rejection:
    """(`groups = []`, `groups`, the per-group stack's dim) for the loop spelling of a
    nest; SPELLING when the loops are not written that way, NEST_UNREAD when the lists
    they fill are not stacked and collected that way."""
    if not isinstance(outer.node, cst.For) or outer.node.orelse:
        return SPELLING
    found = _per_group_list(outer.node.body.body, inner)
    if found is None:
        return SPELLING
    outs, (groups_name, per_group) = found
    if not (
        isinstance(per_group, cst.Call)
        and imports.qualify(per_group.func) == "torch.stack"
        and code_of(per_group.args[0].value) == outs
        and len(per_group.args) <= 2
    ):
        return reject(Reason.NEST_UNREAD)
    stack_dim = arg_at(per_group, 1, "dim")
    dim = 0 if stack_dim is None else int_value(stack_dim)
    if dim is None:
        return reject(Reason.NEST_UNREAD)
    index = NodeIndex.of(outer.cls.methods[outer.method])
    before = sibling(getattr(index.parent(outer.node), "body", ()), outer.node, -1)
    if before is None or empty_list_named(before) != groups_name:
        return reject(Reason.NEST_UNREAD)
    return before, groups_name, dim


def _flat_nest(
    outer: MemberLoop, inner: MemberLoop, imports: ImportTable
) -> tuple[cst.BaseStatement, cst.Call, int] | Rejection | None:
    """(the statement, the `torch.stack` call, its dim) for a nest spelled as one flat
    comprehension whose element is the head's call, stacked along a dim counted from
    the front: `torch.stack([h(z[:, g]) for g, hs in enumerate(self.groups) for h in hs],
    dim=1)`. None when the nest is not spelled so."""
    clause = outer.node
    if not isinstance(clause, cst.CompFor) or clause.ifs or clause.inner_for_in is not inner.node:
        return None
    if not isinstance(inner.node, cst.CompFor) or inner.node.ifs or inner.node.inner_for_in is not None:
        return None
    index = NodeIndex.of(outer.cls.methods[outer.method])
    comprehension = index.parent(clause)
    if not isinstance(comprehension, cst.ListComp) or len(inner.calls) != 1:
        return None
    if comprehension.elt is not inner.calls[0].node:
        return None
    argument = index.parent(comprehension)
    stacked = index.parent(argument) if isinstance(argument, cst.Arg) else None
    if (
        not isinstance(stacked, cst.Call)
        or imports.qualify(stacked.func) != "torch.stack"
        or stacked.args[0] is not argument
        or len(stacked.args) > 2
    ):
        return None
    written = arg_at(stacked, 1, "dim")
    d = 0 if written is None else int_value(written)
    if d is None:
        return None
    statement = next((a for a in index.ancestors(stacked) if isinstance(a, cst.SimpleStatementLine)), None)
    if statement is None:
        return None
    return statement, stacked, d


def _flat_places(d: int) -> tuple[int, int]:
    """Where the groups' and the heads' axes go so that flattening them puts the flat
    list's axis at `d`, as `torch.stack(..., dim=d)` would: (d, d + 1), or (d - 1, d)
    counted from the end."""
    return (d, d + 1) if d >= 0 else (d - 1, d)


def _wide_nest(
    outer: MemberLoop,
    inner: MemberLoop,
    module: cst.Module,
    imports: ImportTable,
    head: Member,
    groups: str,
    heads: str,
    func: str,
    torch_name: str,
    add_import: bool,
    home: HelperHome | None,
) -> RuleFix | Rejection:
    """Groups of linear heads that all read one input: one wide layer for every head,
    its output unflattened to (..., groups, heads, out) and the two axes moved to where
    the loops stacked them (`movedim` with non-negative places works for any rank)."""
    found = _nest_in_forward(outer, inner, imports)
    flat = _flat_nest(outer, inner, imports) if found is SPELLING else None
    if isinstance(flat, Rejection):
        return flat
    if flat is None and not isinstance(found, tuple):
        return SPELLING
    head_dim = found[2] if isinstance(found, tuple) else 0
    if head_dim < 0:
        return reject(Reason.NEST_DIM_FROM_END)
    attr = outer.collection_text.split(".", 1)[-1]
    construction = building_statements(outer)
    init = outer.cls.methods.get("__init__")
    if "." not in outer.collection_text or init is None or construction is None:
        return reject(Reason.NEST_NOT_ONE_BUILDER)
    built_uses = sum(
        attribute_uses(node, attr) for node in (construction if isinstance(construction, tuple) else (construction,))
    )
    if attribute_uses(outer.cls.node, attr) != built_uses + 1:
        return reject(Reason.NEST_USED_ELSEWHERE, collection=outer.collection_text)
    shape_attr = f"{attr}_shape"
    if attribute_uses(outer.cls.node, shape_attr):
        return reject(Reason.NAME_TAKEN)
    init_self = first_param(init) or "self"
    assert head.out_size is not None  # grouped_heads_fix checked the head's sizes
    width = " * ".join([str(groups), str(heads)] + ([] if head.out_size == "1" else [head.out_size]))
    init_lines = "\n".join(
        [
            f"# {groups} groups of {heads} `{func}` heads as one layer: one call for all",
            f"{init_self}.{attr} = {func}({head.in_size}, {width})",
            f"{init_self}.{shape_attr} = ({groups}, {heads})",
            f"{init_self}.{attr}.register_load_state_dict_pre_hook({WIDE_HOOK}({groups}, {heads}))",
        ]
    )
    method = outer.cls.methods[outer.method]
    self_name = first_param(method) or "self"
    argument = code_of(inner.calls[0].node.args[0].value)
    every_head = f"{self_name}.{attr}({argument}).unflatten(-1, (*{self_name}.{shape_attr}, -1))"
    message = f"Fuse all {groups} x {heads} heads into one `{func}({head.in_size}, {width})`"
    if flat is not None:  # group by group, head by head: both axes at the stack's dim, then one
        _, stacked, d = flat
        places = _flat_places(d)
        moved = "" if places == (-3, -2) else f".movedim((-3, -2), {places})"
        code = f"{every_head}{moved}.flatten{places}"
        edits = [NodeEdit(construction, init_lines), NodeEdit(stacked, code)]
        return unsafe_rewrite(Form.GROUPED, message, edits, module, (WIDE_HOOK,), torch_name, home, add_import)
    assert isinstance(found, tuple)  # the loop spelling, when not the flat one
    before, groups_name, _ = found
    consumer = direct_consumer(method, outer.node, groups_name, imports)
    t = None  # the literal dim a `torch.stack` of the groups stacks them along
    if consumer is not None and consumer[1] == "stack":
        assert consumer[2] is not None  # a stack's dim is always written out ("0" when omitted)
        t = int_value(cst.parse_expression(consumer[2]))
    combined: str | None
    if t is not None and t >= 0:
        # Groups stacked at t, each group's heads at s: heads land at s + 1 when s >= t.
        combined = f"{every_head}.movedim((-3, -2), ({t}, {head_dim + 1 if head_dim >= t else head_dim}))"
    else:
        first = f"{every_head}.movedim((-3, -2), (0, {head_dim + 1}))"  # groups first
        combined = None if consumer is None else combined_over_first(consumer[1], consumer[2], first)
        if combined is None:
            consumer = None
            combined = f"list({first}.unbind(0))"
    edits = [NodeEdit(construction, init_lines), NodeEdit((before, outer.node), f"{groups_name} = {combined}")]
    if consumer is not None:
        edits.append(NodeEdit(consumer[0], groups_name))
    return unsafe_rewrite(Form.GROUPED, message, edits, module, (WIDE_HOOK,), torch_name, home, add_import)
