"""Why a rewrite is not offered: every reason a user can read, as data.

A rewrite that does not apply returns a `Rejection`: one `Reason` of this catalogue and
the values its text names. The finding's details, `enslint verify`'s table and the rule
pages read this one list, so a reason is worded once, here.

A reason's `Kind` says how the registry (registry.py) weighs it:
- `NOT_THIS_FORM`: the loop is not the shape this form rewrites (a nest, shared members,
  members of another kind); another form may be, and nothing is said of it;
- `MEMBERS`: this form has no fused version for these members yet; said only when
  nothing more specific stands in the way;
- `BLOCKED`: something in the code stands in the way of this form; said.
- `QUIET`: a form tried beside another (stacked weights beside the general form) whose
  reason the other form's reason covers; never said, but named, for tests and tracing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# What `other_use` (common.py) says of a use of the collection the rewrite cannot keep.
_ALSO_USED = "`{collection}` is also used{where} (`{code}`)"


class Kind(Enum):
    NOT_THIS_FORM = "not this form"
    MEMBERS = "members"
    BLOCKED = "blocked"
    QUIET = "quiet"


class Reason(Enum):
    """Each reason's text, with `{fields}` filled in from the code at hand."""

    def __init__(self, text: str, kind: Kind) -> None:
        self.text = text
        self.kind = kind

    @property
    def standalone(self) -> bool:
        """Whether the text says it all: a finding's note is otherwise "no fused rewrite: <text>"."""
        return self.text.startswith("no ")

    NOT_THIS_FORM = ("the loop is not the shape this form rewrites", Kind.NOT_THIS_FORM)

    # -- the class and the collection (blockers.py) ----------------------------------------
    NOT_A_MODULE = (
        "`{cls}` is not an nn.Module, so it cannot hold the fused parameters and their checkpoint hook",
        Kind.BLOCKED,
    )
    BASE_UNREAD = ("the base class of `{cls}` could not be read, so it is not known to be an nn.Module", Kind.BLOCKED)
    SEVERAL_COLLECTIONS = ("the loop runs {count} collections per member ({names})", Kind.BLOCKED)
    CALLED_THROUGH_METHOD = ("the members are called through `.{method}()`", Kind.BLOCKED)
    CALLED_IN_HELPER = (
        "each member is called inside `self.{helper}()`, which a fused layer does not enter",
        Kind.BLOCKED,
    )
    PASSED_IN = ("the members are passed in by the caller", Kind.BLOCKED)
    BUILT_IN_PARENT = ("`{collection}` is built in the parent class `{parent}`", Kind.BLOCKED)
    BUILT_ELSEWHERE = ("`{collection}` is {evidence}", Kind.BLOCKED)
    BUILT_PER_BRANCH = ("each branch of an `if` builds `{collection}` from other members", Kind.BLOCKED)
    PROVEN_AT_RUN_TIME = (
        "`{collection}`'s members are known identical only from the profiled run: they are kept as built",
        Kind.BLOCKED,
    )
    BUILT_OUTSIDE_INIT = ("`{collection}` is built in `{method}()`, not in `__init__`", Kind.BLOCKED)
    PART_OF_COLLECTION = ("the loop visits only part of the collection (`{subset}`)", Kind.BLOCKED)
    UNPACKED_ARGUMENTS = ("the members are called with unpacked arguments (`*args`)", Kind.BLOCKED)
    PLAIN_LIST = (
        "`{collection}` is a plain list registered with `{how}`; the rewrites replace an nn.ModuleList",
        Kind.BLOCKED,
    )
    RESHAPED_SLICE = ("each member's slice is reshaped before the call (`{code}`)", Kind.BLOCKED)

    # -- shared by several forms -----------------------------------------------------------
    TORCH_SHADOWED = ("`torch` names something else in this file", Kind.BLOCKED)
    MORE_THAN_COLLECT = ("the loop does more than collect each member's result", Kind.BLOCKED)
    NOT_A_PLAIN_SLICE = ("the member's input is not a plain slice of one tensor along a literal dim", Kind.BLOCKED)
    COMBINE_NOT_REPRODUCED = ("the results are combined in a way the rewrite does not reproduce", Kind.BLOCKED)
    MORE_THAN_OWN_CALL = ("each member's result depends on more than its own call", Kind.BLOCKED)
    USED_ELSEWHERE = (_ALSO_USED, Kind.BLOCKED)
    NO_PLACE_FOR_IMPORT = ("there is no place for the import the rewrite adds", Kind.QUIET)
    HELPER_NOT_CURRENT = (
        "the file defines its own `{name}`, not the one this enslint writes (an older enslint's, or edited): "
        "rename or delete it, and the fix writes the current one",
        Kind.BLOCKED,
    )
    RUNNING_STATISTICS = ("`{kind}` members keep running statistics, which torch.vmap cannot update", Kind.BLOCKED)
    CANNOT_BATCH = ("torch.vmap cannot batch `{kind}`: {obstacle}", Kind.BLOCKED)

    # -- one wide layer (wide_layer.py) ------------------------------------------------------
    WIDE_MEMBERS = ("no automatic fix yet for {kind} members", Kind.MEMBERS)
    WIDE_DICT_NOT_COMPREHENSION = (
        "no wide layer: the nn.ModuleDict is not built by one dict comprehension",
        Kind.BLOCKED,
    )
    WIDE_NOT_ONE_BUILDER = (
        "no wide layer: the collection is not built by one comprehension or one append loop",
        Kind.BLOCKED,
    )
    WIDE_SIZES_NOT_POSITIONAL = ("no wide layer: the layer's sizes are not given positionally", Kind.BLOCKED)
    WIDE_GROUPED_CONV = ("no wide layer: grouped convolutions", Kind.BLOCKED)
    WIDE_USED_ELSEWHERE = ("no wide layer: " + _ALSO_USED, Kind.BLOCKED)
    WIDE_MORE_THAN_COLLECT = ("no wide layer: the loop does more than collect each head's output", Kind.BLOCKED)
    WIDE_UNREAD = ("the collection or the loop is not in the shape the wide layer reads", Kind.QUIET)

    # -- the nest of groups of heads (grouped_heads.py) ---------------------------------------
    NEST_HEADS = ("no fused rewrite yet for nests of `{head}` heads", Kind.MEMBERS)
    NEST_HEAD_ARGUMENTS = (
        "the heads take arguments besides (in, out), which the nest rewrite does not carry yet",
        Kind.BLOCKED,
    )
    NEST_INPUTS = ("the groups' heads read neither one input nor one slice of one tensor each", Kind.BLOCKED)
    NEST_SLICED_TENSOR = ("the sliced tensor is not a plain name that stays the same for every group", Kind.BLOCKED)
    NEST_SPELLING = (
        "the nest is rewritten only when written as `groups = []` and a loop that appends each group's stacked heads",
        Kind.BLOCKED,
    )
    NEST_DIM_FROM_END = (
        "each group's heads are stacked along a dim counted from the end, which the rewrite does not place yet",
        Kind.BLOCKED,
    )
    NEST_NOT_ONE_BUILDER = ("the nest is not built by one statement or one append loop in `__init__`", Kind.BLOCKED)
    NEST_USED_ELSEWHERE = ("`{collection}` is used elsewhere in the class too", Kind.BLOCKED)
    NEST_UNREAD = ("the nest's construction or its loops are not in the shape the rewrite reads", Kind.QUIET)
    NAME_TAKEN = ("a name the rewrite adds is already taken in the class", Kind.QUIET)

    # -- one call of a shared instance (shared_instance.py) ----------------------------------
    SHARED_NOT_LAST_DIM = (
        "one call on all slices needs members that act on the last dim; `{kind}` may not",
        Kind.BLOCKED,
    )

    # -- unbind (unbind.py) ------------------------------------------------------------------
    UNBIND_MIXED_SLICES = ("the members read width-1 slices and single entries of one tensor", Kind.BLOCKED)
    UNBIND_SEVERAL_TENSORS = ("the members read slices of more than one tensor", Kind.BLOCKED)
    UNBIND_NO_INDEX = ("the loop has no member index to replace", Kind.BLOCKED)
    UNBIND_TENSOR_VARIES = (
        "the sliced tensor is not a plain name that stays the same for every member",
        Kind.BLOCKED,
    )

    # -- torch.vmap over stacked members (vmap_members.py) ------------------------------------
    VMAP_CLASS_IS_LIST = (
        "the class is itself the nn.ModuleList (`for m in {collection}`), which the rewrite cannot replace from inside",
        Kind.BLOCKED,
    )
    VMAP_CONTAINER = (
        "`{collection}` is an `{container}`; the general rewrite replaces an nn.ModuleList",
        Kind.BLOCKED,
    )
    VMAP_NOT_ONE_BUILDER = (
        "`{collection}` is not built by one statement or one append loop in `__init__`",
        Kind.BLOCKED,
    )
    VMAP_KEYWORD_ARGUMENTS = ("the members are called with keyword or unpacked arguments", Kind.BLOCKED)

    # -- members kept, stacked at each call (call_time.py, loop_body.py) -----------------------
    CALL_TIME_UNPACKED = ("the members are called with unpacked arguments", Kind.BLOCKED)
    NOT_PROVEN = ("the members of one collection are not proven identical", Kind.BLOCKED)
    SEVERAL_COLLECTIONS_AND = ("the loop runs {count} collections per member ({names}) and {why}", Kind.BLOCKED)
    BODY_NOT_INDEXED_RANGE = ("the loop is not `for i in range(n)` over the members by index", Kind.BLOCKED)
    BODY_LIST_NOT_FRESH = ("`{listed}` is not an empty list made just before the loop", Kind.BLOCKED)
    BODY_LIST_NOT_ONLY_STACKED = ("`{listed}` is not only stacked after the loop", Kind.BLOCKED)
    BODY_ON_FOR_LINE = ("the loop's body is on its `for` line", Kind.BLOCKED)
    BODY_NOT_ALL_INDEXED = ("the members are not all called by index (`self.heads[i]`)", Kind.BLOCKED)
    BODY_KEEPS_NOTHING = ("the loop keeps none of the members' results", Kind.BLOCKED)
    BODY_INDEX_USED = ("the loop uses its index `{index}` beyond the members and slices", Kind.BLOCKED)
    BODY_MORE_THAN_MEMBERS = ("each member's result depends on more than its own members and slices", Kind.BLOCKED)
    BODY_NAME_READ_AFTER = ("a name the loop assigns is read after it", Kind.BLOCKED)
    BODY_WRITES_NOT_ENTRY = ("the loop writes `{target}`, not one entry along one dim", Kind.BLOCKED)
    BODY_CARRIES_VALUE = ("`{name}` carries a value from one member to the next", Kind.BLOCKED)
    BODY_DOES_MORE = ("the loop body does more than run the members (`{code}`)", Kind.BLOCKED)

    # -- stacked weights (stacked_mlp.py), tried beside the general form ------------------------
    STACKED_MEMBERS = ("the members are not known to be nn.Linear layers and element-wise activations", Kind.QUIET)
    STACKED_NOT_MODULE_LIST = ("the collection is not an nn.ModuleList attribute of the class", Kind.QUIET)
    STACKED_NOT_ONE_BUILDER = ("the collection is not built by one repeated constructor call", Kind.QUIET)
    STACKED_USED_ELSEWHERE = ("the collection is used elsewhere, or its results combined otherwise", Kind.QUIET)
    STACKED_CALL = ("the members are not called with one positional argument", Kind.QUIET)
    STACKED_INPUT = ("the members' input is neither one tensor nor one slice of it per member", Kind.QUIET)

    # -- what the registry says when no form applies --------------------------------------------
    NEST_ON_INNER_LOOP = ("the fused rewrite of the whole nest comes with the inner loop's finding", Kind.BLOCKED)
    NEST_ON_INNER_FINDING = (
        "the fused rewrite of the whole nest comes with the inner loop's ENS001 finding",
        Kind.BLOCKED,
    )
    NO_FORM_YET = ("no automatic fused rewrite yet for {kind} members", Kind.MEMBERS)


# Reasons whose text is the whole note, though it does not open with "no ".
_STANDALONE = {Reason.NEST_ON_INNER_LOOP, Reason.NEST_ON_INNER_FINDING}


@dataclass(frozen=True)
class Rejection:
    """Why one rewrite does not apply to one loop: a reason and the values its text names."""

    reason: Reason
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def kind(self) -> Kind:
        return self.reason.kind

    @property
    def text(self) -> str:
        return self.reason.text.format(**dict(self.fields))

    @property
    def note(self) -> str:
        """What a finding's details say of it, in parentheses."""
        if self.reason.standalone or self.reason in _STANDALONE:
            return self.text
        return f"no fused rewrite: {self.text}"


def reject(reason: Reason, **fields: object) -> Rejection:
    return Rejection(reason, tuple((name, str(value)) for name, value in fields.items()))


NOT_APPLICABLE = Rejection(Reason.NOT_THIS_FORM)


def quoted(type_name: str) -> str:
    """A member type in backquotes, unless it carries its own (`create_mlp(...)`)."""
    return type_name if "`" in type_name else f"`{type_name}`"
