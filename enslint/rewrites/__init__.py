"""The rewrites: from a finding's loop to the fused form, as fixes (data, not edits made).

One module per form: `unbind` (the safe fix: iterate `x.unbind(dim)`), `wide_layer` (heads
on one input into one wide layer), `grouped_heads` (the seed's nest into one baddbmm),
`stacked_mlp` (MLP members' weights stacked per layer), `vmap_members` (any identical
members through StackedMembers), `call_time` (the members kept, stacked at each call);
`registry` decides which of them a finding offers, `reasons` words every reason one does
not apply, `catalogue` which of them each rule's offer can give (for the rule pages),
`blockers` the reasons of the code around the loop, `common` what the forms share
(reshaping, sliced inputs, other uses of the collection), `fix_assembly` how a rewrite's
edits become a fix (the helper import, unused imports, `import torch`, the checkpoint
note). The site a form replaces is the loop's `Combine` (enslint/analysis/combine.py). The rules (enslint/rules) ask the
registry; the engine (enslint/engine) applies what it returns.

May import: enslint.analysis, enslint.findings, libcst. Never the rules, the checker or
the engine.
"""
