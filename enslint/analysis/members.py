"""What a class's member collections hold, and whether the members are identical.

A collection is an attribute such as `self.heads` that holds several sub-modules: an
`nn.ModuleList`/`nn.ModuleDict`, or a plain list or tuple whose members are registered
one by one (`add_module`, `setattr(self, ...)`), or, on a holder that is no module (an
RL agent), a plain list whose constructor proves it builds modules (model.py decides).
Members count as *identical* only with
evidence: one constructor expression repeated by a comprehension or loop whose variable
the constructor does not read (`[nn.Linear(h, a) for _ in range(n)]`, `ModuleList()` +
`append` in a loop, `copy.deepcopy(layer) for _ in range(n)`, a factory, helper or class
called the same way), or a literal list of the same constructor written out several
times. Anything else is heterogeneous, and the rules stay silent about it.

The scanner reads a function's statements in order, as Python runs them: a local name
means what it was last bound to *at that point* (`layer = nn.Linear(sizes[i], 16)` in one
loop and `layer = nn.Linear(16, 16)` in a later one are two bindings), and every
statement knows the loops and `if` branches around it, so that a collection built in one
branch of an `if individual:` is told apart from one filled conditionally.

Why one module of this size: `ConstructionScanner` follows the values of `__init__`
(and of the helpers and builders it calls) through one environment of bindings; each of
its cases (comprehensions, append loops, branches, factories, copies) reads and extends
that environment, so they stay together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import libcst as cst

from enslint.analysis.bases import is_torch_module_name
from enslint.analysis.context import Collection, Member, find_method
from enslint.analysis.kinds import CONV, GROUP, LINEAR, MLP, MODULE, SELF_COLLECTION
from enslint.analysis.syntax import (
    arg_at,
    code_of,
    first_param,
    free_names,
    int_value,
    positional_args,
    self_attribute,
    target_names,
    walk,
)

if TYPE_CHECKING:
    from enslint.analysis.context import ClassInfo, FileContext, Symbol

CONTAINERS = {
    "torch.nn.ModuleList": "nn.ModuleList",
    "torch.nn.ModuleDict": "nn.ModuleDict",
}
# Only these containers and plain lists registered one by one are collections: keep
# kinds.COLLECTION_MARKERS and kinds.SETATTR_MARKER in step, the checker's prefilter
# relies on them.
PLAIN_CONTAINERS = {"list", "tuple"}
ELEMENTWISE = {
    f"torch.nn.{name}"
    for name in [
        "ReLU",
        "ReLU6",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "SELU",
        "CELU",
        "GELU",
        "SiLU",
        "Mish",
        "Tanh",
        "Sigmoid",
        "Softplus",
        "Hardtanh",
        "Hardswish",
        "Hardsigmoid",
        "Tanhshrink",
        "Softsign",
        "Identity",
        "Dropout",
        "AlphaDropout",
    ]
}
LINEARS = {"torch.nn.Linear", "torch.nn.LazyLinear"}
CONVS = {"torch.nn.Conv1d", "torch.nn.Conv2d", "torch.nn.Conv3d"}
# nn.Module's methods that move or cast the module and return it.
_RETURNS_SELF = {
    "to",
    "cuda",
    "cpu",
    "float",
    "double",
    "half",
    "bfloat16",
    "to_empty",
    "requires_grad_",
    "train",
    "eval",
}
# Calls that build no module: a member expression made of one of these proves nothing.
_NOT_CONSTRUCTORS = {
    "range",
    "len",
    "int",
    "float",
    "str",
    "dict",
    "set",
    "print",
    "zip",
    "enumerate",
    "isinstance",
    "getattr",
}


# The `if` branches around a statement: (id of the `if`, which arm) from the outermost in.
_Branch = tuple[tuple[int, int], ...]


def display_type(qualified: str) -> str:
    if qualified.startswith("torch.nn.") and qualified.count(".") == 2:
        return "nn." + qualified.rsplit(".", 1)[1]
    return qualified


def _unpacked_pairs(
    target: cst.Tuple | cst.List, value: cst.BaseExpression
) -> list[tuple[cst.BaseExpression, cst.BaseExpression]] | None:
    """(target, expression) pairs of `a, b = x, y`; None when the two sides do not pair
    up one to one (a starred element, another length), or when an expression reads what
    the statement assigns (`a, b = b, a`: Python reads every value first)."""
    if not isinstance(value, (cst.Tuple, cst.List)) or len(value.elements) != len(target.elements):
        return None
    elements = [*target.elements, *value.elements]
    if any(isinstance(e, cst.StarredElement) for e in elements):
        return None
    written = {code_of(e.value) for e in target.elements}
    for element in value.elements:
        if any(code_of(node) in written for node in walk(element.value) if isinstance(node, (cst.Name, cst.Attribute))):
            return None
    return [(t.value, v.value) for t, v in zip(target.elements, value.elements, strict=True)]


@dataclass(frozen=True)
class _Loop:
    """A `for` loop (or comprehension clause) enclosing construction code."""

    targets: frozenset[str]
    size: str
    size_value: int | None


@dataclass
class _Binding:
    """What a local name was bound to, and inside how many loops."""

    value: cst.BaseExpression
    depth: int


@dataclass
class _Scope:
    """The local names and containers as they stood at one statement."""

    env: dict[str, _Binding]
    builders: dict[str, _Builder]


@dataclass
class _Append:
    value: cst.BaseExpression
    loops: tuple[_Loop, ...]
    branch: _Branch
    scope: _Scope


@dataclass
class _Builder:
    """An empty container filled later by `append` calls."""

    container: str
    depth: int  # how many loops enclosed the statement that created it
    branch: _Branch  # the `if` branches around the statement that created it
    appends: list[_Append] = field(default_factory=list)
    # Filled at once from another collection: `self.extend(critics)`, `super().__init__(...)`.
    filled_with: tuple[cst.BaseExpression, _Scope] | None = None
    opaque: bool = False  # filled some other way (insert, item assignment, ...): give up


@dataclass
class _SelfAssign:
    value: cst.BaseExpression
    line: cst.SimpleStatementLine | None  # the statement, when it stands alone outside loops
    branch: _Branch
    scope: _Scope


@dataclass
class WatchedCall:
    """A call of a watched name (a holder class built with its members passed in)."""

    call: cst.Call
    scope: _Scope
    scanner: ConstructionScanner


def _inside(branch: _Branch, outer: _Branch) -> bool:
    """Whether statements in `branch` run whenever those in `outer` do."""
    return branch == outer


def loop_size(iterable: cst.BaseExpression, ctx: FileContext) -> tuple[str, int | None]:
    """How many times a loop over `iterable` runs, as written in the code."""
    if (
        isinstance(iterable, cst.Call)
        and ctx.imports.qualify(iterable.func) in (None, "range")
        and code_of(iterable.func) == "range"
    ):
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


def _said(text: str, words: dict[str, str]) -> str:
    """`text` with each parameter name replaced by the caller's argument."""
    import re

    for param, argument in words.items():
        text = re.sub(rf"\b{re.escape(param)}\b", argument, text)
    return text


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _product(loops: tuple[_Loop, ...]) -> tuple[str, int | None]:
    sizes = [loop.size for loop in loops]
    known = [loop.size_value for loop in loops if loop.size_value is not None]
    text = " * ".join(sizes) if len(sizes) > 1 else sizes[0]
    value = None
    if len(known) == len(loops):
        value = 1
        for v in known:
            value *= v
    return text, value


class ConstructionScanner:
    """Reads the methods of one class (or one factory function) for member collections."""

    def __init__(
        self,
        ctx: FileContext,
        self_name: str | None,
        self_is_collection: bool = False,
        cls: ClassInfo | None = None,
        watch: frozenset[str] = frozenset(),
        watch_statements: set[int] | None = None,
    ) -> None:
        self.ctx = ctx
        self.self_name = self_name
        self.cls = cls
        self.env: dict[str, _Binding] = {}
        self.builders: dict[str, _Builder] = {}
        if self_is_collection and self_name is not None:
            # A subclass of nn.ModuleList is its own collection.
            self.builders[self_name] = _Builder("nn.ModuleList", 0, ())
        self.params: dict[str, int] = {}  # the scanned function's parameters, by position
        self.self_assigns: dict[str, list[_SelfAssign]] = {}
        # `self.n = n`: what simple attributes hold, to recognise `range(self.n)` as the
        # size of a collection built with `range(n)`.
        self.size_attrs: dict[str, str] = {}
        self._line: cst.SimpleStatementLine | None = None
        self.registers = ""  # "add_module" or "setattr" when members are registered one by one
        self.returns: list[tuple[cst.BaseExpression, _Scope]] = []
        self.watch = watch
        self.watch_statements = watch_statements  # the ids of the statements that hold the calls
        self.watched: list[WatchedCall] = []
        self._inlining: list[str] = []  # the methods being read at their call (`_inline`)
        self._words: dict[str, str] = {}  # an inlined method's parameters -> the call's arguments

    # -- statements ---------------------------------------------------------------
    def scan_function(self, function: cst.FunctionDef) -> None:
        params = [*function.params.posonly_params, *function.params.params]
        self.params = {p.name.value: i for i, p in enumerate(params)}
        self.params.update({p.name.value: -1 for p in function.params.kwonly_params})
        self._block(function.body.body, (), ())

    def scope(self) -> _Scope:
        return _Scope(dict(self.env), dict(self.builders))

    def _block(self, statements: Sequence[cst.CSTNode], loops: tuple[_Loop, ...], branch: _Branch) -> None:
        for statement in statements:
            self._statement(statement, loops, branch)

    def _statement(self, statement: cst.CSTNode, loops: tuple[_Loop, ...], branch: _Branch) -> None:
        if isinstance(statement, cst.SimpleStatementLine):
            self._line = statement if len(statement.body) == 1 and not loops else None
            for small in statement.body:
                self._small(small, loops, branch)
        elif isinstance(statement, cst.For):
            size, value = loop_size(statement.iter, self.ctx)
            if self._words:
                size = _said(size, self._words)
                value = value if value is not None else _int_or_none(size)
            loop = _Loop(frozenset(target_names(statement.target)), size, value)
            for name in target_names(statement.target):
                self.env.pop(name, None)
            self._block(statement.body.body, loops + (loop,), branch)
        elif isinstance(statement, cst.If):
            arm = 0
            current: cst.If | None = statement
            while current is not None:
                self._block(current.body.body, loops, branch + ((id(statement), arm),))
                arm += 1
                orelse = getattr(current, "orelse", None)
                current = orelse if isinstance(orelse, cst.If) else None
                if isinstance(orelse, cst.Else):
                    self._block(orelse.body.body, loops, branch + ((id(statement), arm),))
        elif isinstance(statement, cst.While):
            self._block(statement.body.body, loops, branch + ((id(statement), 0),))
        elif isinstance(statement, (cst.With, cst.Try)):
            self._block(statement.body.body, loops, branch)

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

    def _small(self, small: cst.CSTNode, loops: tuple[_Loop, ...], branch: _Branch) -> None:
        if self.watch and (self.watch_statements is None or id(small) in self.watch_statements):
            self._watch_calls(small)
        if isinstance(small, cst.Return) and small.value is not None:
            self.returns.append((small.value, self.scope()))
        elif isinstance(small, (cst.Assign, cst.AnnAssign)) and small.value is not None:
            targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
            for target in targets:
                self._assign(target, small.value, loops, branch)
        elif isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            self._call(small.value, loops, branch)

    def own_collection(self) -> Collection | None:
        """The collection an nn.ModuleList subclass is (`self.extend(...)` in `__init__`)."""
        if self.self_name is None:
            return None
        builder = self.builders.get(self.self_name)
        return None if builder is None else self._from_builder(SELF_COLLECTION, self.self_name, builder)

    def _watch_calls(self, small: cst.CSTNode) -> None:
        for node in walk(small):
            if isinstance(node, cst.Call) and code_of(node.func) in self.watch:
                self.watched.append(WatchedCall(node, self.scope(), self))

    def _assign(
        self, target: cst.BaseExpression, value: cst.BaseExpression, loops: tuple[_Loop, ...], branch: _Branch
    ) -> None:
        key = self._builder_key(target)
        if isinstance(target, cst.Subscript):
            # `self.heads[i] = ...` fills a container by item: not a pattern we can prove.
            if key is not None and key.removesuffix("[*]") in self.builders:
                self.builders[key.removesuffix("[*]")].opaque = True
            return
        if isinstance(target, (cst.Tuple, cst.List)):
            pairs = _unpacked_pairs(target, value)
            if pairs is not None:
                # `q1, q2 = make_q(d), make_q(d)`, `self.heads, self.norms = ...`: each
                # target is bound to its own expression, as separate statements would.
                for one, its in pairs:
                    self._assign(one, its, loops, branch)
                return
            for name in target_names(target):
                self.env.pop(name, None)
                self.builders.pop(name, None)
            return
        if key is None:
            return
        attr = self_attribute(target, self.self_name)
        # `self.heads = nn.ModuleList(self.heads)` wraps the list the loop above filled:
        # what it reads is as it stood before this rebinding.
        wrapped = self.scope() if attr is not None and self._wraps(value, key) else None
        container = self.empty_container(value)
        if container is not None:
            self.builders[key] = _Builder(container, len(loops), branch)
        else:
            self.builders.pop(key, None)
        if attr is not None:
            scope = wrapped or self.scope()
            self.self_assigns.setdefault(attr, []).append(_SelfAssign(value, self._line, branch, scope))
            if isinstance(value, (cst.Name, cst.Integer, cst.Attribute, cst.BinaryOperation)):
                self.size_attrs[attr] = code_of(value)
        elif isinstance(target, cst.Name):
            self.env[target.value] = _Binding(value, len(loops))
            self.params.pop(target.value, None)  # a rebound parameter is no longer the caller's

    def _call(self, call: cst.Call, loops: tuple[_Loop, ...], branch: _Branch) -> None:
        func = call.func
        if isinstance(func, cst.Attribute):
            owner_key = self._builder_key(func.value)
            if func.attr.value == "append" and owner_key is not None and len(call.args) == 1:
                builder = self.builders.get(owner_key)
                if builder is None and owner_key.endswith("[*]"):
                    builder = self.builders.setdefault(owner_key, _Builder("nested", len(loops) - 1, branch))
                if builder is not None:
                    builder.appends.append(_Append(call.args[0].value, loops, branch, self.scope()))
                return
            if func.attr.value == "extend" and owner_key in self.builders and len(call.args) == 1:
                builder = self.builders[owner_key]
                if builder.appends or builder.filled_with is not None or len(loops) > builder.depth:
                    builder.opaque = True
                else:
                    builder.filled_with = (call.args[0].value, self.scope())
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
                self.builders[self.self_name].filled_with = (call.args[0].value, self.scope())
                return
            if func.attr.value == "add_module" and self_attribute(func, self.self_name) is not None:
                self.registers = self.registers or ("add_module" if loops else "")
                return
        method = self._own_method(func)
        if method is not None:
            self._inline(method, call, loops, branch)
            return
        if isinstance(func, cst.Name) and func.value == "setattr" and loops:
            args = positional_args(call)
            if (
                len(args) == 3
                and isinstance(args[0], cst.Name)
                and args[0].value == self.self_name
                and computed_name(args[1])
            ):
                self.registers = self.registers or "setattr"

    def _own_method(self, func: cst.BaseExpression) -> cst.FunctionDef | None:
        """The method of this class that `self.<name>(...)` calls, where it may fill the
        collections the caller made (`self._build_heads(d, n)` in `__init__`)."""
        name = self_attribute(func, self.self_name)
        if name is None or self.cls is None or name in self._inlining:
            return None
        method = self.cls.methods.get(name)
        if method is None or first_param(method) != self.self_name or len(self._inlining) >= 2:
            return None
        return method

    def _inline(self, method: cst.FunctionDef, call: cst.Call, loops: tuple[_Loop, ...], branch: _Branch) -> None:
        """Read the called method's statements as if they stood at the call: what it
        appends to this method's containers is theirs. Its own names are its own: its
        parameters are bound at the call, outside any loop of its body; the sizes of its
        loops are said in the caller's words (`n_critics`, not the helper's `count`)."""
        env, params, words = self.env, self.params, self._words
        self.env, self.params = {}, {}
        self._words = {param: _said(argument, words) for param, argument in _arguments(method, call).items()}
        self._inlining.append(method.name.value)
        try:
            self._block(method.body.body, loops, branch)
        finally:
            self._inlining.pop()
            self.env, self.params, self._words = env, params, words

    # -- expressions --------------------------------------------------------------
    def _wraps(self, value: cst.BaseExpression, key: str) -> bool:
        """Whether `value` puts the container `key` is filling into a module container
        (`nn.ModuleList(self.heads)`)."""
        if not isinstance(value, cst.Call) or len(value.args) != 1 or value.args[0].keyword:
            return False
        qualified = self.ctx.imports.qualify(value.func) or code_of(value.func)
        return qualified in CONTAINERS and self._builder_key(value.args[0].value) == key

    def empty_container(self, value: cst.BaseExpression) -> str | None:
        """The container's name when `value` builds an empty one (`nn.ModuleList()`, `[]`)."""
        if isinstance(value, cst.List) and not value.elements:
            return "list"
        if isinstance(value, cst.Call):
            qualified = self.ctx.imports.qualify(value.func) or code_of(value.func)
            args = positional_args(value)
            empty = not value.args or (
                len(args) == 1 and isinstance(args[0], (cst.List, cst.Dict)) and not getattr(args[0], "elements", None)
            )
            if qualified in CONTAINERS and empty:
                return CONTAINERS[qualified]
            if qualified == "list" and not value.args:
                return "list"
        return None

    def attribute_collection(self, attr: str) -> Collection | None:
        """The collection `self.<attr>` holds at the end of the scanned method.

        The last assignment decides when it runs whatever the branches; when the
        assignments that build a collection sit in branches of an `if` (`if individual:
        self.heads = nn.ModuleList(...) else: self.heads = nn.Linear(...)`), the
        collection is the attribute's in that branch, marked `conditional`.
        """
        assigns = self.self_assigns.get(attr, [])
        key = "self." + attr
        if not assigns:
            builder = self.builders.get(key)
            return None if builder is None else self._from_builder(attr, key, builder)
        last = assigns[-1]
        candidates = [last] if not last.branch else ([a for a in assigns if a.branch] or [last])
        found: list[tuple[_SelfAssign, Collection]] = []
        for assign in candidates:
            collection = self._collection_of_assign(attr, key, assign)
            if collection is not None:
                found.append((assign, collection))
        if not found:
            return None
        identical = [(a, c) for a, c in found if c.identical]
        if identical:
            assign, collection = identical[0]
            texts = {c.member.text for _, c in identical if c.member is not None}
            if len(identical) != len(found):
                # Another branch builds members that are not copies of one another (a
                # tower): the loop runs those too.
                return replace(collection, member=None, why_heterogeneous="another branch builds members that differ")
            if len(texts) > 1:
                # One repeated expression per branch: the members are identical in every
                # run, whichever branch builds them; only the general forms may fuse them.
                outer = assign.branch[0][0] if assign.branch else None
                if any(not a.branch or a.branch[0][0] != outer for a, _ in identical):
                    return replace(
                        collection, member=None, why_heterogeneous="members are built differently in different branches"
                    )
                return replace(collection, conditional=True, branch_members=tuple(sorted(texts)))
        else:
            assign, collection = found[0]
        collection.conditional = bool(assign.branch)
        # One statement builds the collection (a single layer in the other branch is no
        # second one: the rewrite checks that its uses stay in that branch).
        if len(found) == 1 and assign.line is not None:
            live = self.builders.get(key)
            # (A single layer assigned in another branch ends the builder's run there.)
            if key in assign.scope.builders and (
                assign.scope.builders[key] is live or (live is None and assign.branch)
            ):
                collection.created = assign.line
            else:
                collection.origin = assign.line
        return collection

    def _collection_of_assign(self, attr: str, key: str, assign: _SelfAssign) -> Collection | None:
        if self.empty_container(assign.value) is not None:
            # Created empty here: the builder this assignment made records what is
            # appended to it later, even when the attribute is rebound afterwards.
            builder = assign.scope.builders.get(key)
            return None if builder is None else self._from_builder(attr, key, builder)
        return self.collection_from_expr(attr, assign.value, (), assign.scope)

    def _from_builder(self, attr: str, key: str, builder: _Builder) -> Collection | None:
        container = builder.container
        if builder.filled_with is not None and not builder.opaque and not builder.appends:
            value, scope = builder.filled_with
            filled = self.collection_from_expr(attr, value, (key,), scope)
            if filled is not None:
                filled.container = container if container != "nested" else filled.container
            return filled
        if builder.opaque or not builder.appends:
            return None
        if len(builder.appends) > 1:
            texts = {code_of(a.value) for a in builder.appends}
            loops_used = any(len(a.loops) > builder.depth for a in builder.appends)
            conditional = any(not _inside(a.branch, builder.branch) for a in builder.appends)
            if len(texts) == 1 and not loops_used and not conditional:
                member = self.member(builder.appends[0].value, key, (), builder.appends[0].scope)
                count = len(builder.appends)
                return Collection(attr, container, str(count), count, member)
            per_branch = self._appended_per_branch(attr, key, builder)
            if per_branch is not None:
                return per_branch
            return Collection(attr, container, None, None, None, "members are appended by different statements")
        return self._from_append(attr, key, builder, builder.appends[0])

    def _appended_per_branch(self, attr: str, key: str, builder: _Builder) -> Collection | None:
        """One append loop in each arm of one `if` (`if dueling: for _ in range(n):
        heads.append(Dueling(d))  else: ...`): whichever arm runs, its loop repeats one
        expression, so the members are identical in every run. None when the appends are
        not spelled so."""
        arms = [a.branch[len(builder.branch) :] for a in builder.appends]
        if any(
            a.branch[: len(builder.branch)] != builder.branch or len(arm) != 1
            for a, arm in zip(builder.appends, arms, strict=True)
        ):
            return None
        if len({arm[0][0] for arm in arms}) != 1 or len({arm[0][1] for arm in arms}) != len(arms):
            return None  # not one `if`, or two appends in one arm
        loops = [{id(loop) for loop in a.loops[builder.depth :]} for a in builder.appends]
        if any(mine & theirs for i, mine in enumerate(loops) for theirs in loops[i + 1 :]):
            return None  # the `if` runs inside one loop: members chosen one by one (`if i % 2`)
        per_arm = [self._from_append(attr, key, replace(builder, branch=a.branch), a) for a in builder.appends]
        if any(c.member is None or c.member.shared for c in per_arm) or len({c.size for c in per_arm}) != 1:
            return None
        texts = tuple(sorted({c.member.text for c in per_arm if c.member is not None}))
        first = per_arm[0]
        if len(texts) == 1:
            return first
        return replace(first, conditional=True, branch_members=texts)

    def _from_append(self, attr: str, key: str, builder: _Builder, append: _Append) -> Collection:
        """The collection one append statement fills, in the loops around it."""
        container = builder.container
        own_loops = append.loops[builder.depth :]
        if not _inside(append.branch, builder.branch) or not own_loops:
            return Collection(attr, container, None, None, None, "members are appended conditionally")
        loop_vars = set().union(*(loop.targets for loop in own_loops))
        used = self.names_read(append.value, append.scope) & loop_vars
        size, size_value = _product(own_loops)
        if used:
            return Collection(
                attr,
                container,
                size,
                size_value,
                None,
                f"each member's constructor reads the loop variable `{sorted(used)[0]}`",
            )
        member = self.member(append.value, key, append.loops, append.scope)
        if member is not None and self._bound_outside(append.value, append.scope, builder.depth + len(own_loops)):
            member = replace(member, shared=True)
        return Collection(attr, container, size, size_value, member)

    def _bound_outside(self, value: cst.BaseExpression, scope: _Scope, depth: int) -> bool:
        """Whether `value` is a name bound to one instance outside the innermost loop."""
        if not isinstance(value, cst.Name):
            return False
        binding = scope.env.get(value.value)
        return binding is not None and binding.depth < depth and isinstance(binding.value, cst.Call)

    def names_read(self, expr: cst.BaseExpression, scope: _Scope) -> set[str]:
        """Names `expr` reads, looking through local names bound to other expressions.

        `layer = nn.Conv2d(c, 256, 1); self.convs.append(layer)` reads `c`.
        """
        names: set[str] = set()
        pending: list[cst.BaseExpression] = [expr]
        seen: set[str] = set()
        while pending:
            found = free_names(pending.pop())
            names |= found
            for name in found - seen:
                seen.add(name)
                if name in scope.env:
                    pending.append(scope.env[name].value)
        return names

    def collection_from_expr(
        self, attr: str, value: cst.BaseExpression, seen: tuple[str, ...], scope: _Scope | None = None
    ) -> Collection | None:
        scope = scope or self.scope()
        if isinstance(value, cst.Name):
            return self._named_collection(attr, value, seen, scope)
        key = self._builder_key(value) if isinstance(value, cst.Attribute) else None
        if key is not None and key in scope.builders and key not in seen:
            # The attribute's own list, filled above and wrapped here (`_wraps`).
            return self._from_builder(attr, key, scope.builders[key])
        if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Multiply):
            return self._repeated_list(attr, value, scope)
        if isinstance(value, cst.Call):
            return self._called_collection(attr, value, seen, scope)
        if isinstance(value, (cst.ListComp, cst.GeneratorExp, cst.DictComp)):
            return self._comprehension_collection(attr, value, seen, scope)
        if isinstance(value, (cst.List, cst.Tuple)):
            return self._listed_collection(attr, value, scope)
        return None

    def _named_collection(self, attr: str, value: cst.Name, seen: tuple[str, ...], scope: _Scope) -> Collection | None:
        """A local name: a container being filled, a name bound to an expression, or the
        caller's members passed in as a parameter."""
        if value.value in scope.builders:
            return self._from_builder(attr, value.value, scope.builders[value.value])
        bound = scope.env.get(value.value)
        if bound is not None and value.value not in seen:
            return self.collection_from_expr(attr, bound.value, seen + (value.value,), scope)
        if bound is None and value.value in self.params:
            return self._passed_in(attr, value.value)
        return None

    def _called_collection(self, attr: str, value: cst.Call, seen: tuple[str, ...], scope: _Scope) -> Collection | None:
        """A container wrapped around its members (`nn.ModuleList([...])`), or a helper's result."""
        qualified = self.ctx.imports.qualify(value.func) or code_of(value.func)
        args = positional_args(value)
        if qualified in CONTAINERS or qualified in PLAIN_CONTAINERS:
            if len(args) != 1:
                return None
            inner = self.collection_from_expr(attr, args[0], seen, scope)
            if inner is not None and qualified in CONTAINERS:
                inner.container = CONTAINERS[qualified]
            return inner
        func_text = code_of(value.func)
        if func_text in seen:
            return None
        return self._helper_collection(attr, value, seen + (func_text,), scope)

    def _comprehension_collection(
        self,
        attr: str,
        value: cst.ListComp | cst.GeneratorExp | cst.DictComp,
        seen: tuple[str, ...],
        scope: _Scope,
    ) -> Collection | None:
        """`[nn.Linear(h, a) for _ in range(n)]`: one constructor, once per iteration."""
        element = value.value if isinstance(value, cst.DictComp) else value.elt
        loops: list[_Loop] = []
        clause: cst.CompFor | None = value.for_in
        while clause is not None:
            if clause.ifs:
                return Collection(attr, "list", None, None, None, "members are filtered by a condition")
            size, count = loop_size(clause.iter, self.ctx)
            loops.append(_Loop(frozenset(target_names(clause.target)), size, count))
            clause = clause.inner_for_in
        container = "nn.ModuleDict" if isinstance(value, cst.DictComp) else "list"
        # `[m for m in models]`: the caller's members passed through.
        if (
            len(loops) == 1
            and isinstance(element, cst.Name)
            and element.value in loops[0].targets
            and isinstance(value.for_in.iter, cst.Name)
        ):
            passed = self.collection_from_expr(attr, value.for_in.iter, seen, scope)
            if passed is not None and passed.passed_in is not None:
                return passed
        size, count = _product(tuple(loops))
        used = free_names(element) & set().union(*(loop.targets for loop in loops))
        if used:
            return Collection(
                attr,
                container,
                size,
                count,
                None,
                f"each member's constructor reads the loop variable `{sorted(used)[0]}`",
            )
        member = self.member(element, None, (), scope)
        if member is not None and isinstance(element, cst.Name):
            binding = scope.env.get(element.value)
            if binding is not None and isinstance(binding.value, cst.Call):
                member = replace(member, shared=True)  # `[layer for _ in range(n)]`
        return Collection(attr, container, size, count, member)

    def _listed_collection(self, attr: str, value: cst.List | cst.Tuple, scope: _Scope) -> Collection | None:
        """`[head, head, head]`, `(nn.Linear(d, 1), nn.Linear(d, 1))`: the same constructor written out."""
        elements = [e.value for e in value.elements]
        if not elements or any(isinstance(e, (cst.StarredElement,)) for e in value.elements):
            return None
        names = [e.value for e in elements if isinstance(e, cst.Name)]
        if len(names) == len(elements) and len(set(names)) == len(names) and len(names) > 1:
            # `[q1, q2]` after `q1, q2 = make_q(d), make_q(d)`: names bound each to its
            # own call are as many instances of what the calls build.
            bound = [scope.env.get(name) for name in names]
            if all(b is not None and isinstance(b.value, cst.Call) for b in bound):
                elements = [b.value for b in bound if b is not None]
        texts = {code_of(e) for e in elements}
        if len(texts) > 1:
            return Collection(
                attr,
                "list",
                str(len(elements)),
                len(elements),
                None,
                "members are listed with different constructors",
            )
        member = self.member(elements[0], None, (), scope)
        if member is not None and isinstance(elements[0], cst.Name) and len(elements) > 1:
            member = replace(member, shared=True)  # `[head, head, head]`
        return Collection(attr, "list", str(len(elements)), len(elements), member)

    def _repeated_list(self, attr: str, value: cst.BinaryOperation, scope: _Scope) -> Collection | None:
        """`[layer] * n` (or `n * [layer]`): one instance, n times."""
        left, right = value.left, value.right
        if isinstance(right, cst.List):
            left, right = right, left
        if (
            not isinstance(left, cst.List)
            or len(left.elements) != 1
            or isinstance(left.elements[0], cst.StarredElement)
        ):
            return None
        member = self.member(left.elements[0].value, None, (), scope)
        if member is None:
            return None
        return Collection(attr, "list", code_of(right), int_value(right), replace(member, shared=True))

    def _passed_in(self, attr: str, param: str) -> Collection | None:
        position = self.params[param]
        return Collection(
            attr, "list", None, None, None, "the members are passed in by the caller", passed_in=(param, position)
        )

    def _helper_collection(self, attr: str, call: cst.Call, seen: tuple[str, ...], scope: _Scope) -> Collection | None:
        """A collection returned by a function: a local factory (`_get_clones(layer, n)`),
        a helper method (`self._make_heads(n)`) or one imported from another file."""
        found = self.helper_function(call.func)
        if found is None:
            return None
        function, owner_ctx, self_name = found
        scanner = helper_scanner(owner_ctx, function, self_name, self.cls)
        if len(scanner.returns) != 1:
            return None
        value, returned_scope = scanner.returns[0]
        collection = scanner.collection_from_expr(attr, value, seen, returned_scope)
        if collection is None:
            return None
        if collection.passed_in is not None:
            # `def wrap(models): return nn.ModuleList(models)`: the members are our argument.
            param, position = collection.passed_in
            argument = arg_at(call, position, param) if position >= 0 else None
            if argument is None:
                return None
            passed = self.collection_from_expr(attr, argument, seen, scope)
            if passed is not None:
                passed.container = collection.container
            return passed
        collection = _in_callers_words(collection, function, call)
        member = collection.member
        if member is not None and member.source_param is not None:
            # `clones(nn.Linear(d, 1), n)`: the members are (copies of) our argument.
            source_position = next(
                (i for i, p in enumerate(_positional_params(function)) if p == member.source_param), None
            )
            argument = arg_at(call, source_position, member.source_param) if source_position is not None else None
            given = None if argument is None else self.member(argument, None, (), scope)
            if given is None:
                return None
            collection = replace(collection, member=replace(given, shared=member.shared, source_param=None))
        if owner_ctx is not self.ctx:
            collection.evidence = owner_ctx.evidence(f"built by `{code_of(call.func)}()`", function)
        return collection

    def helper_function(self, func: cst.BaseExpression) -> tuple[cst.FunctionDef, FileContext, str | None] | None:
        """(definition, its context, its `self` name) of a function or helper method called as `func`."""
        method = self_attribute(func, self.self_name)
        if method is not None and self.cls is not None:
            found = find_method(self.cls, self.ctx, method)
            if found is None:
                return None
            definition, owner_ctx, _ = found
            static = any(code_of(d.decorator) == "staticmethod" for d in definition.decorators)
            return definition, owner_ctx, None if static else first_param(definition)
        symbol = self.ctx.resolve(func)
        if symbol is None or symbol.kind != "function":
            return None
        symbol = self.ctx.load(symbol, "collections")
        if symbol is None:
            return None
        # A loaded function symbol holds its definition and the context it is read in.
        assert isinstance(symbol.node, cst.FunctionDef) and symbol.ctx is not None
        return symbol.node, symbol.ctx, None

    def member(
        self, expr: cst.BaseExpression, parent_key: str | None, loops: tuple[_Loop, ...], scope: _Scope | None = None
    ) -> Member | None:
        """What one member is, or None when nothing proves what it is."""
        ctx = self.ctx
        scope = scope or self.scope()
        text = code_of(expr)
        if isinstance(expr, cst.Name):
            return self._named_member(text, expr, loops, scope)
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
            return _group(text, self.collection_from_expr("", expr, (), scope))
        if name in ("copy.deepcopy", "copy.copy"):
            return self._copied_member(text, expr, loops, scope)
        if name.startswith("torch.nn."):
            return _torch_member(text, name, expr, ctx)
        if name in _NOT_CONSTRUCTORS:
            return None
        moved = self._moved_member(text, expr, loops, scope)
        if moved is not None:
            return moved
        symbol = ctx.resolve(expr.func)
        if symbol is not None and symbol.kind == "class":
            return self._class_member(text, expr, symbol)
        found = self.helper_function(expr.func) if symbol is None or symbol.kind == "function" else None
        if found is not None:
            return self._helper_member(text, expr, found)
        # A constructor imported from elsewhere (or a method on self): we cannot see
        # inside, but the same call repeated is still the same kind of member.
        return Member(text, MODULE, name)

    def _moved_member(self, text: str, expr: cst.Call, loops: tuple[_Loop, ...], scope: _Scope) -> Member | None:
        """`Mlp(...).to(device)`, `.cuda()`, `.double()`: the module the constructor built,
        moved or cast, which nn.Module's method returns. It proves what the constructor
        does (an nn.Module), but no fused form rebuilds it: the device or dtype would be
        lost, so its kind is the general one."""
        func = expr.func
        if not (
            isinstance(func, cst.Attribute) and func.attr.value in _RETURNS_SELF and isinstance(func.value, cst.Call)
        ):
            return None
        built = self.member(func.value, None, loops, scope)
        if built is None or built.is_module is not True:
            return None
        return Member(text, MODULE, built.type_name, is_module=True)

    def _named_member(self, text: str, expr: cst.Name, loops: tuple[_Loop, ...], scope: _Scope) -> Member | None:
        """A local name: a container being filled (a group), what the name is bound to, or
        a parameter (the caller's object, shared)."""
        if expr.value in scope.builders:
            inner = self._from_builder(expr.value, expr.value, scope.builders[expr.value])
            return _group(text, inner)
        bound = scope.env.get(expr.value)
        if bound is not None and bound.value is not expr:
            return self.member(bound.value, None, loops, scope)
        if bound is None and expr.value in self.params:
            # The same object every time: one shared instance of whatever was passed.
            return Member(text, MODULE, text, shared=True, source_param=expr.value)
        return None

    def _copied_member(self, text: str, expr: cst.Call, loops: tuple[_Loop, ...], scope: _Scope) -> Member | None:
        """`copy.deepcopy(layer)`: what is copied, as a new instance each time."""
        args = positional_args(expr)
        if len(args) != 1:
            return None
        source = self.member(args[0], None, loops, scope)
        if source is not None:
            return replace(source, text=text if source.source_param is None else source.text, shared=False)
        return Member(text, MODULE, f"copies of `{code_of(args[0])}`")

    def _class_member(self, text: str, expr: cst.Call, symbol: Symbol) -> Member:
        """An instance of a class of this file or another: an MLP when its layers say so."""
        ctx = self.ctx
        display = code_of(expr.func)
        if symbol.ctx is None:  # a class of another file: its module-ness needs no parse
            is_module = (
                ctx.project.is_module_class(symbol.qualified, ctx.path)
                if ctx.project and ctx.path and symbol.qualified is not None
                else None
            )
            return Member(text, MODULE, display, is_module=is_module, qualified=symbol.qualified)
        info = symbol.ctx.classes.get(symbol.name)
        if info is not None and info.mlp_sizes is not None and symbol.ctx is ctx:
            return Member(text, MLP, display, *info.mlp_sizes, is_module=info.is_module, cls=info)
        return Member(text, MODULE, display, is_module=None if info is None else info.is_module, cls=info)

    def _helper_member(
        self, text: str, expr: cst.Call, found: tuple[cst.FunctionDef, FileContext, str | None]
    ) -> Member:
        """What a factory function or helper method returns, judged by its own scan."""
        function, owner_ctx, self_name = found
        scanner = helper_scanner(owner_ctx, function, self_name, self.cls)
        returned = None
        if len(scanner.returns) == 1:
            value, returned_scope = scanner.returns[0]
            returned = scanner.member(value, None, (), returned_scope)
        is_module = None if returned is None else returned.is_module
        if self_attribute(expr.func, self.self_name) is not None:
            return Member(text, MODULE, code_of(expr.func), is_module=is_module)
        display = f"{code_of(expr.func)}(...)"
        if returned is not None and returned.kind in (LINEAR, MLP, CONV) and owner_ctx is self.ctx:
            return Member(text, returned.kind, display, returned.in_size, returned.out_size, is_module=is_module)
        return Member(text, MODULE, display, is_module=is_module)


def _torch_member(text: str, name: str, expr: cst.Call, ctx: FileContext) -> Member:
    """A member built by a `torch.nn` class (`name`, qualified): a layer fusable as such
    (nn.Linear, nn.Conv*d, an MLP written as nn.Sequential), or any other module."""
    if name in LINEARS:
        return Member(
            text,
            LINEAR,
            display_type(name),
            _code(arg_at(expr, 0, "in_features")),
            _code(arg_at(expr, 1, "out_features")),
            is_module=True,
        )
    if name in CONVS:
        return Member(
            text,
            CONV,
            display_type(name),
            _code(arg_at(expr, 0, "in_channels")),
            _code(arg_at(expr, 1, "out_channels")),
            is_module=True,
        )
    if name == "torch.nn.Sequential":
        if any(arg.star or arg.keyword is not None for arg in expr.args):
            return Member(text, MODULE, "nn.Sequential", is_module=True)
        return sequential_member(text, positional_args(expr), ctx)
    return Member(text, MODULE, display_type(name), is_module=is_torch_module_name(name) or None)


def computed_name(node: cst.BaseExpression) -> bool:
    """An attribute name built per member: `f"head{i}"`, `"head" + str(i)`, `"fc%d" % i`,
    `"h{}".format(i)`, `str(i)` (kinds.SETATTR_MARKER finds the same spellings)."""
    if isinstance(node, cst.FormattedString):
        return True
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, (cst.Add, cst.Modulo)):
        return isinstance(node.left, (cst.SimpleString, cst.ConcatenatedString))
    if isinstance(node, cst.Call):
        if isinstance(node.func, cst.Name) and node.func.value == "str":
            return True
        return (
            isinstance(node.func, cst.Attribute)
            and node.func.attr.value == "format"
            and isinstance(node.func.value, cst.SimpleString)
        )
    return False


def helper_scanner(
    ctx: FileContext, function: cst.FunctionDef, self_name: str | None, cls: ClassInfo | None
) -> ConstructionScanner:
    """The scan of a factory function or helper method, once per function."""
    key = id(function)
    if key not in ctx.scanners:
        scanner = ConstructionScanner(ctx, self_name, cls=cls)
        ctx.scanners[key] = scanner  # before scanning: a recursive helper sees itself
        scanner.scan_function(function)
    return ctx.scanners[key]


def _positional_params(function: cst.FunctionDef) -> list[str]:
    """A function's parameters as a call fills them (a method's `self` left out)."""
    params = [p.name.value for p in [*function.params.posonly_params, *function.params.params]]
    return params[1:] if params and params[0] in ("self", "cls") else params


def _arguments(function: cst.FunctionDef, call: cst.Call) -> dict[str, str]:
    """Each parameter of `function` that `call` passes, to the argument's code."""
    return {
        param: code_of(argument)
        for index, param in enumerate(_positional_params(function))
        if (argument := arg_at(call, index, param)) is not None
    }


def _in_callers_words(collection: Collection, function: cst.FunctionDef, call: cst.Call) -> Collection:
    """Sizes are written in the helper's parameters; say them in the caller's words."""
    if collection.size is None:
        return collection
    size = _said(collection.size, _arguments(function, call))
    value = collection.size_value
    if value is None and size != collection.size:
        value = _int_or_none(size)
    return replace(collection, size=size, size_value=value)


def _code(node: cst.BaseExpression | None) -> str | None:
    return None if node is None else code_of(node)


def _group(text: str, inner: Collection | None) -> Member | None:
    if inner is None or inner.member is None:
        return None
    return Member(text, GROUP, inner.container, inner=inner, is_module=True)


def sequential_member(text: str, layers: list[cst.BaseExpression], ctx: FileContext) -> Member:
    linears: list[cst.Call] = []
    for layer in layers:
        if not isinstance(layer, cst.Call):
            return Member(text, MODULE, "nn.Sequential", is_module=True)
        name = ctx.imports.qualify(layer.func)
        if name in LINEARS:
            linears.append(layer)
        elif name not in ELEMENTWISE:
            return Member(text, MODULE, "nn.Sequential", is_module=True)
    if not linears:
        return Member(text, MODULE, "nn.Sequential", is_module=True)
    return Member(
        text,
        MLP,
        "nn.Sequential",
        _code(arg_at(linears[0], 0, "in_features")),
        _code(arg_at(linears[-1], 1, "out_features")),
        is_module=True,
    )
