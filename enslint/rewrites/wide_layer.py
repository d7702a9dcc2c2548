"""ENS001's unsafe fix for linear or convolution heads on one input: one wide layer.

`self.heads = nn.ModuleList([nn.Linear(a, b) for _ in range(n)])` becomes
`self.heads = nn.Linear(a, n * b)` (a convolution gets `n * out_channels` channels), and
the loop that called every head on `h` becomes one call, `self.heads(h)`, reshaped to
what the loop produced: `unflatten` the feature axis (last for a linear layer, 1 for a
convolution) to `(n, -1)`, then `movedim` for a stack, `unbind` for a list or tuple,
`sum`/`mean` over the heads, nothing for a concatenation on the feature axis. Head `i`'s
weight and bias are the rows `i*b .. (i+1)*b` of the wide layer's, and a
load-state-dict pre-hook concatenates an old checkpoint's `heads.{i}.weight` and
`heads.{i}.bias` into them, so existing checkpoints still load. Unsafe: the
`state_dict` keys change.

Offered only where the rewrite is exact and local; otherwise the finding says why not.
"""

from __future__ import annotations

import libcst as cst

from enslint.analysis import kinds
from enslint.analysis.combine import append_of
from enslint.analysis.imports import ImportTable
from enslint.analysis.kinds import CONV, LINEAR
from enslint.analysis.loops import MemberLoop
from enslint.analysis.syntax import (
    attribute_uses,
    code_of,
    first_param,
    positional_args,
)
from enslint.findings import Form, NodeEdit, RuleFix
from enslint.rewrites.common import Building, building_statements, built_value, other_use, render, site_edits
from enslint.rewrites.common import torch_name as torch_name_for
from enslint.rewrites.fix_assembly import unsafe_rewrite
from enslint.rewrites.helper_module import HelperHome
from enslint.rewrites.reasons import NOT_APPLICABLE, Reason, Rejection, quoted, reject

HOOK = kinds.PER_HEAD_HOOK
_COMPREHENSIONS = (cst.ListComp, cst.GeneratorExp)  # the comprehensions that make a list


class _Layer:
    """The repeated constructor, the axis its outputs' features are on, and the
    statement(s) that build the collection (replaced by the wide layer)."""

    def __init__(self, ctor: cst.Call, axis: int, built_by: Building, keys: str | None) -> None:
        self.ctor = ctor
        self.axis = axis
        self.built_by = built_by
        self.keys = keys  # an nn.ModuleDict's keys, as code that lists them in order
        self.member_axis = -2 if axis == -1 else axis  # where `unflatten` puts the heads


def _layer(loop: MemberLoop) -> _Layer | Rejection:
    collection = loop.collection
    assert collection.member is not None  # a member loop runs over identical members (analysis/loops.py)
    if collection.member.kind not in (LINEAR, CONV):
        kind = collection.member.type_name
        return reject(Reason.WIDE_MEMBERS, kind=quoted(kind))
    built = _construction(loop)
    if built is None:
        if collection.container == "nn.ModuleDict":
            return reject(Reason.WIDE_DICT_NOT_COMPREHENSION)
        return reject(Reason.WIDE_NOT_ONE_BUILDER)
    ctor, built_by, keys = built
    if (
        len(positional_args(ctor)) < 2
        or any(a.keyword is None for a in ctor.args[len(positional_args(ctor)) :])
        or any(a.star for a in ctor.args)
    ):
        return reject(Reason.WIDE_SIZES_NOT_POSITIONAL)
    if collection.member.kind == CONV:
        if (
            any(a.keyword is not None and a.keyword.value == "groups" for a in ctor.args)
            or len(positional_args(ctor)) > 6
        ):
            return reject(Reason.WIDE_GROUPED_CONV)
        return _Layer(ctor, 1, built_by, keys)
    return _Layer(ctor, -1, built_by, keys)


def _construction(loop: MemberLoop) -> tuple[cst.Call, Building, str | None] | None:
    """(the repeated constructor, the statement or (first, last) statements building the
    collection, the keys of an nn.ModuleDict as code): `self.heads =
    nn.ModuleList([ctor for _ in ...])`, `nn.ModuleDict({key: ctor for ...})`, or
    `self.heads = nn.ModuleList()` followed by `for _ in ...: self.heads.append(ctor)`."""
    built = building_statements(loop)
    if built is None:
        return None
    dict_loop = loop.collection.container == "nn.ModuleDict"
    if not isinstance(built, tuple):
        value = built_value(built)
        while isinstance(value, cst.Call) and len(value.args) == 1:
            value = value.args[0].value
        if dict_loop:
            # Heads taken in the dict's order (`.values()`), which is its keys' order.
            if (
                not isinstance(value, cst.DictComp)
                or not isinstance(value.value, cst.Call)
                or value.for_in.inner_for_in
                or value.for_in.ifs
            ):
                return None
            keys = f"[{code_of(value.key)} for {code_of(value.for_in.target)} in {code_of(value.for_in.iter)}]"
            return value.value, built, keys
        if isinstance(value, _COMPREHENSIONS) and isinstance(value.elt, cst.Call):
            return value.elt, built, None
        return None
    if dict_loop:
        return None
    filler = built[1]
    appended = append_of(filler.body.body[0]) if len(filler.body.body) == 1 else None
    if appended is None or not isinstance(appended[1], cst.Call):
        return None
    return appended[1], built, None


def wide_layer_fix(
    loop: MemberLoop, module: cst.Module, imports: ImportTable, home: HelperHome | None = None
) -> RuleFix | Rejection:
    """The fix, or why there is none."""
    collection = loop.collection
    assert collection.member is not None  # a member loop runs over identical members (analysis/loops.py)
    if loop.parent is not None or collection.member.kind == "group":
        return NOT_APPLICABLE  # nests: grouped_heads.py
    layer = _layer(loop)
    if isinstance(layer, Rejection):
        return layer
    attr = loop.collection_text.split(".", 1)[-1]
    built_by = layer.built_by if isinstance(layer.built_by, tuple) else (layer.built_by,)
    site = loop.combine.plain_site
    if "." not in loop.collection_text:
        return reject(Reason.WIDE_UNREAD)
    elsewhere = other_use(loop, attr, built_by, site) if site is not None else None
    if elsewhere is not None:
        return reject(Reason.WIDE_USED_ELSEWHERE, **dict(elsewhere.fields))
    found = torch_name_for(imports)
    if found is None:
        return reject(Reason.WIDE_UNREAD)
    torch_name, add_import = found
    count_attr = f"{attr}_count"
    if (
        torch_name is None
        or attribute_uses(loop.cls.node, count_attr)
        or len(loop.calls) != 1
        or collection.size is None
    ):
        return reject(Reason.WIDE_UNREAD)
    method = loop.cls.methods[loop.method]
    self_name = first_param(method) or "self"
    unfused = reject(Reason.WIDE_MORE_THAN_COLLECT)
    if site is None:
        return unfused
    raw = f"{self_name}.{attr}({code_of(site.argument)})"
    fused = f"{raw}.unflatten({layer.axis}, ({self_name}.{count_attr}, -1))"
    replacement = render(site, fused, layer.member_axis, (layer.axis, raw))
    if replacement is None:
        return unfused

    size = collection.size
    ctor = layer.ctor
    func = code_of(ctor.func)
    args = [code_of(a.value) if a.keyword is None else f"{a.keyword.value}={code_of(a.value)}" for a in ctor.args]
    args[1] = size if args[1] == "1" else f"{size} * {args[1]}"
    init_self = first_param(loop.cls.methods["__init__"]) if "__init__" in loop.cls.methods else "self"
    # The head count is stored only where the fused call unflattens by it.
    counted = [f"{init_self}.{count_attr} = {size}"] if f"{self_name}.{count_attr}" in replacement else []
    construction = "\n".join(
        [
            f"# the {size} `{func}` heads as one layer: one call for all",
            f"{init_self}.{attr} = {func}({', '.join(args)})",
            *counted,
            f"{init_self}.{attr}.register_load_state_dict_pre_hook("
            f"{HOOK}({size}{'' if layer.keys is None else ', ' + layer.keys}))",
        ]
    )
    edits = [NodeEdit(layer.built_by, construction), *site_edits(site, replacement)]
    message = f"Fuse the {size} heads into one `{func}({', '.join(args)})`"
    return unsafe_rewrite(Form.WIDE_LAYER, message, edits, module, (HOOK,), torch_name, home, add_import)
