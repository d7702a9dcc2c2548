"""What the loop did to each member's output, written once for all members.

A stacked rewrite computes every member's output at once, with the member axis first:
`out[i]` is what member `i` returned. The loop's own code for one member (`net(x)
.transpose(0, 1)`, `torch.tanh(head(h)) * 2`) then has to run on the stacked result.
`torch.vmap(lambda out: ...)` always does that, but it is not what a person writes and
torch.fx cannot trace it. For the code people write after a member call (elementwise
functions, scalar arithmetic, methods that take dims), the same code works directly on
the stacked tensor once every non-negative dim it names moves up by one (a negative dim
counts from the end, which the member axis does not change). `lift` does that, or says
it cannot (None) and the caller keeps vmap.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from enslint.analysis.imports import ImportTable
from enslint.analysis.syntax import code_of, int_value

# Elementwise, shape-keeping: the same call on the stacked tensor.
_ELEMENTWISE = {
    "relu",
    "sigmoid",
    "tanh",
    "exp",
    "log",
    "abs",
    "neg",
    "sqrt",
    "rsqrt",
    "square",
    "sin",
    "cos",
    "gelu",
    "silu",
    "elu",
    "leaky_relu",
    "softplus",
    "mish",
    "hardtanh",
    "relu6",
    "selu",
    "celu",
    "logsigmoid",
    "float",
    "double",
    "half",
    "bfloat16",
    "contiguous",
    "clone",
    "detach",
    "clamp",
    "clip",
}
# Calls whose dims (int literals, positional or `dim=`) shift; no dims means "all", which
# the member axis would join, so those are not lifted.
_DIM_METHODS = {
    "transpose": None,
    "swapaxes": None,
    "movedim": None,
    "squeeze": 1,
    "unsqueeze": 1,
    "sum": 1,
    "mean": 1,
    "amax": 1,
    "amin": 1,
    "softmax": 1,
    "log_softmax": 1,
    "cumsum": 1,
    "flatten": 0,
    "logsumexp": 1,
    "prod": 1,
    "std": 1,
    "var": 1,
    "norm": None,
    "select": 1,
    "narrow": 1,
}
_DIM_KEYWORDS = {"dim", "dim0", "dim1", "start_dim", "end_dim", "source", "destination"}


def lift(
    element: str, placeholder: str, stacked: str, is_torch_function: Callable[[cst.BaseExpression], str | None]
) -> str | None:
    """`element` (code in terms of one member's output `placeholder`) applied to the
    expression `stacked`, which holds every member's output, member axis first; None
    when it cannot be written without vmap. `is_torch_function(func)` names the torch
    function a call's func refers to (`torch.tanh` -> "tanh", `F.gelu` -> "gelu")."""
    try:
        tree = cst.parse_expression(element)
        replacement = cst.parse_expression(stacked)
    except cst.ParserSyntaxError:
        return None
    lifted = _lift(tree, placeholder, is_torch_function)
    if lifted is None:
        return None

    class Put(cst.CSTTransformer):
        def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
            return replacement if original.value == placeholder else updated

    put = lifted.visit(Put())
    assert isinstance(put, cst.BaseExpression)  # names become expressions; nothing is removed
    return code_of(put)


def _lift(
    node: cst.BaseExpression, name: str, torch_function: Callable[[cst.BaseExpression], str | None]
) -> cst.BaseExpression | None:
    if isinstance(node, cst.Name):
        return node if node.value == name else None
    if isinstance(node, cst.BinaryOperation):
        left, right = node.left, node.right
        if _is_number(right):
            inner = _lift(left, name, torch_function)
            return None if inner is None else node.with_changes(left=inner)
        if _is_number(left):
            inner = _lift(right, name, torch_function)
            return None if inner is None else node.with_changes(right=inner)
        return None
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = _lift(node.expression, name, torch_function)
        return None if inner is None else node.with_changes(expression=inner)
    if not isinstance(node, cst.Call):
        return None
    func = node.func
    if isinstance(func, cst.Attribute) and _mentions(func.value, name):
        inner = _lift(func.value, name, torch_function)
        if inner is None:
            return None
        args = _shifted(func.attr.value, list(node.args))
        return None if args is None else node.with_changes(func=func.with_changes(value=inner), args=args)
    function = torch_function(func)
    if function is None or not node.args or node.args[0].keyword or node.args[0].star:
        return None
    inner = _lift(node.args[0].value, name, torch_function)
    if inner is None or any(_mentions(a.value, name) for a in node.args[1:]):
        return None
    rest = _shifted(function, list(node.args[1:]), positional_dims=function in _DIM_METHODS)
    if rest is None:
        return None
    return node.with_changes(args=[node.args[0].with_changes(value=inner), *rest])


def _shifted(method: str, args: list[cst.Arg], positional_dims: bool = True) -> list[cst.Arg] | None:
    """`args` of `method` with every non-negative dim one higher, or None when `method`
    is not known to keep its meaning on the stacked tensor."""
    if method in _ELEMENTWISE:
        return args if all(not _mentions_dims(a) for a in args) else None
    if method not in _DIM_METHODS:
        return None
    needed = _DIM_METHODS[method]
    if needed and not args:
        return None  # over every dim: the member axis would join in
    if method == "flatten" and not args:
        return [cst.Arg(cst.Integer("1"))]
    shifted = []
    for position, arg in enumerate(args):
        keyword = arg.keyword.value if arg.keyword else None
        is_dim = keyword in _DIM_KEYWORDS if keyword else positional_dims and _positional_dim(method, position)
        if not is_dim:
            if keyword in (None, "keepdim", "dtype", "unbiased", "correction", "p") or method == "narrow":
                shifted.append(arg)
                continue
            return None
        value = int_value(arg.value)
        if value is None:
            return None
        shifted.append(arg.with_changes(value=cst.parse_expression(str(value + 1 if value >= 0 else value))))
    return shifted


def _positional_dim(method: str, position: int) -> bool:
    if method in ("transpose", "swapaxes", "movedim", "flatten"):
        return position < 2
    if method == "norm":
        return position == 1
    return position == 0


def _is_number(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.UnaryOperation):
        node = node.expression
    return isinstance(node, (cst.Integer, cst.Float))


def _mentions(node: cst.CSTNode, name: str) -> bool:
    found = False

    class Finder(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            nonlocal found
            found |= n.value == name

    node.visit(Finder())
    return found


def _mentions_dims(arg: cst.Arg) -> bool:
    return arg.keyword is not None and arg.keyword.value in _DIM_KEYWORDS


def torch_functions(imports: ImportTable) -> Callable[[cst.BaseExpression], str | None]:
    """The resolver `lift` takes, for a file's imports: `torch.tanh`, `F.gelu`
    (`torch.nn.functional`), `torch.special.expit` by their last name."""

    def resolve(func: cst.BaseExpression) -> str | None:
        qualified = imports.qualify(func)
        if qualified is None:
            return None
        module, _, function = qualified.rpartition(".")
        return function if module in ("torch", "torch.nn.functional", "torch.special") else None

    return resolve
