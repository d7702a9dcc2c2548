"""The rewrite that leaves the members as they are: stacked at call time, run under vmap.

Where the other rewrites replace the collection with fused storage, real code often
needs the members to stay: they are a plain list registered with `add_module`, passed
in, built in a parent class or in `fit()`, or used elsewhere (`self.heads[k](x)` in
another path, loaded in `from_pretrained()`). Then only the loop changes:

    return [h(features) for h in self.heads]
    # becomes
    return list(vmap_members(self.heads, lambda h: h(features), in_dims=()).unbind(0))

`vmap_members` (written once per package, in its helper module) stacks the members'
parameters and buffers with `torch.stack` on each call, and runs what the loop computed
per member once, under `torch.vmap` with `torch.func.functional_call`. Because the
stacked tensors are computed from the members' own parameters, gradients reach every
member (`torch.func.stack_module_state` would make new leaves, which the optimizer does
not hold), and the collection, its state_dict keys and every other use of it stay as
they are.

Unsafe all the same: results match the loop's to floating-point rounding, not bit for
bit, and dropout draws differ. The stacking costs a copy of the members' tensors each
call: on an accelerator, where the E launches dominate, it pays; on a CPU with few
members it may not (`enslint verify` measures it). Not offered for members that keep
running statistics (batch norm in training mode), which vmap cannot update.
"""

from __future__ import annotations

import libcst as cst

from enslint.analysis import kinds
from enslint.analysis.imports import ImportTable
from enslint.analysis.kinds import GROUP, SAME, SLICE
from enslint.analysis.loops import MemberCall, MemberLoop
from enslint.analysis.syntax import code_of, int_value, names_in, walk
from enslint.findings import Form, NodeEdit, RuleFix
from enslint.rewrites.common import (
    SlicedInput,
    per_member_code,
    render,
    site_edits,
    slice_name,
    sliced_input,
    sliced_tensor,
)
from enslint.rewrites.common import torch_name as torch_name_for
from enslint.rewrites.fix_assembly import unsafe_rewrite
from enslint.rewrites.helper_module import HelperHome
from enslint.rewrites.loop_body import loop_body_code
from enslint.rewrites.reasons import NOT_APPLICABLE, Reason, Rejection, reject
from enslint.rewrites.vmap_members import unbatchable as vmap_unbatchable

HELPER = kinds.CALL_TIME_RUN
UNCHANGED = (
    "the members, their state_dict keys and every other use of them stay as they are; "
    "results match the loop's to floating-point rounding and dropout draws differ"
)


def call_time_fix(
    loop: MemberLoop, module: cst.Module, imports: ImportTable, home: HelperHome | None = None
) -> RuleFix | Rejection:
    """The rewrite, or why not (NOT_APPLICABLE: not this loop's form, a nest, shared
    members)."""
    member = loop.collection.member
    if member is None or member.kind == GROUP or loop.parent is not None or member.shared:
        return NOT_APPLICABLE
    blocked = _loop_blocker(loop)
    if blocked is not None:
        return blocked
    for collection, _ in loop.collections:
        unbatchable = (
            reject(Reason.NOT_PROVEN) if collection.member is None else vmap_unbatchable(collection.member, module)
        )
        if unbatchable is not None:
            return unbatchable
    found = torch_name_for(imports)
    if found is None:
        return reject(Reason.TORCH_SHADOWED)
    site = loop.combine.site if len(loop.collections) == 1 else None
    call = loop.calls[0]
    if site is None:
        if call.method:
            return reject(Reason.CALLED_THROUGH_METHOD, method=call.method)
        return _whole_body(loop, module, imports, home, found)
    # `estimator(*x)` on the same inputs is captured as written; unpacked slices are not.
    if call.input not in (SAME, SLICE) or (call.input == SLICE and any(a.star for a in call.node.args)):
        return reject(Reason.CALL_TIME_UNPACKED)

    member_param = loop.member_var or "member"
    params, inputs, in_dims = [member_param], [], []
    # A member handed to a method (`self._score(head, x)`) is the lambda's parameter as is.
    replacements: dict[int, cst.CSTNode] = {} if call.helper else {id(call.node.func): cst.Name(member_param)}
    if call.input == SLICE:
        sliced = sliced_input(loop, call) or _slice_inside(loop, call) or _split_piece(loop, call, found[0])
        if sliced is None:
            return reject(Reason.NOT_A_PLAIN_SLICE)
        params.append(sliced.name)
        stacked, axis = sliced.stacked()
        inputs.append(stacked)
        in_dims.append(str(axis))
        if sliced.node is not None:
            replacements[id(sliced.node)] = cst.Name(sliced.name)
    element = per_member_code(loop, site.element, replacements, params)
    if element is None:
        return reject(Reason.MORE_THAN_OWN_CALL)

    dims = f"({', '.join(in_dims)},)" if in_dims else "()"
    arguments = "".join(f", {t}" for t in inputs)
    # A stack along dim d is vmap's own output dim: `out_dims=d`, not a movedim after.
    out_axis = int_value(cst.parse_expression(site.dim)) if site.kind == "stack" and site.dim is not None else None
    out = f", out_dims={out_axis}" if out_axis else ""
    out += f', method="{call.method}"' if call.method else ""
    fused = f"{HELPER}({_members(loop)}, lambda {', '.join(params)}: {element}{arguments}, in_dims={dims}{out})"
    cat: tuple[int | None, str] = (None, "")
    if site.kind == "cat" and site.dim is not None:
        d = int(site.dim)
        axis = d if d >= 0 else d - 1
        cat = (d, f"{fused}.movedim(0, {axis}).flatten({axis}, {axis + 1})")
    code = render(site, fused, out_axis or 0, cat)
    if code is None:
        return reject(Reason.COMBINE_NOT_REPRODUCED)
    torch_name, add_import = found
    message = (
        f"Run the members all at once with `{torch_name}.vmap`, their parameters stacked "
        f"at each call with `{torch_name}.stack`"
    )
    return unsafe_rewrite(
        Form.CALL_TIME, message, site_edits(site, code), module, (HELPER,), torch_name, home, add_import, UNCHANGED
    )


def _whole_body(
    loop: MemberLoop, module: cst.Module, imports: ImportTable, home: HelperHome | None, found: tuple[str, bool]
) -> RuleFix | Rejection:
    """The loop's whole body as one function run under vmap (loop_body.py)."""
    made = loop_body_code(loop, imports)
    if isinstance(made, Rejection):
        if len(loop.collections) > 1:
            names = ", ".join(f"`{t}`" for _, t in loop.collections)
            return reject(Reason.SEVERAL_COLLECTIONS_AND, count=len(loop.collections), names=names, why=made.text)
        return reject(Reason.MORE_THAN_COLLECT)
    (replaced, *consumers), code = made
    edits = [NodeEdit(replaced, code), *(NodeEdit(node, name) for node, name in consumers)]
    torch_name, add_import = found
    message = (
        f"Run the loop's body for all members at once with `{torch_name}.vmap`, their "
        f"parameters stacked at each call with `{torch_name}.stack`"
    )
    return unsafe_rewrite(Form.CALL_TIME, message, edits, module, (HELPER,), torch_name, home, add_import, UNCHANGED)


def _slice_inside(loop: MemberLoop, call: MemberCall) -> SlicedInput | None:
    """The slice `x[:, :, i]` or `x.narrow(1, i, 1)` inside the member's argument
    (`x[:, :, i].unsqueeze(-1)`, `x.narrow(1, i, 1).squeeze(1)`): vmap hands each member
    its slice, and what the argument does to it stays per member."""
    info = call.slice
    if info is None or info.node is None or info.via not in ("index", "select", "narrow") or not call.node.args:
        return None
    if not any(node is info.node for node in walk(call.node.args[0].value)):
        return None
    try:
        dim = int(info.dim)
    except (TypeError, ValueError):
        return None
    tensor = sliced_tensor(loop, info)
    if tensor is None:
        return None
    return SlicedInput(tensor, dim, info.node, slice_name(loop, tensor), info.via == "narrow")


def _split_piece(loop: MemberLoop, call: MemberCall, torch_name: str) -> SlicedInput | None:
    """Piece `k` of `torch.split`, `chunk` or `tensor_split` (`pieces[k]`): the pieces
    stacked along their dim are what vmap hands out. A stack, not a view of the tensor
    split: it is exact or fails loudly where the pieces differ in size or outnumber
    the members, which a reshape of the tensor would not be."""
    info = call.slice
    if info is None or info.via != "chunk" or not call.node.args:
        return None
    try:
        dim = int(info.dim)
    except (TypeError, ValueError):
        return None
    piece = next(
        (n for n in walk(call.node.args[0].value) if isinstance(n, cst.Subscript) and code_of(n) == info.text),
        None,
    )
    if piece is None or names_in(piece.value) & ({loop.index_var, *loop.varying} - {None}):
        return None
    pieces = code_of(piece.value)
    name = slice_name(loop, pieces if isinstance(piece.value, cst.Name) else info.tensor)
    return SlicedInput(f"{torch_name}.stack({pieces}, dim={dim})", dim, piece, name)


def _loop_blocker(loop: MemberLoop) -> Rejection | None:
    """What in the loop itself (not the members' storage) rules the rewrite out. One
    method of the members (`c.expected_value(obs, act)`) is run as their forward; several,
    or a method in a whole body of several collections, are not."""
    methods = sorted({call.method for call in loop.calls if call.method})
    if methods and (len(methods) > 1 or len(loop.calls) > 1 or len(loop.collections) > 1):
        return reject(Reason.CALLED_THROUGH_METHOD, method=methods[0])
    # Part of the collection (`self.blocks[: k + 1]`) is what the helper stacks, at each
    # call: a part of any length, when the members share their inputs (a slice of a
    # tensor would have to be cut to the part's length too) and the loop only collects.
    if loop.subset and (len(loop.collections) > 1 or loop.combine.site is None or loop.calls[0].input != SAME):
        return reject(Reason.PART_OF_COLLECTION, subset=loop.subset)
    return None


def _members(loop: MemberLoop) -> str:
    """The collection as the helper iterates it: a dict's modules are its values; the
    part the loop visits, as written."""
    if loop.subset:
        return loop.subset
    if loop.collection.container == "nn.ModuleDict":
        return f"{loop.collection_text}.values()"
    return loop.collection_text
