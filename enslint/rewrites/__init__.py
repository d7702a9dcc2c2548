"""The rewrites: from a finding's loop to the fused form, as fixes (data, not edits made).

One module per form: `unbind` (the safe fix: iterate `x.unbind(dim)`), `wide_layer` (heads
on one input into one wide layer), `grouped_heads` (the seed's nest into one baddbmm),
`stacked_mlp` (MLP members' weights stacked per layer), `vmap_members` (any identical
members through StackedMembers); `common` holds what they share (the site they replace,
reshaping, helpers), `blockers` why a finding gets no fused rewrite at all. The rules
(enslint/rules) call them; the engine (enslint/engine) applies what they return.

May import: enslint.analysis, enslint.findings, libcst. Never the rules, the checker or
the engine.
"""
