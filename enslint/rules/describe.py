"""Words shared by the rule messages: what a collection holds and its fused form."""

from __future__ import annotations

from typing import TYPE_CHECKING

from enslint.analysis.kinds import CONV, GROUP, LINEAR, MLP, short

if TYPE_CHECKING:
    from enslint.analysis.loops import MemberLoop
    from enslint.analysis.members import Member


def members_phrase(loop: MemberLoop) -> str:
    """`ensemble_size` identical `MLP(state_dim, hidden_dim, num_actions)` members"""
    member = loop.collection.member
    inner = group_member(loop)
    if inner is not None:
        return f"{loop.size} groups of {inner[1]} identical `{short(inner[0].text)}` heads"
    return f"{loop.size} identical `{short(member.text)}` members"


def where(loop: MemberLoop) -> str:
    return f"`{loop.cls.name}.{loop.method}` loops over `{loop.collection_text}`"


def fused_on_same_input(member: Member, size: str) -> str:
    if member.kind == LINEAR and member.in_size and member.out_size:
        return (
            f"one `nn.Linear({member.in_size}, {size} * {member.out_size})` whose output is "
            f"`unflatten`ed to ({size}, {member.out_size})"
        )
    if member.kind == CONV and member.in_size and member.out_size:
        return (
            f"one `{member.type_name}({member.in_size}, {size} * {member.out_size}, ...)` "
            f"whose channels are split per member"
        )
    if member.kind in (MLP, LINEAR):
        return (
            f"stacked ({size}, in, out) weights applied with `torch.baddbmm` to the input "
            f"expanded to ({size}, batch, in), or `torch.func.stack_module_state` + "
            f"`torch.vmap(in_dims=(0, 0, None))`"
        )
    return (
        "`torch.func.stack_module_state` + `torch.func.functional_call` under "
        "`torch.vmap(in_dims=(0, 0, None))`"
    )


def fused_on_slices(member: Member, size: str, dim: str) -> str:
    moved = f"the sliced dim {dim} moved to the front (`movedim({dim}, 0)`)"
    if member.kind in (LINEAR, MLP):
        return (
            f"stacked ({size}, in, out) weights applied with `torch.baddbmm` to {moved}, "
            f"or `torch.func.stack_module_state` + `torch.vmap(in_dims=(0, 0, 0))`"
        )
    return (
        f"`torch.func.stack_module_state` + `torch.func.functional_call` under "
        f"`torch.vmap(in_dims=(0, 0, 0))` over {moved}"
    )


def nest_phrase(outer: MemberLoop, inner_member: Member, inner_size: str, on_slices: bool, dim: str | None) -> str:
    """The single fused op for a whole nest of groups of heads."""
    size = f"{outer.size} x {inner_size}"
    if inner_member.kind == LINEAR and inner_member.in_size and inner_member.out_size:
        if on_slices:
            op = (
                f"weights ({outer.size}, {inner_member.in_size}, {inner_size} * {inner_member.out_size}) "
                f"with one `torch.baddbmm` over the input's dim {dim} moved to the front"
            )
        else:
            op = f"one `nn.Linear({inner_member.in_size}, {outer.size} * {inner_size} * {inner_member.out_size})`"
    else:
        op = "`torch.func.stack_module_state` over all members + `torch.vmap`"
    return f"for the whole nest `{outer.collection_text}`, one batched op for all {size} heads: {op}"


def group_member(loop: MemberLoop) -> tuple[Member, str] | None:
    """The heads inside each group when the loop's members are groups."""
    member = loop.collection.member
    if member.kind != GROUP or member.inner is None or member.inner.member is None:
        return None
    return member.inner.member, member.inner.size or "H"
