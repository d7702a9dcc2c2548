"""The vocabulary the analysis and the rules share.

Importing this module never imports libcst, so the parts of enslint that only need
these names (the rule catalogue, the prefilter, the CLI) start fast; libcst itself takes
about a third of a second to import and is loaded only when a file must be parsed.
"""

from __future__ import annotations

import functools
import re

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

# The module-level functions and classes the rewrites add to a file (and look for before
# adding one): a piece of a big file always carries their definitions.
# Public names: a rewritten file imports them from its package's helper module.
GROUPED_HEAD_HOOK = "load_grouped_head_keys"
NESTED_HEAD_HOOK = "load_nested_head_keys"
STACKED_MLP = "StackedMLP"
STACKED_MEMBERS = "StackedMembers"
PER_HEAD_HOOK = "load_per_head_keys"
CALL_TIME_RUN = "vmap_members"
# The names enslint 0.x pasted into each file it fixed: a file holding them is still read.
_EARLIER_HELPERS = {
    "_merge_grouped_head_keys",
    "_merge_nested_head_keys",
    "_merge_stacked_member_keys",
    "_run_stacked_members",
    "_merge_per_head_keys",
}
REWRITE_HELPERS = frozenset(
    {
        GROUPED_HEAD_HOOK,
        NESTED_HEAD_HOOK,
        STACKED_MLP,
        STACKED_MEMBERS,
        PER_HEAD_HOOK,
        CALL_TIME_RUN,
    }
    | _EARLIER_HELPERS
)
# The module, one per package, that holds the helpers (rewrites/helper_module.py).
HELPER_MODULE = "fused_ensembles"

# A file must mention one of these for a class in it to resolve to an nn.Module...
MODULE_ROOT_MARKERS = (b"torch", b"lightning")
# ...and one of these for the analysis to find a member collection in it
# (`nn.ModuleList`, `nn.ModuleDict`, or a plain list registered with `add_module`)...
COLLECTION_CLASSES = ("ModuleList", "ModuleDict")
COLLECTION_MARKERS = (*(name.encode() for name in COLLECTION_CLASSES), b"add_module")
# ...or a registration under a computed name, `setattr(self, f"head{i}", head)` (also
# `"head" + str(i)`, `"fc%d" % i`, `"h{}".format(i)`; members.computed_name agrees).
# A file without any of these can still loop over a collection built in another file;
# the project index names those (analysis/project.py).
SETATTR_MARKER = re.compile(
    rb"""setattr\(\s*self\s*,\s*(?:[rRbB]?[fF][rR]?["']|["'][^"'\n]*["']\s*(?:[+%]|\.format)|str\()"""
)


def names_a_collection(data: bytes) -> bool:
    """The bytes test for a member container or a registration (see above)."""
    return any(marker in data for marker in COLLECTION_MARKERS) or SETATTR_MARKER.search(data) is not None


# ...or a plain list on `self` (`self.critics = []`, `self.a, self.b = [], []`,
# `self.heads = [Head() for _ in range(n)]`) whose elements a loop calls
# (`self.critics[i](x)`) or iterates (`for critic in self.critics:`, `zip(self.critics,
# xs)`): registered nowhere, it holds modules only where the members' constructor
# proves it (model.py).
SELF_LIST_MARKER = re.compile(rb"self\.(\w+)((?:\s*,\s*self\.\w+)*)\s*=\s*\[")
_OTHER_TARGETS = re.compile(rb"self\.(\w+)")
_ITERATED = re.compile(rb"\bfor\s+([\w\s,()]+?)\s+in\s+(?:(?:enumerate|zip|reversed)\(\s*)?self\.(\w+)")
_WORD = re.compile(rb"\w+")


def names_a_plain_list(data: bytes) -> bool:
    """The bytes test for a plain list of members on `self` (see above): one attribute
    assigned a list whose elements are called, by index (`self.critics[i](x)`), or as
    what a loop over it binds (`for head in self.heads:` then `head(`, within a few
    lines; `[m(x) for m in self.members]`)."""
    if b"self." not in data or (b"= [" not in data and b"=[" not in data):
        return False
    attrs: set[bytes] = set()
    for match in SELF_LIST_MARKER.finditer(data):
        attrs.add(match.group(1))
        attrs.update(_OTHER_TARGETS.findall(match.group(2)))
    if not attrs:
        return False
    if _called_by_index(tuple(sorted(attrs))).search(data):
        return True
    for match in _ITERATED.finditer(data):
        if match.group(2) not in attrs:
            continue
        around = data[max(0, match.start() - 400) : match.end() + 4000]
        if any(_called(name).search(around) for name in _WORD.findall(match.group(1))):
            return True
    return False


@functools.lru_cache(maxsize=64)
def _called_by_index(attrs: tuple[bytes, ...]) -> re.Pattern[bytes]:
    return re.compile(rb"self\.(?:" + b"|".join(re.escape(a) for a in attrs) + rb")\[[^\]\n]+\]\s*\(")


@functools.lru_cache(maxsize=256)
def _called(name: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"(?<![\w.])" + re.escape(name) + rb"\s*\(")


# What a project's file lets others build collections with (ProjectIndex.exports):
# "def:clones" (a helper another file calls) or "class:BlockBank" (a class another file
# derives from). A file reaches such a collection only by calling or deriving from it.
@functools.lru_cache(maxsize=16)
def uses_pattern(exports: tuple[str, ...]) -> re.Pattern[bytes]:
    calls = [re.escape(e[4:].encode()) for e in exports if e.startswith("def:")]
    bases = [re.escape(e[6:].encode()) for e in exports if e.startswith("class:")]
    parts = []
    if calls:
        parts.append(rb"\b(?:" + b"|".join(sorted(calls)) + rb")\s*\(")
    if bases:
        parts.append(rb"\bclass\s+\w+\s*\([^:]*?\b(?:" + b"|".join(sorted(bases)) + rb")\b")
    return re.compile(b"|".join(parts) or rb"(?!)")


@functools.lru_cache(maxsize=16)
def _bare_names(exports: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(export.partition(":")[2].encode() for export in exports)


def mentions_export(data: bytes, exports: tuple[str, ...]) -> bool:
    """Whether the file's bytes call or derive from one of `exports` (`uses_pattern`).
    Most files name none of them: a plain search for each says so faster than the
    pattern, which needs the name literally."""
    return any(name in data for name in _bare_names(exports)) and uses_pattern(exports).search(data) is not None


def short(text: str, limit: int = 72) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
