"""The rewrites: from a finding's loop to the fused form, as fixes (data, not edits made).

One module per form: `unbind` (the safe fix: iterate `x.unbind(dim)`), `wide_layer` (heads
on one input into one wide layer), `grouped_heads` (the seed's nest into one baddbmm),
`stacked_mlp` (MLP members' weights stacked per layer), `vmap_members` (any identical
members through StackedMembers); `common` holds what they share (the site they replace,
reshaping, helpers), `blockers` why a finding gets no fused rewrite at all. The rules
(enslint/rules) call them; the engine (enslint/engine) applies what they return.
"""


def _helper_names() -> frozenset[str]:
    from enslint.rewrites import grouped_heads, stacked_mlp, vmap_members, wide_layer

    return frozenset(
        {
            grouped_heads.HOOK,
            grouped_heads.WIDE_HOOK,
            stacked_mlp.HOOK,
            stacked_mlp.RUN,
            vmap_members.HELPER,
            wide_layer.HOOK,
        }
    )


# The module-level functions and classes the rewrites add (and look for before adding).
HELPER_NAMES = _helper_names()
