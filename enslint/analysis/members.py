"""What a module's member collections hold, and whether the members are identical.

A collection is an attribute such as `self.heads` that holds several sub-modules: an
`nn.ModuleList`/`nn.ModuleDict`, or a plain list or tuple registered with
`add_module`. Members count as *identical* only with evidence: one constructor
expression repeated by a comprehension or loop whose variable the constructor does not
read (`[nn.Linear(h, a) for _ in range(n)]`, `ModuleList()` + `append` in a loop,
`copy.deepcopy(layer) for _ in range(n)`, a factory or local class called the same way),
or a literal list of the same constructor written out several times. Anything else is
heterogeneous, and the rules stay silent about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from enslint.analysis.kinds import CONV, GROUP, LINEAR, MLP, MODULE
from enslint.analysis.syntax import (
    arg_at,
    code_of,
    free_names,
    int_value,
    positional_args,
    self_attribute,
    target_names,
)

if TYPE_CHECKING:
    from enslint.analysis.model import FileContext

CONTAINERS = {
    "torch.nn.ModuleList": "nn.ModuleList",
    "torch.nn.ModuleDict": "nn.ModuleDict",
}
# Only these containers and plain lists registered with add_module are collections: keep
# kinds.COLLECTION_MARKERS in step, the checker's prefilter relies on it.
PLAIN_CONTAINERS = {"list", "tuple"}
ELEMENTWISE = {
    f"torch.nn.{name}"
    for name in (
        "ReLU ReLU6 LeakyReLU PReLU ELU SELU CELU GELU SiLU Mish Tanh Sigmoid Softplus "
        "Hardtanh Hardswish Hardsigmoid Tanhshrink Softsign Identity Dropout AlphaDropout"
    ).split()
}
LINEARS = {"torch.nn.Linear", "torch.nn.LazyLinear"}
CONVS = {"torch.nn.Conv1d", "torch.nn.Conv2d", "torch.nn.Conv3d"}


@dataclass
class Member:
    text: str  # the constructor as written, e.g. "nn.Linear(hidden_dim, num_actions)"
    kind: str
    type_name: str  # "nn.Linear", "MLP", "nn.Sequential", "create_mlp(...)"
    in_size: str | None = None
    out_size: str | None = None
    inner: Collection | None = None  # set when kind == GROUP


@dataclass
class Collection:
    attr: str
    container: str  # "nn.ModuleList", "nn.ModuleDict", "list + add_module"
    size: str | None  # as written: "ensemble_size", "3", "n_layers - 1"
    size_value: int | None
    member: Member | None  # None: the members are not provably identical
    why_heterogeneous: str | None = None  # when member is None: the evidence against
    # The one statement that builds the collection (`self.heads = nn.ModuleList([...])`),
    # when it is built that way; rewrites replace it.
    origin: cst.SimpleStatementLine | None = None
    # For a collection created empty and filled by a loop: the creating statement.
    created: cst.SimpleStatementLine | None = None

    @property
    def identical(self) -> bool:
        return self.member is not None


def display_type(qualified: str) -> str:
    if qualified.startswith("torch.nn.") and qualified.count(".") == 2:
        return "nn." + qualified.rsplit(".", 1)[1]
    return qualified


@dataclass
class _Loop:
    """A `for` loop (or comprehension clause) enclosing construction code."""

    targets: set[str]
    size: str
    size_value: int | None


@dataclass
class _Builder:
    """An empty container filled later by `append` calls."""

    container: str
    depth: int  # how many loops enclosed the statement that created it
    appends: list[tuple[cst.BaseExpression, tuple[_Loop, ...], bool]] = field(default_factory=list)
    # Filled at once from another collection: `self.extend(critics)`, `super().__init__(...)`.
    filled_with: cst.BaseExpression | None = None
    opaque: bool = False  # filled some other way (insert, item assignment, ...): give up


def loop_size(iterable: cst.BaseExpression, ctx: FileContext) -> tuple[str, int | None]:
    """How many times a loop over `iterable` runs, as written in the code."""
    if isinstance(iterable, cst.Call) and ctx.imports.qualify(iterable.func) in (None, "range") and code_of(iterable.func) == "range":
        args = positional_args(iterable)
        if len(args) == 1:
            return code_of(args[0]), int_value(args[0])
        if len(args) == 2:
            lo, hi = int_value(args[0]), int_value(args[1])
            if lo == 0:
                return code_of(args[1]), hi
            value = hi - lo if lo is not None and hi is not None else None
            return f"{code_of(args[1])} - {code_of(args[0])}", value
    if isinstance(iterable, (cst.List, cst.Tuple)):
        return str(len(iterable.elements)), len(iterable.elements)
    return f"len({code_of(iterable)})", None


def _product(loops: tuple[_Loop, ...]) -> tuple[str, int | None]:
    sizes = [loop.size for loop in loops]
    values = [loop.size_value for loop in loops]
    text = " * ".join(sizes) if len(sizes) > 1 else sizes[0]
    value = None
    if all(v is not None for v in values):
        value = 1
        for v in values:
            value *= v
    return text, value


class ConstructionScanner:
    """Reads the methods of one class (or one factory function) for member collections."""

    def __init__(self, ctx: FileContext, self_name: str | None, self_is_collection: bool = False) -> None:
        self.ctx = ctx
        self.self_name = self_name
        self.env: dict[str, cst.BaseExpression] = {}
        self.builders: dict[str, _Builder] = {}
        if self_is_collection and self_name is not None:
            # A subclass of nn.ModuleList is its own collection.
            self.builders[self_name] = _Builder("nn.ModuleList", 0)
        self.self_values: dict[str, list[cst.BaseExpression]] = {}
        # `self.n = n`: what simple attributes hold, to recognise `range(self.n)` as the
        # size of a collection built with `range(n)`.
        self.size_attrs: dict[str, str] = {}
        # The statement lines that assign each `self.attr`: None for one inside a loop or a
        # branch, or sharing its line. A rewrite replaces a collection's only assignment.
        self.self_lines: dict[str, list[cst.SimpleStatementLine | None]] = {}
        self._line: cst.SimpleStatementLine | None = None
        self.registers_with_add_module = False
        self.returns: list[cst.BaseExpression] = []

    # -- statements ---------------------------------------------------------------
    def scan_function(self, function: cst.FunctionDef) -> None:
        self._block(function.body.body, ())

    def _block(self, statements, loops: tuple[_Loop, ...], conditional: bool = False) -> None:
        for statement in statements:
            self._statement(statement, loops, conditional)

    def _statement(self, statement: cst.CSTNode, loops: tuple[_Loop, ...], conditional: bool) -> None:
        if isinstance(statement, cst.SimpleStatementLine):
            self._line = statement if len(statement.body) == 1 and not loops and not conditional else None
            for small in statement.body:
                self._small(small, loops, conditional)
        elif isinstance(statement, cst.For):
            size, value = loop_size(statement.iter, self.ctx)
            loop = _Loop(set(target_names(statement.target)), size, value)
            self._block(statement.body.body, loops + (loop,), conditional)
        elif isinstance(statement, cst.If):
            self._block(statement.body.body, loops, True)
            orelse = statement.orelse
            while orelse is not None:
                self._block(orelse.body.body, loops, True)
                orelse = getattr(orelse, "orelse", None)
        elif isinstance(statement, (cst.With, cst.Try, cst.While)):
            self._block(statement.body.body, loops, conditional or isinstance(statement, cst.While))

    def _builder_key(self, node: cst.BaseExpression) -> str | None:
        attr = self_attribute(node, self.self_name)
        if attr is not None:
            return "self." + attr
        if isinstance(node, cst.Name):
            return node.value
        if isinstance(node, cst.Subscript):
            inner = self._builder_key(node.value)
            return None if inner is None else inner + "[*]"
        return None

    def _small(self, small: cst.CSTNode, loops: tuple[_Loop, ...], conditional: bool) -> None:
        if isinstance(small, cst.Return) and small.value is not None:
            self.returns.append(small.value)
        elif isinstance(small, (cst.Assign, cst.AnnAssign)) and small.value is not None:
            targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
            for target in targets:
                self._assign(target, small.value, loops)
        elif isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            self._call(small.value, loops, conditional)

    def _assign(self, target: cst.BaseExpression, value: cst.BaseExpression, loops) -> None:
        key = self._builder_key(target)
        if isinstance(target, cst.Subscript):
            # `self.heads[i] = ...` fills a container by item: not a pattern we can prove.
            if key is not None and key.removesuffix("[*]") in self.builders:
                self.builders[key.removesuffix("[*]")].opaque = True
            return
        if key is None:
            return
        container = self.empty_container(value)
        if container is not None:
            self.builders[key] = _Builder(container, len(loops))
        else:
            self.builders.pop(key, None)
        attr = self_attribute(target, self.self_name)
        if attr is not None:
            self.self_values.setdefault(attr, []).append(value)
            self.self_lines.setdefault(attr, []).append(self._line)
            if isinstance(value, (cst.Name, cst.Integer, cst.Attribute, cst.BinaryOperation)):
                self.size_attrs[attr] = code_of(value)
        elif isinstance(target, cst.Name):
            self.env[target.value] = value

    def _call(self, call: cst.Call, loops, conditional: bool) -> None:
        func = call.func
        if isinstance(func, cst.Attribute):
            owner_key = self._builder_key(func.value)
            if func.attr.value == "append" and owner_key is not None and len(call.args) == 1:
                builder = self.builders.get(owner_key)
                if builder is None and owner_key.endswith("[*]"):
                    builder = self.builders.setdefault(owner_key, _Builder("nested", len(loops) - 1))
                if builder is not None:
                    builder.appends.append((call.args[0].value, loops, conditional))
                return
            if func.attr.value == "extend" and owner_key in self.builders and len(call.args) == 1:
                builder = self.builders[owner_key]
                if builder.appends or builder.filled_with is not None or loops:
                    builder.opaque = True
                else:
                    builder.filled_with = call.args[0].value
                return
            if func.attr.value in ("insert", "__setitem__") and owner_key in self.builders:
                self.builders[owner_key].opaque = True
                return
            if (
                func.attr.value == "__init__"
                and isinstance(func.value, cst.Call)
                and code_of(func.value.func) == "super"
                and self.self_name in self.builders
                and len(call.args) == 1
            ):
                self.builders[self.self_name].filled_with = call.args[0].value
                return
            if func.attr.value == "add_module" and self_attribute(func, self.self_name) is not None:
                self.registers_with_add_module = bool(loops) or self.registers_with_add_module
                return

    # -- expressions --------------------------------------------------------------
    def empty_container(self, value: cst.BaseExpression) -> str | None:
        """The container's name when `value` builds an empty one (`nn.ModuleList()`, `[]`)."""
        if isinstance(value, cst.List) and not value.elements:
            return "list"
        if isinstance(value, cst.Call):
            qualified = self.ctx.imports.qualify(value.func) or code_of(value.func)
            args = positional_args(value)
            empty = not value.args or (len(args) == 1 and isinstance(args[0], (cst.List, cst.Dict)) and not getattr(args[0], "elements", None))
            if qualified in CONTAINERS and empty:
                return CONTAINERS[qualified]
            if qualified == "list" and not value.args:
                return "list"
        return None

    def collection(self, attr: str, key: str, value: cst.BaseExpression | None) -> Collection | None:
        """The collection an attribute holds, from its builder or its assigned value."""
        builder = self.builders.get(key)
        if builder is not None:
            return self._from_builder(attr, key, builder)
        if value is None:
            return None
        return self.collection_from_expr(attr, value, ())

    def _from_builder(self, attr: str, key: str, builder: _Builder) -> Collection | None:
        container = builder.container
        if builder.filled_with is not None and not builder.opaque and not builder.appends:
            filled = self.collection_from_expr(attr, builder.filled_with, (key,))
            if filled is not None:
                filled.container = container if container != "nested" else filled.container
            return filled
        if builder.opaque or not builder.appends:
            return None
        if len(builder.appends) > 1:
            texts = {code_of(expr) for expr, _, _ in builder.appends}
            loops_used = any(len(loops) > builder.depth for _, loops, _ in builder.appends)
            if len(texts) == 1 and not loops_used and not any(c for _, _, c in builder.appends):
                member = self.member(builder.appends[0][0], key, ())
                count = len(builder.appends)
                return Collection(attr, container, str(count), count, member)
            return Collection(attr, container, None, None, None, "members are appended by different statements")
        expr, loops, conditional = builder.appends[0]
        own_loops = loops[builder.depth :]
        if conditional or not own_loops:
            return Collection(attr, container, None, None, None, "members are appended conditionally")
        loop_vars = set().union(*(loop.targets for loop in own_loops))
        used = self.names_read(expr) & loop_vars
        size, value = _product(own_loops)
        if used:
            return Collection(attr, container, size, value, None, f"each member's constructor reads the loop variable `{sorted(used)[0]}`")
        return Collection(attr, container, size, value, self.member(expr, key, loops))

    def names_read(self, expr: cst.BaseExpression) -> set[str]:
        """Names `expr` reads, looking through local names bound to other expressions.

        `layer = nn.Conv2d(c, 256, 1); self.convs.append(layer)` reads `c`.
        """
        names: set[str] = set()
        pending, seen = [expr], set()
        while pending:
            found = free_names(pending.pop())
            names |= found
            for name in found - seen:
                seen.add(name)
                if name in self.env:
                    pending.append(self.env[name])
        return names

    def collection_from_expr(self, attr: str, value: cst.BaseExpression, seen: tuple[str, ...]) -> Collection | None:
        ctx = self.ctx
        if isinstance(value, cst.Name):
            if value.value in self.builders:
                return self._from_builder(attr, value.value, self.builders[value.value])
            bound = self.env.get(value.value)
            if bound is not None and value.value not in seen:
                return self.collection_from_expr(attr, bound, seen + (value.value,))
            return None
        if isinstance(value, cst.Call):
            qualified = ctx.imports.qualify(value.func) or code_of(value.func)
            args = positional_args(value)
            if qualified in CONTAINERS or qualified in PLAIN_CONTAINERS:
                if len(args) != 1:
                    return None
                inner = self.collection_from_expr(attr, args[0], seen)
                if inner is not None and qualified in CONTAINERS:
                    inner.container = CONTAINERS[qualified]
                return inner
            factory = ctx.functions.get(code_of(value.func))
            if factory is not None and code_of(value.func) not in seen:
                return ctx.factory_collection(attr, factory, value, seen + (code_of(value.func),))
            return None
        if isinstance(value, (cst.ListComp, cst.GeneratorExp, cst.DictComp)):
            element = value.value if isinstance(value, cst.DictComp) else value.elt
            loops: list[_Loop] = []
            clause = value.for_in
            while clause is not None:
                if clause.ifs:
                    return Collection(attr, "list", None, None, None, "members are filtered by a condition")
                size, count = loop_size(clause.iter, ctx)
                loops.append(_Loop(set(target_names(clause.target)), size, count))
                clause = clause.inner_for_in
            container = "nn.ModuleDict" if isinstance(value, cst.DictComp) else "list"
            size, count = _product(tuple(loops))
            used = free_names(element) & set().union(*(loop.targets for loop in loops))
            if used:
                return Collection(attr, container, size, count, None, f"each member's constructor reads the loop variable `{sorted(used)[0]}`")
            return Collection(attr, container, size, count, self.member(element, None, ()))
        if isinstance(value, (cst.List, cst.Tuple)):
            elements = [e.value for e in value.elements]
            if not elements or any(isinstance(e, (cst.StarredElement,)) for e in value.elements):
                return None
            texts = {code_of(e) for e in elements}
            if len(texts) > 1:
                return Collection(attr, "list", str(len(elements)), len(elements), None, "members are listed with different constructors")
            return Collection(attr, "list", str(len(elements)), len(elements), self.member(elements[0], None, ()))
        return None

    def member(self, expr: cst.BaseExpression, parent_key: str | None, loops) -> Member | None:
        """What one member is, or None when nothing proves what it is."""
        ctx = self.ctx
        text = code_of(expr)
        if isinstance(expr, cst.Name):
            if expr.value in self.builders:
                inner = self._from_builder(expr.value, expr.value, self.builders[expr.value])
                return _group(text, inner)
            bound = self.env.get(expr.value)
            if bound is not None and bound is not expr:
                member = self.member(bound, None, loops)
                return member
            return None
        if not isinstance(expr, cst.Call):
            return None
        qualified = ctx.imports.qualify(expr.func)
        name = qualified or code_of(expr.func)
        if parent_key is not None and self.empty_container(expr) is not None:
            nested_key = parent_key + "[*]"
            builder = self.builders.get(nested_key)
            if builder is None:
                return None
            return _group(text, self._from_builder("", nested_key, builder))
        if name in CONTAINERS or name in PLAIN_CONTAINERS:
            return _group(text, self.collection_from_expr("", expr, ()))
        if name in ("copy.deepcopy", "copy.copy"):
            args = positional_args(expr)
            if len(args) != 1:
                return None
            source = self.member(args[0], None, loops)
            if source is not None:
                return Member(text, source.kind, source.type_name, source.in_size, source.out_size, source.inner)
            return Member(text, MODULE, f"copies of `{code_of(args[0])}`")
        if name in LINEARS:
            return Member(text, LINEAR, display_type(name), _code(arg_at(expr, 0, "in_features")), _code(arg_at(expr, 1, "out_features")))
        if name in CONVS:
            return Member(text, CONV, display_type(name), _code(arg_at(expr, 0, "in_channels")), _code(arg_at(expr, 1, "out_channels")))
        if name == "torch.nn.Sequential":
            if any(arg.star or arg.keyword is not None for arg in expr.args):
                return Member(text, MODULE, "nn.Sequential")
            return _sequential_member(text, positional_args(expr), ctx)
        if name.startswith("torch.nn."):
            return Member(text, MODULE, display_type(name))
        local_class = ctx.classes.get(name)
        if local_class is not None:
            if local_class.mlp_sizes is not None:
                return Member(text, MLP, name, *local_class.mlp_sizes)
            return Member(text, MODULE, name)
        factory = ctx.functions.get(name)
        if factory is not None:
            returned = ctx.factory_member(factory, expr)
            if returned is not None and returned.kind in (LINEAR, MLP, CONV):
                return Member(text, returned.kind, f"{name}(...)", returned.in_size, returned.out_size)
            return Member(text, MODULE, f"{name}(...)")
        if name in ("range", "len", "int", "float", "str", "dict", "set", "print", "zip", "enumerate"):
            return None
        # A constructor imported from elsewhere (or a method on self): we cannot see
        # inside, but the same call repeated is still the same kind of member.
        return Member(text, MODULE, name)


def _code(node: cst.BaseExpression | None) -> str | None:
    return None if node is None else code_of(node)


def _group(text: str, inner: Collection | None) -> Member | None:
    if inner is None or inner.member is None:
        return None
    return Member(text, GROUP, inner.container, inner=inner)


def _sequential_member(text: str, layers: list[cst.BaseExpression], ctx: FileContext) -> Member:
    linears: list[cst.Call] = []
    for layer in layers:
        if not isinstance(layer, cst.Call):
            return Member(text, MODULE, "nn.Sequential")
        name = ctx.imports.qualify(layer.func)
        if name in LINEARS:
            linears.append(layer)
        elif name not in ELEMENTWISE:
            return Member(text, MODULE, "nn.Sequential")
    if not linears:
        return Member(text, MODULE, "nn.Sequential")
    return Member(
        text,
        MLP,
        "nn.Sequential",
        _code(arg_at(linears[0], 0, "in_features")),
        _code(arg_at(linears[-1], 1, "out_features")),
    )
