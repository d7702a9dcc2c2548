"""Words shared by the rule messages: what a collection holds and its fused form."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from enslint.analysis.kinds import CHAIN, CONV, GROUP, LINEAR, MLP, MODULE, short

if TYPE_CHECKING:
    from enslint.analysis.context import Collection, Member
    from enslint.analysis.loops import MemberCall, MemberLoop, SliceInfo
    from enslint.analysis.model import FileModel
    from enslint.findings import RuleFix
    from enslint.rules.base import Settings


def member_of(collection: Collection) -> Member:
    """The member of a collection a loop runs over: the analysis only finds loops over
    collections of identical members (`Collection.identical`), so it is never None."""
    member = collection.member
    assert member is not None, "member loops run over collections of identical members"
    return member


def slice_read(call: MemberCall) -> SliceInfo:
    """The slice a member call reads: set on every call whose input is SLICE."""
    sliced = call.slice
    assert sliced is not None, "a call reading a slice records it"
    return sliced


def product(*sizes: object) -> str:
    """`a * b` as code, leaving out factors of 1: `n_labels` rather than `n_labels * 1`."""
    kept = [str(size) for size in sizes if str(size) != "1"]
    return " * ".join(kept) or "1"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def is_chain(loop: MemberLoop) -> bool:
    return any(call.input == CHAIN for call in loop.calls)


def members_phrase(loop: MemberLoop) -> str:
    """`ensemble_size` identical `MLP(state_dim, hidden_dim, num_actions)` members"""
    member = member_of(loop.collection)
    inner = group_member(loop)
    if inner is not None:
        return f"{loop.size} groups of {inner[1]} identical `{short(inner[0].text)}` heads"
    if len(loop.collections) > 1:
        types = [f"`{member_of(c).type_name}`" for c, _ in loop.collections]
        if is_chain(loop):
            return f"{loop.size} identical per-member chains ({' -> '.join(types)})"
        return f"{loop.size} identical members in each collection ({_and(types)})"
    if member.shared:
        return f"{loop.size} references to one shared `{short(member.text)}` instance"
    if loop.collection.per_branch:
        either = " or ".join(f"`{short(text)}`" for text in loop.collection.branch_members)
        return f"{loop.size} identical members ({either}, as the branch of the `if` that runs builds them)"
    return f"{loop.size} identical `{short(member.text)}` members"


def where(loop: MemberLoop, model: FileModel) -> str:
    texts = [f"`{text}`" for _, text in loop.collections] or [f"`{loop.collection_text}`"]
    phrase = f"`{loop.cls.name}.{loop.method}` loops over {_and(texts)}"
    if loop.subset:
        phrase += f" (part of it: `{loop.subset}`)"
    evidence = loop.collection.evidence
    if evidence:
        phrase += f" ({model.render(evidence)})"
    return phrase


BY_HAND = "one batched version of the member's forward written by hand (torch.vmap cannot batch it: {why})"


def advised_kind(member: Member, collection: Collection) -> Member:
    """The member the fused form is advised for: where each branch of an `if` builds
    other members, the general form's (any module), which fits every branch."""
    return replace(member, kind=MODULE) if collection.per_branch else member


def fused_on_same_input(member: Member, size: str, vmap_obstacle: str | None = None) -> str:
    if vmap_obstacle is not None and member.kind not in (LINEAR, CONV):
        return BY_HAND.format(why=vmap_obstacle)
    if member.kind == LINEAR and member.in_size and member.out_size:
        return (
            f"one `nn.Linear({member.in_size}, {product(size, member.out_size)})` whose output is "
            f"`unflatten`ed to ({size}, {member.out_size})"
        )
    if member.kind == CONV and member.in_size and member.out_size:
        return (
            f"one `{member.type_name}({member.in_size}, {product(size, member.out_size)}, ...)` "
            f"whose channels are split per member"
        )
    if member.kind in (MLP, LINEAR):
        return (
            f"stacked ({size}, in, out) weights applied with `torch.baddbmm` to the input "
            f"expanded to ({size}, batch, in), or `torch.func.stack_module_state` + "
            f"`torch.vmap(in_dims=(0, 0, None))`"
        )
    if vmap_obstacle is not None:
        return BY_HAND.format(why=vmap_obstacle)
    return "`torch.func.stack_module_state` + `torch.func.functional_call` under `torch.vmap(in_dims=(0, 0, None))`"


def fused_on_slices(member: Member, size: str, dim: str, vmap_obstacle: str | None = None) -> str:
    if vmap_obstacle is not None and member.kind not in (LINEAR, CONV):
        return BY_HAND.format(why=vmap_obstacle)
    moved = "the member-first input" if dim == "0" else f"the sliced dim {dim} moved to the front (`movedim({dim}, 0)`)"
    if member.kind in (LINEAR, MLP):
        return (
            f"stacked ({size}, in, out) weights applied with `torch.baddbmm` to {moved}, "
            f"or `torch.func.stack_module_state` + `torch.vmap(in_dims=(0, 0, 0))`"
        )
    if vmap_obstacle is not None:
        return BY_HAND.format(why=vmap_obstacle)
    return (
        f"`torch.func.stack_module_state` + `torch.func.functional_call` under "
        f"`torch.vmap(in_dims=(0, 0, 0))` over {moved}"
    )


def fused_for_several(loop: MemberLoop, dim: str | None) -> str:
    """The fused form of a loop that runs one member of several collections per step."""
    if dim is None:
        over = ""
    elif dim == "0":
        over = " over the member-first input"
    else:
        over = f" over the sliced dim {dim} moved to the front"
    if is_chain(loop):
        return (
            f"one batched op per collection{over}: stack each collection's weights (or "
            f"`torch.func.stack_module_state`) and run the whole chain under one `torch.vmap`"
        )
    return f"one batched op per collection{over} (stacked weights, or `torch.func.stack_module_state` + `torch.vmap`)"


def shared_advice(loop: MemberLoop, on_slices: bool) -> str:
    """Members that are one instance: nothing to stack, one call does it."""
    member = member_of(loop.collection)
    if on_slices:
        return (
            f"every member is the same `{short(member.text)}` instance (shared weights): call it once "
            f"on all the slices at once instead; there are no parameters to stack"
        )
    return (
        f"every member is the same `{short(member.text)}` instance (shared weights), so all "
        f"{loop.size} calls compute the same result: call it once and repeat the output"
    )


def nest_phrase(outer: MemberLoop, inner_member: Member, inner_size: str, on_slices: bool, dim: str | None) -> str:
    """The single fused op for a whole nest of groups of heads."""
    size = f"{outer.size} x {inner_size}"
    if inner_member.kind == LINEAR and inner_member.in_size and inner_member.out_size:
        if on_slices:
            op = (
                f"weights ({outer.size}, {inner_member.in_size}, {product(inner_size, inner_member.out_size)}) "
                f"with one `torch.baddbmm` over the input's dim {dim} moved to the front"
            )
        else:
            op = f"one `nn.Linear({inner_member.in_size}, {product(outer.size, inner_size, inner_member.out_size)})`"
    else:
        op = "`torch.func.stack_module_state` over all members + `torch.vmap`"
    return f"for the whole nest `{outer.collection_text}`, one batched op for all {size} heads: {op}"


def group_member(loop: MemberLoop) -> tuple[Member, str] | None:
    """The heads inside each group when the loop's members are groups."""
    member = member_of(loop.collection)
    if member.kind != GROUP or member.inner is None or member.inner.member is None:
        return None
    return member.inner.member, member.inner.size or "H"


def per_slice_loops(model: FileModel, settings: Settings) -> Iterator[tuple[MemberLoop, list[MemberCall]]]:
    """(loop, its member calls) for each loop whose members each read their own slice of
    one tensor per collection, along one dim: what ENS002 and ENS003 look at."""
    from enslint.analysis.kinds import SLICE

    for loop in model.member_loops(reading=SLICE, min_members=settings.min_members):
        entries = loop.entry_calls
        per_collection: dict[int, set[tuple[str, str]]] = {}
        for call in entries:
            sliced = slice_read(call)
            per_collection.setdefault(id(call.collection), set()).add((sliced.tensor, sliced.dim))
        if any(len(read) != 1 for read in per_collection.values()) or len({slice_read(c).dim for c in entries}) != 1:
            continue
        yield loop, entries


HEADLINE_WIDTH = 120  # a finding's first line, `path:line:col: CODE [*] ` not counted
# What each fix form does, in a few words, for the headline.
_REMEDIES = {
    "wide layer": "fix: one wide layer",
    "stacked weights": "fix: stacked weights",
    "grouped heads": "fix: the whole nest as one batched op",
    "vmap": "fix: torch.vmap over stacked members",
    "shared call": "fix: one call of the shared instance",
    "call-time vmap": "fix: torch.vmap, members kept",
}
NO_FIX = "no automatic fix (--show-details)"


def remedy(fixes: Sequence[RuleFix]) -> str:
    """The headline's advice: what the preferred fix does, or where to read why none."""
    if not fixes:
        return NO_FIX
    return _REMEDIES.get(fixes[0].form, "fix available")


def headline(loop: MemberLoop, variants: list[str], advice: str) -> str:
    """`Class.method`: what the loop does; the advice, in at most HEADLINE_WIDTH
    characters: `variants` say what the loop does, most detailed first, and the first
    that fits is taken; the advice is kept, and words are never cut."""
    place = f"`{loop.cls.name}.{loop.method}`"
    for what in variants:
        text = f"{place}: {what}; {advice}"
        if len(text) <= HEADLINE_WIDTH:
            return text
    text = f"{place}: {variants[-1]}"
    words = text.split(" ")
    kept: list[str] = []
    for word in words:
        if len(" ".join([*kept, word])) > HEADLINE_WIDTH - len(advice) - 4:
            break
        kept.append(word)
    return " ".join(kept) + f" …; {advice}"


def count_of(loop: MemberLoop) -> str:
    """The member count for a headline: the size as written, or "E" when it is long."""
    size = str(loop.size)
    return size if len(size) <= 16 else "E"


def member_kind(member: Member | None, collection: Collection | None = None) -> str:
    """The members' type for a headline: `nn.Linear`, `MemberMLP`; "identical" where
    each branch of an `if` builds other ones."""
    if collection is not None and collection.per_branch:
        return "identical"
    name = ((member.type_name if member is not None else "") or "module").strip("`").split("(")[0]
    return f"`{name}`" if len(name) <= 30 else "identical"
