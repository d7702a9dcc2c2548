"""The vocabulary the analysis and the rules share.

Importing this module never imports libcst, so the parts of enslint that only need
these names (the rule catalogue, the prefilter, the CLI) start fast; libcst itself takes
about a third of a second to import and is loaded only when a file must be parsed.
"""

from __future__ import annotations

# What a collection's members are, from the most specific fused form to the most general.
LINEAR = "linear"
CONV = "conv"
MLP = "mlp"  # only nn.Linear layers and element-wise activations
MODULE = "module"  # anything else: fusable with torch.func.stack_module_state + vmap
GROUP = "group"  # the member is itself a collection (ensemble of groups of heads)

# What a member call reads, relative to the loop that makes it.
SAME = "same"  # the same tensor for every member
SLICE = "slice"  # slice i of one tensor for member i
CHAIN = "chain"  # the output of another member call of the same iteration
OTHER = "other"  # anything else: a loop-carried state, per-member data, unknown

# The collection key of a class that derives from nn.ModuleList (`for m in self`).
SELF_COLLECTION = "<self>"

# A file must mention one of these for a class in it to resolve to an nn.Module...
MODULE_ROOT_MARKERS = (b"torch", b"lightning")
# ...and one of these for the analysis to find a member collection in it
# (`nn.ModuleList`, `nn.ModuleDict`, or a plain list registered with `add_module` or
# `setattr(self, ...)`). A file without one can still loop over a collection built in
# another file; the project index names those (analysis/project.py).
COLLECTION_MARKERS = (b"ModuleList", b"ModuleDict", b"add_module", b"setattr(self")


def short(text: str, limit: int = 72) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
