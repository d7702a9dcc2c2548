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

from enslint.analysis.kinds import CONV, LINEAR
from enslint.analysis.loops import MemberLoop
from enslint.analysis.syntax import NodeIndex, arg_at, code_of, first_param, int_value, positional_args
from enslint.fixes import UNSAFE, NodeEdit, RuleFix

HOOK = "_merge_per_head_keys"
_COMPREHENSIONS = (cst.ListComp, cst.GeneratorExp)


def _hook_source(torch_name: str) -> str:
    return f'''

def {HOOK}(count):
    """Load checkpoints saved before enslint fused `count` heads into one wide layer:
    head i's weight and bias rows follow head i-1's."""

    def hook(module, state_dict, prefix, *args):
        for name in ("weight", "bias"):
            keys = [f"{{prefix}}{{i}}.{{name}}" for i in range(count)]
            if all(key in state_dict for key in keys):
                state_dict[prefix + name] = {torch_name}.cat([state_dict.pop(key) for key in keys], dim=0)

    return hook
'''


class _Layer:
    """The repeated constructor and the axis its outputs' features are on."""

    def __init__(self, ctor: cst.Call, axis: int) -> None:
        self.ctor = ctor
        self.axis = axis
        self.member_axis = -2 if axis == -1 else axis  # where `unflatten` puts the heads


def _layer(loop: MemberLoop) -> _Layer | str:
    collection = loop.collection
    if collection.member.kind not in (LINEAR, CONV):
        kind = collection.member.type_name
        return f"no automatic fix yet for {kind if '`' in kind else f'`{kind}`'} members"
    if collection.origin is None:
        return "no automatic fix: the collection is not built by one assignment"
    value = collection.origin.body[0].value
    while isinstance(value, cst.Call) and len(value.args) == 1:
        value = value.args[0].value
    if not isinstance(value, _COMPREHENSIONS) or not isinstance(value.elt, cst.Call):
        return "no automatic fix: the collection is not built by one comprehension"
    ctor = value.elt
    if len(positional_args(ctor)) < 2 or any(a.keyword is None for a in ctor.args[len(positional_args(ctor)):]) or any(a.star for a in ctor.args):
        return "no automatic fix: the layer's sizes are not given positionally"
    if collection.member.kind == CONV:
        if any(a.keyword is not None and a.keyword.value == "groups" for a in ctor.args) or len(positional_args(ctor)) > 6:
            return "no automatic fix: grouped convolutions"
        return _Layer(ctor, 1)
    return _Layer(ctor, -1)


def _uses(cls_node: cst.ClassDef, attr: str) -> int:
    count = 0

    class _Uses(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            nonlocal count
            if node.attr.value == attr and isinstance(node.value, cst.Name):
                count += 1

    cls_node.visit(_Uses())
    return count


def _combine(value: cst.BaseExpression, index: NodeIndex, torch_name: str, layer: _Layer):
    """(node to replace, reshaping suffix, wrapper) for a list of head outputs `value`."""
    heads = layer.member_axis
    parent = index.parent(value)
    if isinstance(parent, cst.Return) and isinstance(value, cst.ListComp):
        return value, f".unbind({heads})", "list"
    if not isinstance(parent, cst.Arg):
        return None
    call = index.parent(parent)
    if not isinstance(call, cst.Call) or call.args[0] is not parent:
        return None
    name = code_of(call.func)
    if name in ("tuple", "list") and len(call.args) == 1:
        return call, f".unbind({heads})", name
    if name == "sum" and len(call.args) == 1:
        return call, f".sum({heads})", None
    if name not in (f"{torch_name}.stack", f"{torch_name}.cat"):
        return None
    dim = arg_at(call, 1, "dim")
    if name.endswith(".cat"):
        return (call, None, None) if dim is not None and int_value(dim) == layer.axis else None
    dim_text = "0" if dim is None else code_of(dim)
    outer = index.parent(call)
    if isinstance(outer, cst.Attribute) and outer.attr.value == "mean":
        mean_call = index.parent(outer)
        if isinstance(mean_call, cst.Call) and mean_call.func is outer and len(mean_call.args) == 1:
            axis = arg_at(mean_call, 0, "dim")
            if axis is not None and code_of(axis) == dim_text:
                return mean_call, f".mean({heads})", None
    return call, f".movedim({heads}, {dim_text})", None


def _site(loop: MemberLoop, index: NodeIndex, torch_name: str, layer: _Layer):
    """What to replace in the method, and how the wide output must be reshaped for it:
    (node or (first, last) statements, suffix, wrapper, assigned list name or None)."""
    call = loop.calls[0].node
    if len(call.args) != 1 or call.args[0].keyword or call.args[0].star:
        return None
    if isinstance(loop.node, cst.CompFor):
        comprehension = loop.report_node
        if not isinstance(comprehension, _COMPREHENSIONS) or comprehension.elt is not call or loop.node.ifs:
            return None
        if comprehension.for_in is not loop.node or loop.node.inner_for_in is not None:
            return None
        found = _combine(comprehension, index, torch_name, layer)
        return None if found is None else (*found, None)
    # `outs = []` then `for head in self.heads: outs.append(head(x))`: the two statements
    # become `outs = list(...)`, and whatever consumes `outs` later stays as it is.
    loop_node = loop.node
    body = loop_node.body.body
    if loop_node.orelse is not None or len(body) != 1 or not isinstance(body[0], cst.SimpleStatementLine):
        return None
    (statement,) = body[0].body if len(body[0].body) == 1 else (None,)
    if not (
        isinstance(statement, cst.Expr)
        and isinstance(statement.value, cst.Call)
        and isinstance(statement.value.func, cst.Attribute)
        and statement.value.func.attr.value == "append"
        and isinstance(statement.value.func.value, cst.Name)
        and len(statement.value.args) == 1
        and statement.value.args[0].value is call
    ):
        return None
    name = statement.value.func.value.value
    block = index.parent(loop_node)
    siblings = list(getattr(block, "body", ()))
    position = next((i for i, s in enumerate(siblings) if s is loop_node), None)
    if not position:
        return None
    init = siblings[position - 1]
    if not (
        isinstance(init, cst.SimpleStatementLine)
        and len(init.body) == 1
        and isinstance(init.body[0], cst.Assign)
        and code_of(init.body[0].targets[0].target) == name
        and isinstance(init.body[0].value, cst.List)
        and not init.body[0].value.elements
    ):
        return None
    return (init, loop_node), f".unbind({layer.member_axis})", "list", name


def wide_layer_fix(loop: MemberLoop, module: cst.Module, imports) -> RuleFix | str | None:
    """The fix, or why there is none (None: nothing worth saying)."""
    collection = loop.collection
    if loop.parent is not None or collection.member.kind == "group":
        return None  # nests: described in the message, rewritten by hand for now
    layer = _layer(loop)
    if isinstance(layer, str):
        return layer
    attr = loop.collection_text.split(".", 1)[-1]
    if "." not in loop.collection_text or _uses(loop.cls.node, attr) != 2:
        return f"no automatic fix: `{loop.collection_text}` is used elsewhere in the class too"
    torch_name = next((local for local, full in imports.bindings.items() if full == "torch"), None)
    count_attr = f"{attr}_count"
    if torch_name is None or _uses(loop.cls.node, count_attr) or len(loop.calls) != 1 or collection.size is None:
        return None
    method = loop.cls.methods[loop.method]
    site = _site(loop, NodeIndex(method), torch_name, layer)
    if site is None:
        return "no automatic fix: the loop does more than collect each head's output"
    replaced, suffix, wrapper, assigned = site

    self_name = first_param(method) or "self"
    call = loop.calls[0].node
    wide = f"{self_name}.{attr}({code_of(call.args[0].value)})"
    if suffix is not None:
        wide += f".unflatten({layer.axis}, ({self_name}.{count_attr}, -1)){suffix}"
    if wrapper:
        wide = f"{wrapper}({wide})"
    if assigned:
        wide = f"{assigned} = {wide}"

    size = collection.size
    ctor = layer.ctor
    func = code_of(ctor.func)
    args = [code_of(a.value) if a.keyword is None else f"{a.keyword.value}={code_of(a.value)}" for a in ctor.args]
    args[1] = f"{size} * {args[1]}"
    init_self = first_param(loop.cls.methods["__init__"]) if "__init__" in loop.cls.methods else "self"
    construction = "\n".join(
        [
            f"# enslint ENS001: {size} `{func}` heads fused into one layer, one call for all.",
            f"{init_self}.{attr} = {func}({', '.join(args)})",
            f"{init_self}.{count_attr} = {size}",
            f"{init_self}.{attr}.register_load_state_dict_pre_hook({HOOK}({size}))",
        ]
    )
    edits = [NodeEdit(collection.origin, construction), NodeEdit(replaced, wide)]
    if not any(isinstance(s, cst.FunctionDef) and s.name.value == HOOK for s in module.body):
        # At the end of the file: it is only called when the module is built.
        edits.append(NodeEdit(None, _hook_source(torch_name)))
    message = (
        f"Fuse the {size} heads into one `{func}({', '.join(args)})` "
        f"(changes state_dict keys; old checkpoints load through a hook)"
    )
    return RuleFix(UNSAFE, message, tuple(edits))
