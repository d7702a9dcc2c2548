"""ENS001's unsafe fix for linear heads on one input: one wide `nn.Linear`.

`self.heads = nn.ModuleList([nn.Linear(a, b) for _ in range(n)])` becomes
`self.heads = nn.Linear(a, n * b)`, and the loop that called every head on `h` becomes
one call, `self.heads(h)`, reshaped to what the loop returned (`unflatten` to
`(n, b)`, then `movedim` for a stack, `unbind` for a list or tuple, `sum`/`mean` over
the heads). Head `i`'s weight and bias are rows `i*b .. (i+1)*b` of the wide layer, and
a load-state-dict pre-hook concatenates old checkpoints' `heads.{i}.weight` and
`heads.{i}.bias` into them, so existing checkpoints still load. Unsafe: the
`state_dict` keys change.

Offered only where the rewrite is exact and local: the collection is built by one
assignment and used nowhere but in the flagged loop, which is a comprehension whose
result is stacked, concatenated on the last axis, summed, averaged or returned as a list
or tuple.
"""

from __future__ import annotations

import libcst as cst

from enslint.analysis.loops import MemberLoop
from enslint.analysis.syntax import NodeIndex, arg_at, code_of, int_value, positional_args
from enslint.fixes import UNSAFE, NodeEdit, RuleFix

HOOK = "_merge_per_head_keys"
_COMPREHENSIONS = (cst.ListComp, cst.GeneratorExp)


def _hook_source(torch_name: str) -> str:
    return f'''

def {HOOK}(count):
    """Load checkpoints saved before enslint fused `count` heads into one nn.Linear:
    the rows of head i's weight and bias follow head i-1's in the wide layer."""

    def hook(module, state_dict, prefix, *args):
        for name in ("weight", "bias"):
            keys = [f"{{prefix}}{{i}}.{{name}}" for i in range(count)]
            if all(key in state_dict for key in keys):
                state_dict[prefix + name] = {torch_name}.cat([state_dict.pop(key) for key in keys], dim=0)

    return hook
'''


def _uses(cls_node: cst.ClassDef, attr: str) -> int:
    count = 0

    class _Uses(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            nonlocal count
            if node.attr.value == attr and isinstance(node.value, cst.Name):
                count += 1

    cls_node.visit(_Uses())
    return count


def _reshaped(comprehension: cst.BaseExpression, index: NodeIndex, torch_name: str):
    """(node to replace, suffix after `.unflatten(...)`, wrapper) for the loop's combine."""
    parent = index.parent(comprehension)
    if isinstance(parent, cst.Return) and isinstance(comprehension, cst.ListComp):
        return comprehension, ".unbind(-2)", "list"
    if not isinstance(parent, cst.Arg):
        return None
    call = index.parent(parent)
    if not isinstance(call, cst.Call) or len(call.args) < 1 or call.args[0] is not parent:
        return None
    name = code_of(call.func)
    if name in ("tuple", "list") and len(call.args) == 1:
        return call, ".unbind(-2)", name
    if name == "sum" and len(call.args) == 1:
        return call, ".sum(-2)", None
    if name in (f"{torch_name}.stack", f"{torch_name}.cat"):
        dim = arg_at(call, 1, "dim")
        if name.endswith(".cat"):
            return (call, "", None) if dim is not None and int_value(dim) == -1 else None
        dim_text = "0" if dim is None else code_of(dim)
        outer = index.parent(call)
        if isinstance(outer, cst.Attribute) and outer.attr.value == "mean":
            mean_call = index.parent(outer)
            if isinstance(mean_call, cst.Call) and mean_call.func is outer:
                axis = arg_at(mean_call, 0, "dim")
                if axis is not None and code_of(axis) == dim_text and len(mean_call.args) == 1:
                    return mean_call, ".mean(-2)", None
        return call, f".movedim(-2, {dim_text})", None
    return None


def wide_linear_fix(loop: MemberLoop, module: cst.Module, imports) -> RuleFix | None:
    member = loop.collection.member
    collection = loop.collection
    if (
        member.kind != "linear"
        or loop.parent is not None
        or collection.origin is None
        or not isinstance(loop.node, cst.CompFor)
        or not isinstance(loop.report_node, _COMPREHENSIONS)
        or loop.report_node.for_in is not loop.node
        or loop.node.inner_for_in is not None
        or loop.node.ifs
        or len(loop.calls) != 1
        or collection.size is None
    ):
        return None
    attr = loop.collection_text.split(".", 1)[-1]
    if "." not in loop.collection_text or _uses(loop.cls.node, attr) != 2:
        return None  # the heads are used elsewhere too: not a local rewrite
    torch_name = next((local for local, full in imports.bindings.items() if full == "torch"), None)
    if torch_name is None:
        return None
    call = loop.calls[0].node
    if loop.report_node.elt is not call or len(call.args) != 1 or call.args[0].keyword or call.args[0].star:
        return None  # the loop does more with each output than collect it

    method = next(m for m in loop.cls.methods.values() if m.name.value == loop.method)
    index = NodeIndex(method)
    shape = _reshaped(loop.report_node, index, torch_name)
    if shape is None:
        return None
    replaced, suffix, wrapper = shape

    ctor = collection.origin.body[0].value
    linear = _linear_ctor(ctor)
    if linear is None:
        return None
    self_name = loop.collection_text.split(".", 1)[0]
    count_attr = f"{attr}_count"
    if _uses(loop.cls.node, count_attr):
        return None
    size = collection.size
    wide = f"{self_name}.{attr}({code_of(call.args[0].value)}).unflatten(-1, ({self_name}.{count_attr}, -1)){suffix}"
    if suffix == "":  # concatenated on the last axis: exactly the wide layer's output
        wide = f"{self_name}.{attr}({code_of(call.args[0].value)})"
    if wrapper:
        wide = f"{wrapper}({wide})"

    func = code_of(linear.func)
    extra = "".join(f", {code_of(a.value)}" if a.keyword is None else f", {a.keyword.value}={code_of(a.value)}" for a in linear.args[2:])
    in_size, out_size = code_of(linear.args[0].value), code_of(linear.args[1].value)
    init_self = _init_self(loop)
    lines = [
        f"# enslint ENS001: {size} `{func}` heads fused into one layer, one matmul for all.",
        f"{init_self}.{attr} = {func}({in_size}, {size} * {out_size}{extra})",
        f"{init_self}.{count_attr} = {size}",
        f"{init_self}.{attr}.register_load_state_dict_pre_hook({HOOK}({size}))",
    ]
    construction = "\n".join(lines)

    edits = [NodeEdit(collection.origin, construction), NodeEdit(replaced, wide)]
    if not any(isinstance(s, cst.FunctionDef) and s.name.value == HOOK for s in module.body):
        # At the end of the file: it is only called when the module is built.
        edits.append(NodeEdit(None, _hook_source(torch_name)))
    message = f"Fuse the {size} heads into one `{func}({in_size}, {size} * {out_size})` (changes state_dict keys; old checkpoints load through a hook)"
    return RuleFix(UNSAFE, message, tuple(edits))


def _linear_ctor(value: cst.BaseExpression) -> cst.Call | None:
    """The `nn.Linear(a, b)` repeated in `nn.ModuleList([nn.Linear(a, b) for _ in ...])`."""
    while isinstance(value, cst.Call) and len(value.args) == 1:
        value = value.args[0].value
    if isinstance(value, _COMPREHENSIONS) and isinstance(value.elt, cst.Call):
        ctor = value.elt
        if len(positional_args(ctor)) >= 2 and all(a.keyword is None for a in ctor.args[:2]):
            return ctor
    return None


def _init_self(loop: MemberLoop) -> str:
    init = loop.cls.methods.get("__init__")
    params = init.params.params if init is not None else []
    return params[0].name.value if params else "self"
