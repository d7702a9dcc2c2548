"""The unsafe fix for any identical members, on one input or on slices: torch.vmap.

`self.ensemble` (built by `nn.ModuleList([...])`, or `nn.ModuleList()` plus an append
loop) is kept as it is written and then handed to `StackedMembers`, a small module this
rewrite adds to the file: `torch.func.stack_module_state` stacks every member's
parameters and buffers along a new leading member axis, and
`torch.vmap(torch.func.functional_call(...))` runs all members at once, so each layer is
one batched op instead of one op per member. The loop becomes one call,

    vals = list(self.ensemble.vmap(lambda net, x_idx: net(x_idx).transpose(0, 1), x, in_dims=(1,)).unbind(0))

where the lambda is what the loop computed per member (the member call and anything
around it), the slice `x[:, idx, :]` becomes `in_dims=(1,)` on `x`, and an input every
member shares is simply captured. The result has the member axis first and is reshaped
to what the loop produced, as the other rewrites do. The members are built by the
user's own code before they are stacked, so a seeded model starts from the same values.

`StackedMembers` still answers as the nn.ModuleList did where the rest of the class
uses it: `self.ensemble[k](x)` runs member k on its slice of the stacked tensors,
`len(self.ensemble)` is the count, `.parameters()`, `.eval()` and the like act on all the
members; and its checkpoints keep the list's keys (`ensemble.0.h1.weight`), written
through a state-dict post-hook and read through a load pre-hook, so old checkpoints,
`from_pretrained()` and other code that reads them keep working. A use it cannot honour
(a member's attribute, a slice of the members, `apply`) is named as the reason.

Unsafe all the same: the parameters the optimizer holds are the stacked tensors (an
optimizer's saved state for the members' own parameters does not carry over), results
match to floating-point rounding and dropout draws differ. Not offered when a member
could update a buffer in place during the forward (batch norm's running statistics):
vmap cannot batch that.
"""

from __future__ import annotations

import functools

import libcst as cst

from enslint.analysis import kinds
from enslint.analysis.combine import Site
from enslint.analysis.context import Member
from enslint.analysis.imports import ImportTable
from enslint.analysis.kinds import GROUP, SAME, SLICE
from enslint.analysis.loops import MemberLoop
from enslint.analysis.syntax import NodeIndex, attribute_uses, calls_of, code_of, first_param, walk
from enslint.findings import Form, NodeEdit, RuleFix
from enslint.rewrites.common import building_statements, other_use, per_member_code, render, site_edits, sliced_input
from enslint.rewrites.common import torch_name as torch_name_for
from enslint.rewrites.fix_assembly import definition, unsafe_rewrite
from enslint.rewrites.helper_module import HelperHome
from enslint.rewrites.reasons import NOT_APPLICABLE, Reason, Rejection, reject

HELPER = kinds.STACKED_MEMBERS
# Modules whose forward writes to their own buffers, which vmap cannot batch.
STATEFUL = ("BatchNorm", "InstanceNorm", "running_mean", "running_var")


# Calls whose result's shape or existence depends on the data: torch.vmap cannot batch them.
_DATA_DEPENDENT_CALLS = {"item", "tolist", "nonzero", "unique", "masked_select", "to_sparse", "argwhere"}
# Calls in an `if`/`while` test that say nothing about tensor values.
_PLAIN_TESTS = {"isinstance", "len", "hasattr", "getattr", "callable", "is_tensor"}


def vmap_obstacle(type_name: str, module: cst.Module) -> str | None:
    """Why torch.vmap cannot run the member class `type_name` of this file: a branch on
    tensor values (`if h.sum() > 0:`), `.item()`, `.nonzero()`, sparse tensors; None when
    nothing in its code stands in the way (or it is not defined here)."""
    defined = definition(module, type_name.split("(")[0].rsplit(".", 1)[-1])
    if not isinstance(defined, cst.ClassDef):
        return None
    for node in walk(defined):
        if isinstance(node, (cst.If, cst.While)):
            calls = [c for c in walk(node.test) if isinstance(c, cst.Call)]
            if any(code_of(c.func).rsplit(".", 1)[-1] not in _PLAIN_TESTS for c in calls):
                keyword = "if" if isinstance(node, cst.If) else "while"
                return f"its forward branches on tensor values (`{keyword} {code_of(node.test)}`)"
        if isinstance(node, cst.Call):
            name = code_of(node.func).rsplit(".", 1)[-1]
            if name in _DATA_DEPENDENT_CALLS or "sparse" in code_of(node.func):
                return (
                    f"its forward calls `{code_of(node.func).rsplit('.', 1)[-1]}()`, whose result depends on the data"
                )
    return None


def vmap_members_fix(
    loop: MemberLoop,
    module: cst.Module,
    imports: ImportTable,
    home: HelperHome | None = None,
    member_loops: frozenset[int] = frozenset(),
) -> RuleFix | Rejection:
    """The rewrite, or why not (NOT_APPLICABLE: not this form, a nest). `member_loops`:
    the file's member loops, by node id (another one over these members is a use the
    storage does not take over: its own fix may keep the members)."""
    collection = loop.collection
    member = collection.member
    if member is None or member.kind == GROUP or loop.parent is not None:
        return NOT_APPLICABLE
    if "." not in loop.collection_text:
        return reject(Reason.VMAP_CLASS_IS_LIST, collection=loop.collection_text)
    if collection.container != "nn.ModuleList":
        return reject(Reason.VMAP_CONTAINER, collection=loop.collection_text, container=collection.container)
    reason = unbatchable(member, module)
    if reason is not None:
        return reason
    found = torch_name_for(imports)
    if found is None:
        return reject(Reason.TORCH_SHADOWED)
    building = building_statements(loop)
    if building is None:
        return reject(Reason.VMAP_NOT_ONE_BUILDER, collection=loop.collection_text)
    site = loop.combine.site
    if site is None:
        return reject(Reason.MORE_THAN_COLLECT)
    torch_name, add_import = found
    call = loop.calls[0]
    if call.input not in (SAME, SLICE) or any(a.keyword or a.star for a in call.node.args):
        return reject(Reason.VMAP_KEYWORD_ARGUMENTS)

    attr = loop.collection_text.split(".", 1)[1]
    statements = building if isinstance(building, tuple) else (building,)
    statements = (*statements, *_used_later_in_init(loop, attr, statements[-1]))
    elsewhere = other_use(loop, attr, statements, site, functools.partial(honoured_by_stacked_members, member_loops))
    if elsewhere is not None:
        return elsewhere

    # The per-member function: the loop's element with the member call made through a
    # parameter, and the sliced argument (if any) turned into a parameter of its own.
    member_param = loop.member_var or "member"
    params, inputs, in_dims = [member_param], [], []
    # A member handed to a method (`self._score(head, x)`) is the lambda's parameter as is.
    replacements: dict[int, cst.CSTNode] = {} if call.helper else {id(call.node.func): cst.Name(member_param)}
    if call.input == SLICE:
        sliced = sliced_input(loop, call)
        if sliced is None:
            return reject(Reason.NOT_A_PLAIN_SLICE)
        params.append(sliced.name)
        stacked, axis = sliced.stacked()
        inputs.append(stacked)
        in_dims.append(str(axis))
        if sliced.node is not None:
            replacements[id(sliced.node)] = cst.Name(sliced.name)
    element = per_member_code(loop, site.element, replacements, params)
    if element is None:
        return reject(Reason.MORE_THAN_OWN_CALL)

    self_name = first_param(loop.cls.methods[loop.method]) or "self"
    dims = f"({', '.join(in_dims)},)" if in_dims else "()"
    arguments = "".join(f", {t}" for t in inputs)
    fused = f"{self_name}.{attr}.vmap(lambda {', '.join(params)}: {element}{arguments}, in_dims={dims})"
    code = render(site, fused, 0, _concatenation(site, fused))
    if code is None:
        return reject(Reason.COMBINE_NOT_REPRODUCED)

    init_self = first_param(loop.cls.methods["__init__"]) if "__init__" in loop.cls.methods else "self"
    # A size read from another file's call site means nothing here.
    members = f"the {collection.size} members" if collection.size and collection.passed_in is None else "the members"
    stacking = "\n".join(
        [
            f"# {members} stacked for torch.vmap: one op per layer",
            f"{init_self}.{attr} = {HELPER}({init_self}.{attr})",
        ]
    )
    edits = [NodeEdit(statements[-1], stacking, after=True), *site_edits(site, code)]
    message = f"Stack the members' parameters and run them all at once with `{torch_name}.vmap`"
    return unsafe_rewrite(Form.VMAP, message, edits, module, (HELPER,), torch_name, home, add_import)


# Calls on the collection that act on every member's tensors alike, which the stacked
# tensors answer as the members did. Not `apply` or `modules()`: their functions would
# look for the members' layers, which are no longer modules.
_ON_ALL_MEMBERS = {"parameters", "requires_grad_", "train", "eval", "to", "cuda", "cpu", "zero_grad"}


def honoured_by_stacked_members(member_loops: frozenset[int], index: NodeIndex, node: cst.Attribute) -> bool:
    """Whether `StackedMembers` keeps this use of the collection working: a member by
    position, called (`self.heads[k](x)`, `.forward(x)`); a loop over the members that
    only calls each and is no member loop (`for h in self.heads: x = h(x)`); `len()`; a
    call that acts on all the members' tensors (`self.heads.parameters()`, `.eval()`)."""
    parent = index.parent(node)
    if isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is node:
        return id(parent) not in member_loops and _only_called(index, parent)
    if isinstance(parent, cst.Subscript) and parent.value is node:
        if len(parent.slice) != 1 or not isinstance(parent.slice[0].slice, cst.Index):
            return False  # a slice of the members is not one member
        user = index.parent(parent)
        if isinstance(user, cst.Attribute) and user.attr.value == "forward":
            parent, user = user, index.parent(user)
        return isinstance(user, cst.Call) and user.func is parent
    if isinstance(parent, cst.Arg):
        call = index.parent(parent)
        return isinstance(call, cst.Call) and code_of(call.func) == "len" and len(call.args) == 1
    if isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value in _ON_ALL_MEMBERS:
        call = index.parent(parent)
        return isinstance(call, cst.Call) and call.func is parent
    return False


def _only_called(index: NodeIndex, loop: cst.For | cst.CompFor) -> bool:
    """Whether the loop's member (a plain name) is only ever called in the loop, as
    itself or through `.forward`: what StackedMembers' iteration hands out does that
    and nothing else."""
    if not isinstance(loop.target, cst.Name):
        return False
    name = loop.target.value
    if isinstance(loop, cst.For):
        scope: list[cst.CSTNode] = [loop.body]
    else:
        comprehension = index.parent(loop)
        if isinstance(comprehension, cst.DictComp):
            scope = [comprehension.key, comprehension.value]
        elif isinstance(comprehension, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
            scope = [comprehension.elt]
        else:
            return False
        scope += [*loop.ifs, *([loop.inner_for_in] if loop.inner_for_in else [])]
    return calls_of(index, scope, name, through_forward=True, skip_params=False) is not None


def unbatchable(member: Member, module: cst.Module) -> Rejection | None:
    """Why torch.vmap cannot run these members: their running statistics, or something
    in their class's code (`vmap_obstacle`); None when nothing says so."""
    defined = definition(module, member.type_name.split("(")[0])
    source = member.text + (module.code_for_node(defined) if defined else "")
    if any(word in source for word in STATEFUL):
        return reject(Reason.RUNNING_STATISTICS, kind=member.type_name)
    obstacle = vmap_obstacle(member.type_name, module)
    if obstacle is not None:
        return reject(Reason.CANNOT_BATCH, kind=member.type_name, obstacle=obstacle)
    return None


def _concatenation(site: Site, fused: str) -> tuple[int | None, str]:
    """`render`'s `cat`: the axis a concatenation of the members' outputs runs along and
    the code for it from `fused` (members first); none when the site is no concatenation."""
    if site.kind == "cat" and site.dim is not None:
        d = int(site.dim)
        axis = d if d >= 0 else d - 1
        return d, f"{fused}.movedim(0, {axis}).flatten({axis}, {axis + 1})"
    return None, ""


def _used_later_in_init(loop: MemberLoop, attr: str, built: cst.CSTNode) -> list[cst.CSTNode]:
    """The statements after the collection is built, in the same block of `__init__`,
    that still use it (re-initialising the members, say): the members are stacked after
    the last of them, so that they act on the members as they did."""
    init = loop.cls.methods.get("__init__")
    block = getattr(NodeIndex.of(init).parent(built), "body", ()) if init is not None else ()
    later = list(block)[list(block).index(built) + 1 :] if built in block else []
    using = [statement for statement in later if attribute_uses(statement, attr)]
    rebinds = any(
        isinstance(n, cst.AssignTarget) and code_of(n.target).endswith(f".{attr}")
        for statement in using
        for n in walk(statement)
    )
    return [] if rebinds else using
