"""The unsafe fix for identical MLP members, on one input or on slices: stacked weights.

Members made only of `nn.Linear` layers, each followed by at most one parameter-free
element-wise activation, are fused layer by layer: one parameter per layer holding every
member's weights, `(E, in, out)`, and one `torch.baddbmm` per layer for all members at
once (member axis first), with the same activations between them. Two spellings of the
member are read:

- an `nn.Sequential(nn.Linear(a, h), nn.ReLU(), nn.Linear(h, 1))`;
- a class of the same file whose `__init__` only assigns `nn.Linear` layers (and
  activation modules) and whose `forward` chains them, `x = torch.relu(self.h1(x))`
  statement by statement; its layer sizes are written in terms of the ensemble's own
  variables by binding the class's parameters to the member call's arguments.

On one input `x` (..., in) every member reads the same rows; on slices (`x[:, i, :]`,
`x.select(1, i)`, `zip(self.members, x.unbind(1))`) the member axis of `x` is moved to
the front. What the loop does with each member's output besides calling it (the seed's
`.transpose(0, 1)`) is applied to all members at once by `torch.vmap` over the stacked
output, a view-only cost. The collection's attribute holds a `StackedMLP` from the
package's helper module (helper_sources.py): its layer widths, activations and the
members' layer names, whose load-state-dict pre-hook maps an old checkpoint's
`members.{i}.{layer}.weight/bias` onto the stacked tensors. Unsafe: the keys change.

Why one module of this size: the two spellings of an MLP member (a Sequential, a class
of the file) and the generated code are read and written together; each part is short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

import libcst as cst

from enslint.analysis import kinds
from enslint.analysis.combine import Site, append_of, single_statement
from enslint.analysis.imports import ImportTable
from enslint.analysis.kinds import LINEAR, MLP, MODULE, SAME, SLICE
from enslint.analysis.loops import MemberCall, MemberLoop
from enslint.analysis.members import ELEMENTWISE, LINEARS
from enslint.analysis.syntax import code_of, first_param, names_in, positional_args
from enslint.findings import Form, NodeEdit, RuleFix
from enslint.rewrites.common import (
    Building,
    building_statements,
    built_value,
    nn_name,
    per_member_code,
    render,
    site_edits,
    sliced_input,
    used_only_by,
)
from enslint.rewrites.common import torch_name as torch_name_for
from enslint.rewrites.fix_assembly import definition, unsafe_rewrite
from enslint.rewrites.helper_module import HelperHome
from enslint.rewrites.lifting import lift, torch_functions
from enslint.rewrites.reasons import NOT_APPLICABLE, Reason, Rejection, reject

STACKED = kinds.STACKED_MLP
_PARAMETRISED = {"torch.nn.PReLU"}
# Functional activations a member's forward may call, and the module that does the same.
_FUNCTIONAL = {
    **{f"torch.{f}": m for f, m in (("relu", "ReLU"), ("tanh", "Tanh"), ("sigmoid", "Sigmoid"))},
    **{
        f"torch.nn.functional.{f}": m
        for f, m in (
            ("relu", "ReLU"),
            ("tanh", "Tanh"),
            ("sigmoid", "Sigmoid"),
            ("gelu", "GELU"),
            ("silu", "SiLU"),
            ("elu", "ELU"),
            ("softplus", "Softplus"),
            ("leaky_relu", "LeakyReLU"),
        )
    },
}


@dataclass(frozen=True)
class _Layer:
    in_size: str
    out_size: str
    activation: str  # module code applied after it: "nn.ReLU()", "nn.Identity()"
    key: str  # its name inside a member: "0" for a Sequential, "h1" for a class


def _plain_linear(call: cst.BaseExpression, imports: ImportTable) -> TypeGuard[cst.Call]:
    """`nn.Linear(a, b)` with its default bias and nothing else."""
    return (
        isinstance(call, cst.Call)
        and imports.qualify(call.func) in LINEARS
        and len(call.args) == 2
        and not any(a.keyword or a.star for a in call.args)
    )


def _sequential_layers(sequential: cst.Call, imports: ImportTable, nn_name: str) -> list[_Layer] | None:
    layers: list[_Layer] = []
    args = sequential.args
    if any(a.star or a.keyword for a in args):
        return None
    i = 0
    while i < len(args):
        linear = args[i].value
        if not _plain_linear(linear, imports):
            return None  # bias=False, dtype=..., another module: not handled
        activation, position = f"{nn_name}.Identity()", i
        if i + 1 < len(args):
            following = args[i + 1].value
            name = imports.qualify(following.func) if isinstance(following, cst.Call) else None
            if name in ELEMENTWISE and name not in _PARAMETRISED:
                activation = code_of(following)
                i += 1
        layers.append(_Layer(code_of(linear.args[0].value), code_of(linear.args[1].value), activation, str(position)))
        i += 1
    return layers or None


class _Substitute(cst.CSTTransformer):
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        value = self.values.get(original_node.value)
        if value is None:
            return updated_node
        expression = cst.parse_expression(value)
        simple = isinstance(expression, (cst.Name, cst.Integer, cst.Attribute))
        return expression if simple else expression.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _substituted(expression: cst.BaseExpression, values: dict[str, str]) -> cst.BaseExpression:
    """`expression` with each name of `values` replaced by its code."""
    result = expression.visit(_Substitute(values))
    assert isinstance(result, cst.BaseExpression)  # names become expressions; nothing is removed
    return result


@dataclass(frozen=True)
class _InitLayers:
    """What a member class's `__init__` assigns to attributes: its plain linear layers
    (the constructor calls) and its parameter-free activation modules (their code)."""

    linears: dict[str, cst.Call]
    activations: dict[str, str]


def _class_layers(call: cst.Call, module: cst.Module, imports: ImportTable, nn_name: str) -> list[_Layer] | None:
    """The layers of a local MLP class, in the order its forward applies them, sized in
    the caller's terms."""
    methods = _init_and_forward(call, module)
    if methods is None:
        return None
    init, forward = methods
    assigned = _init_layers(init, imports)
    if assigned is None:
        return None
    ops = _forward_ops(forward, assigned, imports, nn_name)
    if ops is None:
        return None
    layers = _paired_activations(ops, nn_name)
    if not layers or sorted(name for name, _ in layers) != sorted(assigned.linears):
        return None

    # The class's parameters in the caller's terms.
    values = _bound(list(init.params.params[1:]), call)
    if values is None:
        return None
    sizes = []
    for name, activation in layers:
        linear = assigned.linears[name]
        a, b = (code_of(_substituted(arg.value, values)) for arg in linear.args)
        sizes.append(_Layer(a, b, activation, name))
    return sizes


def _init_and_forward(call: cst.Call, module: cst.Module) -> tuple[cst.FunctionDef, cst.FunctionDef] | None:
    """The `__init__` and `forward` of the class of this file that `call` constructs,
    when those are its only methods."""
    if not isinstance(call.func, cst.Name):
        return None
    cls = definition(module, call.func.value)
    methods = (
        {s.name.value: s for s in cls.body.body if isinstance(s, cst.FunctionDef)}
        if isinstance(cls, cst.ClassDef)
        else {}
    )
    init, forward = methods.get("__init__"), methods.get("forward")
    if init is None or forward is None or set(methods) != {"__init__", "forward"}:
        return None
    return init, forward


def _init_layers(init: cst.FunctionDef, imports: ImportTable) -> _InitLayers | None:
    """The layers `__init__` assigns, when it does nothing but call `super().__init__()`
    and assign plain linear layers and activation modules to attributes of itself."""
    me = first_param(init)
    linears: dict[str, cst.Call] = {}
    activations: dict[str, str] = {}
    for statement in init.body.body:
        small = single_statement(statement)
        if isinstance(small, cst.Expr) and code_of(small.value) == "super().__init__()":
            continue
        if not isinstance(small, cst.Assign) or len(small.targets) != 1:
            return None
        target, value = small.targets[0].target, small.value
        if not (isinstance(target, cst.Attribute) and code_of(target.value) == me):
            return None
        name = imports.qualify(value.func) if isinstance(value, cst.Call) else None
        if _plain_linear(value, imports):
            linears[target.attr.value] = value
        elif name in ELEMENTWISE and name not in _PARAMETRISED:
            activations[target.attr.value] = code_of(value)
        else:
            return None
    return _InitLayers(linears, activations)


def _forward_ops(
    forward: cst.FunctionDef, assigned: _InitLayers, imports: ImportTable, nn_name: str
) -> list[tuple[str, str]] | None:
    """What the forward applies, in order, ("linear", attr) or ("act", module code), when
    it carries one variable through `x = act(self.layer(x))` statements and returns the
    last such expression."""
    params = [p.name.value for p in forward.params.params]
    extra = (
        forward.params.kwonly_params
        or forward.params.posonly_params
        or isinstance(forward.params.star_arg, cst.Param)
        or forward.params.star_kwarg
    )
    if len(params) != 2 or extra:
        return None
    self_name, current = params
    ops: list[tuple[str, str]] = []
    body = forward.body.body
    for position, statement in enumerate(body):
        small = single_statement(statement)
        if isinstance(small, cst.Return) and position == len(body) - 1 and small.value is not None:
            found = _chain_ops(small.value, current, self_name, assigned, imports, nn_name)
            if found is None:
                return None
            ops += found
            return ops
        if not (
            isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name)
        ):
            return None
        found = _chain_ops(small.value, current, self_name, assigned, imports, nn_name)
        if found is None:
            return None
        ops += found
        current = small.targets[0].target.value
    return None


def _chain_ops(
    expr: cst.BaseExpression,
    current: str,
    self_name: str,
    assigned: _InitLayers,
    imports: ImportTable,
    nn_name: str,
) -> list[tuple[str, str]] | None:
    """The ops `expr` applies to the variable `current`, innermost first: calls of one
    argument, each a layer or activation module of `self_name` or a functional activation."""
    if isinstance(expr, cst.Name) and expr.value == current:
        return []
    if not isinstance(expr, cst.Call) or len(expr.args) != 1 or expr.args[0].keyword or expr.args[0].star:
        return None
    inner = _chain_ops(expr.args[0].value, current, self_name, assigned, imports, nn_name)
    if inner is None:
        return None
    func = expr.func
    if isinstance(func, cst.Attribute) and func.attr.value == "forward":
        func = func.value
    if isinstance(func, cst.Attribute) and code_of(func.value) == self_name:
        if func.attr.value in assigned.linears:
            return [*inner, ("linear", func.attr.value)]
        if func.attr.value in assigned.activations:
            return [*inner, ("act", assigned.activations[func.attr.value])]
        return None
    module_name = _FUNCTIONAL.get(imports.qualify(func) or "")
    return [*inner, ("act", f"{nn_name}.{module_name}()")] if module_name else None


def _paired_activations(ops: list[tuple[str, str]], nn_name: str) -> list[tuple[str, str]] | None:
    """(linear attr, the activation module after it) for ops `linear (act)? linear (act)? ...`;
    None for an activation first or two in a row."""
    layers: list[tuple[str, str]] = []
    for kind, value in ops:
        if kind == "linear":
            layers.append((value, f"{nn_name}.Identity()"))
        elif not layers or not layers[-1][1].endswith("Identity()"):
            return None  # an activation first, or two in a row
        else:
            layers[-1] = (layers[-1][0], value)
    return layers


def _through_factory(call: cst.Call, loop: MemberLoop, module: cst.Module, imports: ImportTable) -> cst.Call | None:
    """What a one-line factory returns, in the caller's terms: `self._make_value(obs_dim)`
    or `make_value(obs_dim)` whose body is `return nn.Sequential(...)`."""
    func = call.func
    init = loop.cls.methods.get("__init__")
    if init is not None and isinstance(func, cst.Attribute) and code_of(func.value) == first_param(init):
        # A method of the class: `self._make_value(obs_dim)`.
        candidates = [
            s for s in loop.cls.node.body.body if isinstance(s, cst.FunctionDef) and s.name.value == func.attr.value
        ]
        if candidates and not any(code_of(d.decorator) == "staticmethod" for d in candidates[0].decorators):
            return None  # a bound method could read `self`
    elif isinstance(func, cst.Name):
        candidates = [s for s in module.body if isinstance(s, cst.FunctionDef) and s.name.value == func.value]
    else:
        return None
    if len(candidates) != 1:
        return None
    factory = candidates[0]
    body = factory.body.body
    small = single_statement(body[0]) if len(body) == 1 else None
    if not isinstance(small, cst.Return) or not isinstance(small.value, cst.Call):
        return None
    if imports.qualify(small.value.func) != "torch.nn.Sequential":
        return None
    params = factory.params
    if params.kwonly_params or params.posonly_params or isinstance(params.star_arg, cst.Param) or params.star_kwarg:
        return None
    values = _bound(list(params.params), call)
    if values is None:
        return None
    returned = _substituted(small.value, values)
    assert isinstance(returned, cst.Call)  # only names inside the call are replaced
    return returned


def _bound(params: list[cst.Param], call: cst.Call) -> dict[str, str] | None:
    """Each parameter's value in `call`, as code (its default where the call omits it)."""
    values: dict[str, str] = {}
    positional = positional_args(call)
    if any(a.star for a in call.args) or len(positional) > len(params):
        return None
    # Up to as many positional arguments as parameters: the rest come by keyword or default.
    for param, value in zip(params, positional, strict=False):
        values[param.name.value] = code_of(value)
    for arg in call.args:
        if arg.keyword is not None:
            values[arg.keyword.value] = code_of(arg.value)
    for param in params:
        if param.name.value not in values:
            if param.default is None:
                return None
            values[param.name.value] = code_of(param.default)
    return values


def _member_call(loop: MemberLoop, building: Building) -> cst.Call | None:
    """The one constructor call that builds every member."""
    if isinstance(building, tuple):  # ModuleList() + `for ...: self.x.append(Member(...))`
        filler = building[1]
        if len(filler.body.body) != 1:
            return None
        appended = append_of(filler.body.body[0])
        value = appended[1] if appended else None
        if value is not None and names_in(value) & set(names_in(filler.target)):
            return None  # reads the loop variable: not one constructor repeated
        return value if isinstance(value, cst.Call) else None
    value = built_value(building)
    while isinstance(value, cst.Call) and len(value.args) == 1 and not isinstance(value.args[0].value, cst.Call):
        value = value.args[0].value
    if not isinstance(value, (cst.ListComp, cst.GeneratorExp)) or not isinstance(value.elt, cst.Call):
        return None
    return value.elt


def _layer_plan(call: cst.Call, module: cst.Module, imports: ImportTable, nn: str) -> list[_Layer] | None:
    """The layers of the member `call` builds: one linear layer, an `nn.Sequential` of
    them, or a local MLP class."""
    if _plain_linear(call, imports):
        # One linear layer per member (per-channel maps): a single stacked layer.
        return [_Layer(code_of(call.args[0].value), code_of(call.args[1].value), f"{nn}.Identity()", "")]
    if imports.qualify(call.func) == "torch.nn.Sequential":
        return _sequential_layers(call, imports, nn)
    return _class_layers(call, module, imports, nn)


def _stacked_input(loop: MemberLoop, member_call: MemberCall) -> tuple[str, str] | None:
    """(the input of all members at once, its member dim as code): the one input every
    member reads with dim "None", or the sliced tensor with the dim its slices run along."""
    node = member_call.node
    if member_call.input == SAME:
        x, member_dim = code_of(node.args[0].value), "None"
        if names_in(node.args[0].value) & ({loop.index_var, loop.member_var, *loop.varying} - {None}):
            return None
        return x, member_dim
    if member_call.input == SLICE:
        sliced = sliced_input(loop, member_call)
        if sliced is None:
            return None
        x, axis = sliced.stacked()
        return x, str(axis)
    return None


def _concatenation(site: Site, fused: str) -> tuple[int | None, str]:
    """`render`'s `cat`: the axis a concatenation of the members' outputs runs along, and
    the code for it from `fused` (members first); the last axis unless the site says."""
    if site.kind == "cat" and site.dim is not None and site.dim.lstrip("-").isdigit():
        d = int(site.dim)
        axis = d if d >= 0 else d - 1  # where the member axis goes: beside the concatenated one
        return d, f"{fused}.movedim(0, {axis}).flatten({axis}, {axis + 1})"
    return -1, f"{fused}.movedim(0, -2).flatten(-2)"


def _ready(loop: MemberLoop, imports: ImportTable) -> tuple[tuple[str, bool], Building] | Rejection:
    """(the file's name for torch and whether to import it, what builds the collection),
    or why the members are not this form's. The member's kind is not checked further:
    the plan reads the layers itself, and a factory method the analysis could not see
    into may still return an MLP."""
    collection = loop.collection
    member = collection.member
    if loop.parent is not None:
        return NOT_APPLICABLE
    if member is None or member.kind not in (MLP, MODULE, LINEAR) or collection.size is None:
        return reject(Reason.STACKED_MEMBERS)
    if collection.container != "nn.ModuleList" or "." not in loop.collection_text:
        return reject(Reason.STACKED_NOT_MODULE_LIST)
    found = torch_name_for(imports)
    if found is None:
        return reject(Reason.TORCH_SHADOWED)
    building = building_statements(loop)
    if building is None:
        return reject(Reason.STACKED_NOT_ONE_BUILDER)
    return found, building


def stacked_mlp_fix(
    loop: MemberLoop, module: cst.Module, imports: ImportTable, home: HelperHome | None = None
) -> RuleFix | Rejection:
    """Stacked weights with one baddbmm per layer, or why not; its reasons are never said
    (registry.py tries the general form beside it, which says what blocks both)."""
    collection = loop.collection
    ready = _ready(loop, imports)
    if isinstance(ready, Rejection):
        return ready
    (torch_name, add_import), building = ready
    call = _member_call(loop, building)
    if call is None:
        return reject(Reason.STACKED_NOT_ONE_BUILDER)
    call = _through_factory(call, loop, module, imports) or call
    text = code_of(call.func)
    nn = (
        text.rsplit(".", 1)[0]
        if imports.qualify(call.func) == "torch.nn.Sequential" and "." in text
        else nn_name(imports, torch_name)
    )
    plan = _layer_plan(call, module, imports, nn)
    attr = loop.collection_text.split(".", 1)[-1]
    site = loop.combine.site
    statements = building if isinstance(building, tuple) else (building,)
    if plan is None:
        return reject(Reason.STACKED_MEMBERS)
    if site is None or not used_only_by(loop, attr, statements, site):
        return reject(Reason.STACKED_USED_ELSEWHERE)
    member_call = loop.calls[0]
    node = member_call.node
    if len(node.args) != 1 or node.args[0].keyword or node.args[0].star:
        return reject(Reason.STACKED_CALL)
    self_name = first_param(loop.cls.methods[loop.method]) or "self"
    out = "out"
    while out in loop.method_names:
        out += "_"
    replacements = {id(node): cst.Name(out)}
    read = _stacked_input(loop, member_call)
    if read is None:
        return reject(Reason.STACKED_INPUT)
    x, member_dim = read
    fused = f"{self_name}.{attr}({x})" if member_dim == "None" else f"{self_name}.{attr}({x}, {member_dim})"
    if site.element is not node:
        # What the loop does with each member's output, for all members at once.
        element = per_member_code(loop, site.element, replacements, [out])
        if element is None:
            return reject(Reason.MORE_THAN_OWN_CALL)
        # Written on the stacked outputs where it can be; vmap otherwise.
        fused = (
            lift(element, out, fused, torch_functions(imports))
            or f"{torch_name}.vmap(lambda {out}: {element})({fused})"
        )
    replacement = render(site, fused, 0, _concatenation(site, fused))
    if replacement is None:
        return reject(Reason.COMBINE_NOT_REPRODUCED)

    size = collection.size
    init_self = first_param(loop.cls.methods["__init__"]) if "__init__" in loop.cls.methods else "self"
    # Widths in, then out of each layer: a member whose layers did not chain would not run.
    widths = ", ".join([plan[0].in_size, *(layer.out_size for layer in plan)])
    activations = ", ".join(layer.activation for layer in plan)
    keys = ", ".join(layer.key if layer.key.isdigit() else f'"{layer.key}"' for layer in plan)
    # One line: the engine wraps it to the project's line length as its formatter would.
    construction = f"{init_self}.{attr} = {STACKED}({size}, [{widths}], [{activations}], [{keys}])"
    edits = [NodeEdit(building, construction), *site_edits(site, replacement)]
    message = f"Stack the {size} members' weights layer by layer and run them with one `{torch_name}.baddbmm` per layer"
    return unsafe_rewrite(Form.STACKED, message, edits, module, (STACKED,), torch_name, home, add_import)
