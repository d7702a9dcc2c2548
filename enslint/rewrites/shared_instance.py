"""Members that are one shared instance (`nn.ModuleList([layer for _ in range(n)])`), each
run on its own slice: one call of that instance on all the slices at once.

Safe: nothing is fused, the collection and its `state_dict` stay as they are; only the
loop becomes one call. Offered for members that map their leading dims batch-wise
(`nn.Linear`, an MLP of linear layers and element-wise activations), which a tensor
with the member axis in front feeds the same way as each slice.
"""

from __future__ import annotations

import libcst as cst

from enslint.analysis.imports import ImportTable
from enslint.analysis.kinds import LINEAR, MLP, SLICE
from enslint.analysis.loops import MemberLoop
from enslint.findings import Applicability, Form, RuleFix
from enslint.rewrites.common import render, site_edits, sliced_input
from enslint.rewrites.reasons import NOT_APPLICABLE, Reason, Rejection, reject


def shared_instance_fix(loop: MemberLoop, module: cst.Module, imports: ImportTable) -> RuleFix | Rejection:
    """The rewrite, or why there is none (NOT_APPLICABLE when the members are not shared)."""
    member = loop.collection.member
    if member is None or not member.shared or len(loop.calls) != 1 or loop.calls[0].input != SLICE:
        return NOT_APPLICABLE
    if member.kind not in (LINEAR, MLP):
        return reject(Reason.SHARED_NOT_LAST_DIM, kind=member.type_name)
    site = loop.combine.plain_site
    if site is None:
        return reject(Reason.MORE_THAN_COLLECT)
    sliced = sliced_input(loop, loop.calls[0])
    if sliced is None:
        return reject(Reason.NOT_A_PLAIN_SLICE)
    moved = sliced.tensor if sliced.dim == 0 else f"{sliced.tensor}.movedim({sliced.dim}, 0)"
    text = loop.collection_text
    if "." not in text:
        return NOT_APPLICABLE
    fused = f"{text}[0]({moved})"
    code = render(site, fused, 0, (-1, f"{fused}.movedim(0, -2).flatten(-2)"))
    if code is None:
        return reject(Reason.COMBINE_NOT_REPRODUCED)
    message = f"Call the one shared `{member.type_name}` once on all the slices of `{sliced.tensor}`"
    return RuleFix(Applicability.SAFE, message, tuple(site_edits(site, code)), Form.SHARED_CALL)
