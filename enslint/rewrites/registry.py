"""Which rewrites a finding offers: the one place that decides which forms are tried for
a loop, in what order, and what the finding says when none applies.

Each rewrite module builds one form and returns a `RuleFix` or a `Rejection`
(reasons.py). The rules ask this module for an `Offer` and only word it:

- members called on one input (ENS001): one wide layer, else stacked MLP weights, then
  the general vmap form beside either (verify times which is faster on the device); for
  the heads of a nest, the rewrite of the whole nest (grouped_heads.py);
- members called on slices (ENS002): one call for one shared instance, else stacked
  weights with the general form beside them, else the general form;
- past a blocker of the code around the loop (blockers.py), only the general form, which
  keeps whatever members the code built; and where no form may replace the collection,
  the call-time form, which keeps the members and replaces only the loop;
- slices of an activation (ENS003): the `unbind` fix.

A rejection is said when its kind is BLOCKED or MEMBERS, a MEMBERS one ("not yet for
these members") only when nothing more specific stands in the way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from enslint.analysis.kinds import LINEAR
from enslint.findings import RuleFix
from enslint.rewrites.reasons import NOT_APPLICABLE, Kind, Reason, Rejection, quoted, reject

if TYPE_CHECKING:
    from enslint.analysis.context import Member
    from enslint.analysis.loops import MemberLoop
    from enslint.analysis.model import FileModel

_SAID = (Kind.BLOCKED, Kind.MEMBERS)


@dataclass(frozen=True)
class Offer:
    """What a finding offers: its fixes, preferred first, and why there is no fused
    rewrite where the finding says so (with `kept`, why the members are kept)."""

    fixes: tuple[RuleFix, ...] = ()
    rejection: Rejection | None = None
    kept: bool = False  # fixes[0] keeps the members: `rejection` rules out the others

    @property
    def note(self) -> str | None:
        """The closing words of the finding's details, in parentheses."""
        if self.rejection is None:
            return None
        if self.kept:
            return f"members kept and stacked at each call: {self.rejection.text}"
        return self.rejection.note


def said(outcome: RuleFix | Rejection | None) -> Rejection | None:
    return outcome if isinstance(outcome, Rejection) and outcome.kind in _SAID else None


def same_input_offer(loop: MemberLoop, model: FileModel, member: Member, group: tuple[Member, str] | None) -> Offer:
    """ENS001: members each called on the same input."""
    from enslint.rewrites.blockers import fused_blocker
    from enslint.rewrites.grouped_heads import grouped_heads_fix
    from enslint.rewrites.helper_module import home_of
    from enslint.rewrites.vmap_members import vmap_members_fix

    if member.shared:
        return Offer()  # one instance: nothing to fuse
    blocker = fused_blocker(loop, model)
    if blocker is not None:
        if fused_blocker(loop, model, general=True) is None:
            made = vmap_members_fix(loop, model.module, model.imports, home_of(model), model.ensemble_loop_nodes)
            if isinstance(made, RuleFix):
                return Offer((made,))
        rejection: Rejection | None = blocker
    elif loop.parent is not None:
        nest = grouped_heads_fix(loop.parent, loop, model.module, model.imports, home_of(model))
        if isinstance(nest, RuleFix):
            return Offer((nest,))
        rejection = said(nest)
    else:
        fixes, rejection = _fused_forms(loop, model)
        if fixes:
            return Offer(fixes)
        if rejection is None and group is not None:
            rejection = reject(Reason.NEST_ON_INNER_LOOP)
    return _members_kept(loop, model, rejection) if group is None else Offer((), rejection)


def _fused_forms(loop: MemberLoop, model: FileModel) -> tuple[tuple[RuleFix, ...], Rejection | None]:
    """The fused forms on offer for members on one input, preferred first: one wide
    layer, stacked MLP weights, the general form. The general form is also offered
    beside a specific one, for verify to time (which is faster depends on the device and
    the shapes); stacked weights are tried only where no wide layer is possible, as a
    second specific form would never be offered."""
    from enslint.rewrites.helper_module import home_of
    from enslint.rewrites.stacked_mlp import stacked_mlp_fix
    from enslint.rewrites.vmap_members import vmap_members_fix
    from enslint.rewrites.wide_layer import wide_layer_fix

    home = home_of(model)
    wide = wide_layer_fix(loop, model.module, model.imports, home)
    specific = wide if isinstance(wide, RuleFix) else stacked_mlp_fix(loop, model.module, model.imports, home)
    general = vmap_members_fix(loop, model.module, model.imports, home, model.ensemble_loop_nodes)
    fixes = tuple(f for f in (specific, general) if isinstance(f, RuleFix))
    # Stacked weights say nothing: the general form, tried on the same members, does.
    return fixes, _most_specific([r for r in (said(wide), said(general)) if r is not None])


def _most_specific(rejections: Sequence[Rejection]) -> Rejection | None:
    """The first rejection that names what stands in the way; "not yet for these
    members" only when nothing else is said."""
    return next((r for r in rejections if r.kind is not Kind.MEMBERS), rejections[0] if rejections else None)


def slices_offer(loop: MemberLoop, model: FileModel, member: Member, group: tuple[Member, str] | None) -> Offer:
    """ENS002: members each called on their own slice of one tensor. The rewrite of a
    nest of linear heads comes with the inner loop's ENS001 finding."""
    from enslint.rewrites.blockers import fused_blocker
    from enslint.rewrites.helper_module import home_of
    from enslint.rewrites.shared_instance import shared_instance_fix
    from enslint.rewrites.stacked_mlp import stacked_mlp_fix
    from enslint.rewrites.vmap_members import vmap_members_fix

    blocker = fused_blocker(loop, model)
    outcome: RuleFix | Rejection = NOT_APPLICABLE
    if member.shared:
        # One instance: nothing to fuse, one call on all slices (safe, no new weights).
        return _offer(NOT_APPLICABLE if blocker else shared_instance_fix(loop, model.module, model.imports))
    if blocker is not None:
        outcome = blocker
        if group is None and fused_blocker(loop, model, general=True) is None:
            made = vmap_members_fix(loop, model.module, model.imports, home_of(model), model.ensemble_loop_nodes)
            if isinstance(made, RuleFix):
                return Offer((made,))
    elif group is None:
        stacked = stacked_mlp_fix(loop, model.module, model.imports, home_of(model))
        general = vmap_members_fix(loop, model.module, model.imports, home_of(model), model.ensemble_loop_nodes)
        if isinstance(stacked, RuleFix):
            return Offer(tuple(f for f in (stacked, general) if isinstance(f, RuleFix)))
        if isinstance(general, RuleFix):
            return Offer((general,))
        outcome = general
    rejection = said(outcome)
    if group is None:
        kept = _members_kept(loop, model, rejection)
        if kept.fixes:
            return kept
    if rejection is None and group is not None and group[0].kind == LINEAR:
        rejection = reject(Reason.NEST_ON_INNER_FINDING)
    elif rejection is None:
        rejection = reject(Reason.NO_FORM_YET, kind=quoted((group[0] if group else member).type_name))
    return Offer((), rejection)


def _offer(outcome: RuleFix | Rejection) -> Offer:
    return Offer((outcome,)) if isinstance(outcome, RuleFix) else Offer((), said(outcome))


def _members_kept(loop: MemberLoop, model: FileModel, rejection: Rejection | None) -> Offer:
    """Where nothing may replace the collection: the call-time form (the members kept,
    only the loop replaced), saying what ruled out the fused storage."""
    from enslint.rewrites.call_time import call_time_fix
    from enslint.rewrites.helper_module import home_of

    kept = call_time_fix(loop, model.module, model.imports, home_of(model))
    if isinstance(kept, RuleFix):
        return Offer((kept,), rejection, kept=rejection is not None)
    return Offer((), rejection)


def slice_gradient_offer(loop: MemberLoop) -> Offer:
    """ENS003: slices of an activation, iterated with `unbind` instead."""
    from enslint.rewrites.unbind import unbind_fix

    return _offer(unbind_fix(loop))
