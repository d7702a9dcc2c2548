"""What the fused rewrites share: how they reshape, where their input comes from, and
what else reads the collection they replace.

The fused rewrites of ENS001 (one wide layer; stacked member weights) replace the same
thing: a loop calling every member, and the code that combines the outputs, which the
analysis records as the loop's `Combine` (analysis/combine.py). `render` turns the fused
output into what the loop produced; `site_edits` puts it in place of the site.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import libcst as cst

from enslint.analysis.combine import Site, replaced, sibling
from enslint.analysis.imports import ImportTable
from enslint.analysis.loops import MemberCall, MemberLoop, SliceInfo
from enslint.analysis.syntax import NodeIndex, code_of, dotted_name, int_value, names_in, walk
from enslint.findings import NodeEdit
from enslint.rewrites.reasons import Reason, Rejection, reject

# What builds a collection in `__init__`: its one assignment, or (`self.x = nn.ModuleList()`,
# the `for` loop right after it that fills it).
Building: TypeAlias = cst.SimpleStatementLine | tuple[cst.SimpleStatementLine, cst.For]


def combined_over_first(kind: str, dim: str | None, fused: str) -> str | None:
    """`fused` (members first) combined as `torch.stack`/`torch.cat`/`sum`/`.mean` over a
    list of its members along `dim` would."""
    if kind == "stack":
        return fused if dim == "0" else f"{fused}.movedim(0, {dim})"
    if kind == "cat":
        d = int_value(cst.parse_expression(dim)) if dim is not None else None
        if d is None:
            return None
        axis = d if d >= 0 else d - 1
        return f"{fused}.movedim(0, {axis}).flatten({axis}, {axis + 1})"
    if kind in ("sum", "mean"):
        return f"{fused}.{kind}(0)"
    return None


def site_edits(site: Site, code: str) -> list[NodeEdit]:
    """The edits that put `code` (from `render`) in place of the site."""
    edits = [NodeEdit(site.replaced, code)]
    if site.consumer is not None:
        assert site.assigned is not None  # a consumer is only found for a list assigned to a name
        edits.append(NodeEdit(site.consumer, site.assigned))
    return edits


def render(site: Site, fused: str, member_axis: int, cat: tuple[int | None, str]) -> str | None:
    """The code that replaces `site.replaced`, given `fused`, an expression whose
    `member_axis` runs over the members, and `cat`: (the one axis a concatenation may
    run along, the code for it). None when the combine is not supported."""
    if site.kind == "cat":
        if site.dim != str(cat[0]):
            return None
        code = cat[1]
    elif site.kind == "stack":
        same_place = site.dim == str(member_axis)
        code = fused if same_place else f"{fused}.movedim({member_axis}, {site.dim})"
    elif site.kind in ("sum", "mean"):
        code = f"{fused}.{site.kind}({member_axis})"
    else:
        code = f"{site.wrapper}({fused}.unbind({member_axis}))"
    return f"{site.assigned} = {code}" if site.assigned else code


def building_statements(loop: MemberLoop) -> Building | None:
    """What builds the loop's collection in `__init__`: its one assignment, or
    (`self.x = nn.ModuleList()`, the `for` loop right after it that fills it)."""
    collection = loop.collection
    if collection.origin is not None:
        return collection.origin
    init = loop.cls.methods.get("__init__")
    if collection.created is None or init is None:
        return None
    block = NodeIndex.of(init).parent(collection.created)  # __init__'s body, or an `if` branch's
    filler = sibling(getattr(block, "body", ()), collection.created, 1)
    if not isinstance(filler, cst.For) or filler.orelse is not None:
        return None
    return collection.created, filler


def built_value(statement: cst.SimpleStatementLine) -> cst.BaseExpression:
    """The value assigned by the one statement that builds a collection (`collection.origin`)."""
    small = statement.body[0]
    # The analysis takes only a lone assignment with a value for a collection's origin.
    assert isinstance(small, (cst.Assign, cst.AnnAssign)) and small.value is not None
    return small.value


def torch_name(imports: ImportTable) -> tuple[str, bool] | None:
    """The name the rewrites call torch by, and whether `import torch` must be added;
    None when `torch` names something else in this file."""
    bound = imports.local_name("torch")
    if bound is not None:
        return bound, False
    return None if "torch" in imports.bindings else ("torch", True)


def nn_name(imports: ImportTable, torch_name: str) -> str:
    """How the file spells torch.nn: its own `nn` (`from torch import nn`), else through torch."""
    return imports.local_name("torch.nn") or f"{torch_name}.nn"


def used_only_by(loop: MemberLoop, attr: str, statements: Sequence[cst.CSTNode], site: Site) -> bool:
    """Whether `self.<attr>` appears nowhere in the class but in the statements that build
    it, the loop the rewrite replaces, and branches that exclude those: `if individual:`
    builds the collection and `else:` a single layer, `if self.individual:` runs the loop
    and `else:` calls that layer (a use the collection never reaches)."""
    return other_use(loop, attr, statements, site) is None


def other_use(
    loop: MemberLoop,
    attr: str,
    statements: Sequence[cst.CSTNode],
    site: Site,
    honoured: Callable[[NodeIndex, cst.Attribute], bool] | None = None,
) -> Rejection | None:
    """The first use of `self.<attr>` outside the statements a rewrite replaces (and
    not one `honoured` says the rewrite keeps working), as the reason a rewrite gives:
    "`self.heads` is also used in `act()` (`self.heads[head]`)"."""
    replaced = site.replaced if isinstance(site.replaced, tuple) else (site.replaced,)
    anchors = [*statements, *replaced]
    covered = {id(n) for anchor in anchors for n in walk(anchor)}
    index = NodeIndex.of(loop.cls.node)
    for node in index.attributes(attr):
        if id(node) in covered or (honoured is not None and honoured(index, node)):
            continue
        if not _in_branch_excluding(index, node, anchors):
            return _describe_use(index, node, loop)
    return None


def _describe_use(index: NodeIndex, node: cst.Attribute, loop: MemberLoop) -> Rejection:
    method = next((a.name.value for a in index.ancestors(node) if isinstance(a, cst.FunctionDef)), None)
    shown: cst.CSTNode = node
    parent = index.parent(node)
    if isinstance(parent, cst.Subscript) or isinstance(parent, cst.Call) and parent.func is node:
        shown = parent
    elif isinstance(parent, cst.Attribute) and isinstance(call := index.parent(parent), cst.Call):
        shown = call if call.func is parent else parent  # `self.heads.apply(init)`
    elif isinstance(parent, cst.For) and parent.iter is node:
        where = f" in `{method}()`" if method else ""
        code = f"for {code_of(parent.target)} in {code_of(node)}"
        return reject(Reason.USED_ELSEWHERE, collection=loop.collection_text, where=where, code=code)
    elif isinstance(parent, cst.Arg):
        call = index.parent(parent)
        assert call is not None  # an argument's call (or class statement) is in the class too
        shown = call
    elif isinstance(parent, cst.Assign):
        shown = parent
    text = code_of(shown)
    if len(text) > 60 or "\n" in text:
        text = code_of(node)
    where = f" in `{method}()`" if method else ""
    return reject(Reason.USED_ELSEWHERE, collection=loop.collection_text, where=where, code=text)


def _in_branch_excluding(index: NodeIndex, node: cst.CSTNode, anchors: list[cst.CSTNode]) -> bool:
    """Whether `node` is in one branch of an `if` whose other branch holds an anchor."""
    for ancestor in index.ancestors(node):
        if not isinstance(ancestor, cst.If):
            continue
        other = ancestor.orelse if index.is_inside(node, ancestor.body) else ancestor.body
        if other is not None and any(index.is_inside(anchor, other) for anchor in anchors):
            return True
    return False


@dataclass(frozen=True)
class SlicedInput:
    tensor: str  # the tensor sliced, as written: "x"
    dim: int  # the member axis of that tensor
    node: cst.BaseExpression | None  # the slice expression in the call (None: a zip element)
    name: str  # a fresh name for one member's slice
    keeps_dim: bool = False  # a width-1 slice (`x[:, i:i + 1]`): one member's input keeps the dim

    def stacked(self) -> tuple[str, int]:
        """The tensor whose `dim` runs over the members, each entry one member's input:
        `x` itself, or for width-1 slices `x` with a new dim of size 1 after the member
        axis (what each member's slice has in that place)."""
        if not self.keeps_dim:
            return self.tensor, self.dim
        if self.dim >= 0:
            return f"{self.tensor}.unsqueeze({self.dim + 1})", self.dim
        return f"{self.tensor}.unsqueeze({self.dim})", self.dim - 1


def sliced_tensor(loop: MemberLoop, info: SliceInfo) -> str | None:
    """`x` for an index, select or width-1 slice (`x[:, i]`, `x.select(1, i)`,
    `x[:, i:i + 1]`), when `x` is a plain name that is the same tensor for every member."""
    node = info.node
    if isinstance(node, cst.Subscript):
        sliced = node.value
    else:
        # `x.select(1, i)` or `x.narrow(1, i, 1)`: a method called on the sliced tensor.
        assert isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
        sliced = node.func.value
    tensor = dotted_name(sliced)
    if tensor is None or tensor.split(".")[0] in loop.varying:
        return None
    return tensor


def slice_name(loop: MemberLoop, tensor: str) -> str:
    """A fresh name for one member's slice of `tensor`: `x_idx`, `x_slice`."""
    base = tensor.rsplit(".", 1)[-1]
    name = f"{base}_{loop.index_var}" if loop.index_var else f"{base}_slice"
    while name in loop.method_names:
        name += "_"
    return name


def sliced_input(loop: MemberLoop, call: MemberCall) -> SlicedInput | None:
    """The member call's first argument as slice `i` of one tensor along one literal dim:
    `x[:, i, :]`, `x.select(1, i)`, `x[:, i:i + 1]`, `x.narrow(1, i, 1)`, or `x_i` from
    `zip(self.members, x.unbind(1))`."""
    info, first = call.slice, call.node.args[0].value
    assert info is not None  # a member call on a slice (SLICE) carries how it slices
    try:
        dim = int(info.dim)
    except (TypeError, ValueError):
        return None
    if info.via == "unbind" and isinstance(first, cst.Name) and first.value in loop.elements:
        return None if info.tensor.split(".")[0] in loop.varying else SlicedInput(info.tensor, dim, None, first.value)
    if info.via not in ("index", "select", "narrow") or info.node is not first:
        return None
    tensor = sliced_tensor(loop, info)
    return None if tensor is None else SlicedInput(tensor, dim, first, slice_name(loop, tensor), info.via == "narrow")


def per_member_code(
    loop: MemberLoop, element: cst.BaseExpression, replacements: Mapping[int, cst.CSTNode], params: list[str]
) -> str | None:
    """The code of what the loop computes per member, with `replacements` made, as the
    body of a function of `params`; None when it still reads something that changes from
    member to member (the index, the member itself beyond the replaced call, ...)."""
    new = replaced(element, replacements)
    if loop.member_var is not None:
        uses = sum(isinstance(n, cst.Name) and n.value == loop.member_var for n in walk(new))
        if uses != (1 if loop.member_var in params else 0):
            return None  # the member is used for more than its call
    if names_in(new) & ({loop.index_var, *loop.varying} - {None, *params}):
        return None
    return code_of(new)
