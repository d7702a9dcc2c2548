"""ENS001's unsafe fix for identical MLP members on one input: stacked weights.

`self.members = nn.ModuleList([nn.Sequential(nn.Linear(a, h), nn.ReLU(), nn.Linear(h, 1))
for _ in range(n)])`, each member called on the same `x`, becomes one parameter per
layer holding every member's weights, `(n, in, out)`, and one `torch.baddbmm` per layer
for all members at once (member axis first), with the same activation modules between
them. Member i's `k`-th layer weight is `weights[k][i].T`; a load-state-dict pre-hook
maps an old checkpoint's `members.{i}.{layer}.weight/bias` onto the stacked tensors.

Offered for `nn.Sequential` members made only of `nn.Linear` layers (with their default
bias) each followed by at most one parameter-free element-wise module, built by one
comprehension, and a loop `find_site` recognises. Unsafe: the state_dict keys change.
"""

from __future__ import annotations

import libcst as cst

from enslint.analysis.kinds import MLP
from enslint.analysis.loops import MemberLoop
from enslint.analysis.members import ELEMENTWISE, LINEARS
from enslint.analysis.syntax import attribute_uses, code_of, first_param, names_in
from enslint.fixes import NodeEdit, RuleFix
from enslint.rules.rewriting import find_site, render, unsafe_rewrite
from enslint.rules.rewriting import torch_name as torch_name_for

HOOK = "_merge_stacked_member_keys"
RUN = "_run_stacked_members"
_PARAMETRISED = {"torch.nn.PReLU"}


def _helpers(torch_name: str) -> str:
    return f'''

def {RUN}(x, count, weights, biases, activations):
    """Every member of a stacked MLP ensemble on the same input `x` (..., in) at once:
    layer k is one batched matmul over weights (count, in, out); returns (count, ..., out)."""
    h = x.expand(count, *x.shape).flatten(1, -2)
    for weight, bias, activation in zip(weights, biases, activations):
        h = activation({torch_name}.baddbmm(bias, h, weight))
    return h.unflatten(1, x.shape[:-1])


def {HOOK}(attr, count, layers):
    """Load checkpoints saved before enslint stacked `count` nn.Sequential members: the
    weight of member i's layer `layers[k]` becomes `attr_weights.k[i]`, transposed."""

    def hook(module, state_dict, prefix, *args):
        old = [[f"{{prefix}}{{attr}}.{{i}}.{{layer}}" for i in range(count)] for layer in layers]
        if all(f"{{key}}.weight" in state_dict for row in old for key in row):
            for k, row in enumerate(old):
                state_dict[f"{{prefix}}{{attr}}_weights.{{k}}"] = {torch_name}.stack([state_dict.pop(f"{{key}}.weight").T for key in row])
                state_dict[f"{{prefix}}{{attr}}_biases.{{k}}"] = {torch_name}.stack([state_dict.pop(f"{{key}}.bias")[None] for key in row])

    return hook
'''


def _plan(sequential: cst.Call, imports, nn_name: str) -> list[tuple[cst.Call, str]] | None:
    """(linear, the activation's code) per layer of an MLP `nn.Sequential`."""
    layers: list[tuple[cst.Call, str]] = []
    args = sequential.args
    if any(a.star or a.keyword for a in args):
        return None
    i = 0
    while i < len(args):
        linear = args[i].value
        if not isinstance(linear, cst.Call) or imports.qualify(linear.func) not in LINEARS:
            return None
        if len(linear.args) != 2 or any(a.keyword or a.star for a in linear.args):
            return None  # bias=False, dtype=...: not handled
        activation = f"{nn_name}.Identity()"
        if i + 1 < len(args):
            following = args[i + 1].value
            name = imports.qualify(following.func) if isinstance(following, cst.Call) else None
            if name in ELEMENTWISE and name not in _PARAMETRISED:
                activation = code_of(following)
                i += 1
        layers.append((linear, activation))
        i += 1
    return layers or None


def stacked_mlp_fix(loop: MemberLoop, module: cst.Module, imports) -> RuleFix | None:
    collection = loop.collection
    member = collection.member
    if member.kind != MLP or loop.parent is not None or collection.origin is None or collection.size is None:
        return None
    found = torch_name_for(imports)
    if found is None:
        return None
    torch_name, add_import = found
    value = collection.origin.body[0].value
    while isinstance(value, cst.Call) and len(value.args) == 1 and not isinstance(value.args[0].value, cst.Call):
        value = value.args[0].value
    if not isinstance(value, (cst.ListComp, cst.GeneratorExp)) or not isinstance(value.elt, cst.Call):
        return None
    sequential = value.elt
    if imports.qualify(sequential.func) != "torch.nn.Sequential" or torch_name is None:
        return None
    nn = code_of(sequential.func).rsplit(".", 1)[0] if "." in code_of(sequential.func) else f"{torch_name}.nn"
    plan = _plan(sequential, imports, nn)
    attr = loop.collection_text.split(".", 1)[-1]
    if plan is None or "." not in loop.collection_text or attribute_uses(loop.cls.node, attr) != 2:
        return None
    names = [f"{attr}_count", f"{attr}_weights", f"{attr}_biases", f"{attr}_activations"]
    if any(attribute_uses(loop.cls.node, name) for name in names):
        return None
    if {"weight", "bias", "bound"} & names_in(loop.cls.methods.get("__init__", loop.cls.node)):
        return None  # the initialisation loop below would clobber a local of that name
    site = find_site(loop, imports)
    if site is None:
        return None
    self_name = first_param(loop.cls.methods[loop.method]) or "self"
    fused = (
        f"{RUN}({code_of(site.argument)}, {self_name}.{attr}_count, {self_name}.{attr}_weights, "
        f"{self_name}.{attr}_biases, {self_name}.{attr}_activations)"
    )
    replacement = render(site, fused, 0, (-1, f"{fused}.movedim(0, -2).flatten(-2)"))
    if replacement is None:
        return None

    size = collection.size
    init_self = first_param(loop.cls.methods["__init__"]) if "__init__" in loop.cls.methods else "self"
    sizes = [(code_of(linear.args[0].value), code_of(linear.args[1].value)) for linear, _ in plan]
    weights = ",\n".join(f"    {nn}.Parameter({torch_name}.empty({size}, {a}, {b}))" for a, b in sizes)
    biases = ",\n".join(f"    {nn}.Parameter({torch_name}.empty({size}, 1, {b}))" for _, b in sizes)
    activations = ", ".join(activation for _, activation in plan)
    positions = [_position(sequential, linear) for linear, _ in plan]
    construction = "\n".join(
        [
            f"# enslint ENS001: {size} identical MLP members stacked, layer by layer, into",
            "# (members, in, out) weights: one batched matmul per layer for all members.",
            f"{init_self}.{attr}_count = {size}",
            f"{init_self}.{attr}_weights = {nn}.ParameterList([\n{weights},\n])",
            f"{init_self}.{attr}_biases = {nn}.ParameterList([\n{biases},\n])",
            f"{init_self}.{attr}_activations = {nn}.ModuleList([{activations}])",
            f"for weight, bias in zip({init_self}.{attr}_weights, {init_self}.{attr}_biases):",
            "    bound = weight.shape[1] ** -0.5  # nn.Linear's default initialisation",
            f"    {torch_name}.nn.init.uniform_(weight, -bound, bound)",
            f"    {torch_name}.nn.init.uniform_(bias, -bound, bound)",
            f'{init_self}.register_load_state_dict_pre_hook({HOOK}("{attr}", {size}, {positions}))',
        ]
    )
    edits = [NodeEdit(collection.origin, construction), NodeEdit(site.replaced, replacement)]
    message = f"Stack the {size} members' weights layer by layer and run them with one `{torch_name}.baddbmm` per layer"
    return unsafe_rewrite(message, edits, module, RUN, _helpers(torch_name), add_import)


def _position(sequential: cst.Call, linear: cst.Call) -> int:
    return next(i for i, arg in enumerate(sequential.args) if arg.value is linear)
