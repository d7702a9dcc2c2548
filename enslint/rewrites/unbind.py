"""ENS002's safe fix: iterate `x.unbind(dim)` (for width-1 slices `x.split(1, dim)`)
beside the members instead of indexing."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from enslint.analysis.loops import MemberLoop, SliceInfo
from enslint.analysis.syntax import code_of, walk
from enslint.findings import Applicability, Form, NodeEdit, RuleFix
from enslint.rewrites.common import slice_name, sliced_tensor
from enslint.rewrites.reasons import NOT_APPLICABLE, Reason, Rejection, reject


def unbind_fix(loop: MemberLoop) -> RuleFix | Rejection:
    """Iterate `x.unbind(dim)` next to the members instead of indexing `x[:, i]`.

    Safe: `unbind` returns the same views, so parameters and numerics are unchanged; the
    backward builds the gradient of `x` once instead of once per member. None when the
    members already read pieces of `x` (nothing to fix: NOT_APPLICABLE); else the reason it
    cannot apply.
    """
    slices: list[SliceInfo] = []
    for call in loop.entry_calls:
        assert call.slice is not None  # ENS003 offers this fix for loops whose members read slices
        slices.append(call.slice)
    if not slices or any(s.via in ("unbind", "chunk") for s in slices):
        return NOT_APPLICABLE
    width_1 = {s.via == "narrow" for s in slices}
    if len(width_1) != 1:
        return reject(Reason.UNBIND_MIXED_SLICES)
    if len({(s.tensor, s.dim) for s in slices}) != 1:
        return reject(Reason.UNBIND_SEVERAL_TENSORS)
    if loop.index_var is None or not isinstance(loop.node, cst.For | cst.CompFor):
        return reject(Reason.UNBIND_NO_INDEX)
    tensor, dim = sliced_tensor(loop, slices[0]), slices[0].dim
    if tensor is None:
        return reject(Reason.UNBIND_TENSOR_VARIES)
    name = slice_name(loop, tensor)
    inside = {id(n) for s in slices for n in walk(_expression(s))}
    index_used_elsewhere = any(
        isinstance(node, cst.Name) and node.value == loop.index_var and id(node) not in inside for node in loop.body
    )
    header = loop.node
    iterable = header.iter
    # A width-1 slice keeps its dim, which unbind drops: split(1) keeps it, with the
    # same one-allocation backward.
    unbound = f"{tensor}.split(1, {dim})" if width_1 == {True} else f"{tensor}.unbind({dim})"
    if (
        not index_used_elsewhere
        and loop.member_var is not None
        and isinstance(iterable, cst.Call)
        and code_of(iterable.func) == "enumerate"
    ):
        new_target = f"{loop.member_var}, {name}"
        new_iter = f"zip({code_of(iterable.args[0].value)}, {unbound})"
    else:
        target = code_of(header.target)
        if isinstance(header.target, cst.Tuple) and not header.target.lpar:
            target = f"({target})"
        new_target = f"{target}, {name}"
        new_iter = f"zip({code_of(iterable)}, {unbound})"
    edits = [NodeEdit(header.target, new_target), NodeEdit(iterable, new_iter)]
    edits += [NodeEdit(s.node, name) for s in slices]
    return RuleFix(
        Applicability.SAFE,
        f"Iterate `{unbound}` instead of {'slicing' if width_1 == {True} else 'indexing'} `{slices[0].text}`",
        tuple(_unique(edits)),
        Form.UNBIND,
    )


def _expression(info: SliceInfo) -> cst.BaseExpression:
    """The slice expression of an index, select or narrow slice."""
    assert info.node is not None  # only pieces of `unbind` and `chunk` have none
    return info.node


def _unique(edits: list[NodeEdit]) -> Iterator[NodeEdit]:
    seen: set[int] = set()
    for edit in edits:
        if id(edit.node) not in seen:
            seen.add(id(edit.node))
            yield edit
