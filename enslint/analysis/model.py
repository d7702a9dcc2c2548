"""The one model of a file that every rule reads.

`build_model` parses nothing itself: it takes the libcst tree and builds, in order,
- the file's context (context.py): imports, functions, classes;
- which classes are `nn.Module`s: through a torch base under any import alias, a base
  class of the same file, or one of another file or an installed package (asked of the
  project index, when there is one; never imported);
- each class's member collections (members.py), its own and those it inherits; members
  passed in by the caller are judged by the project's call sites of the class;
- the loops over those collections in every method (loops.py).

Rules are queries over the result. A class need not be an `nn.Module` to be checked (an
RL agent holding `self.critics = nn.ModuleList(...)` pays the same cost), but then the
members themselves must be proven modules.

Why one module of this size: it is the order of the model's construction and the
small passes between the steps (module-ness, inheritance, passed-in members), each
short and read only here.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

import libcst as cst

from enslint.analysis.bases import base_without_reading, is_torch_name, module_verdict
from enslint.analysis.context import (
    ClassInfo,
    Collection,
    Evidence,
    FileContext,
    Member,
    Project,
    Symbol,
)
from enslint.analysis.imports import ImportTable
from enslint.analysis.kinds import MODULE, SAME, SELF_COLLECTION, SLICE
from enslint.analysis.loops import MemberLoop, find_member_loops
from enslint.analysis.members import ELEMENTWISE, LINEARS, ConstructionScanner, sequential_member
from enslint.analysis.runtime import RuntimeMembers
from enslint.analysis.syntax import NodeIndex, arg_at, code_of, dotted_name, first_param, keyword_arg

if TYPE_CHECKING:
    from enslint.analysis.members import _Scope
    from enslint.analysis.syntax import _Tree


@dataclass
class FileModel:
    module: cst.Module
    imports: ImportTable
    classes: list[ClassInfo]
    loops: list[MemberLoop]
    ctx: FileContext
    # The file on disk its fixes are written to, or None when they must stand alone in
    # the text (standard input, a piece of a big file): where the helper module goes.
    fixed_file: str | None = None

    def member_loops(self, reading: str, min_members: int) -> Iterator[MemberLoop]:
        """Loops over at least `min_members` members (when the count is a literal) whose
        member calls (chained calls aside) all read input of kind `reading`."""
        for loop in self.loops:
            size = loop.collection.size_value
            if size is not None and size < min_members:
                continue
            entries = loop.entry_calls
            if entries and all(call.input == reading for call in entries):
                yield loop

    def exports(self) -> list[str]:
        return exports_of(self.ctx, read_parents=False)

    @functools.cached_property
    def ensemble_loop_nodes(self) -> frozenset[int]:
        """The loops that run members as an ensemble (on one input, or on slices), by
        node: one over members that another loop also runs has a finding and a fix of its
        own. A chain (`x = head(x)`) or a loop that uses each member otherwise has none."""
        return frozenset(id(loop.node) for loop in self.loops if any(c.input in (SAME, SLICE) for c in loop.calls))

    def render(self, evidence: Evidence) -> str:
        """ "built by `clones()` at utils.py:8": another file relative to this one's folder,
        this file by line."""
        if evidence.path is None or evidence.path == self.ctx.path:
            where = f"line {evidence.line}"
        else:
            start = os.path.dirname(self.ctx.path) if self.ctx.path else os.getcwd()
            try:
                where = Path(os.path.relpath(evidence.path, start)).as_posix()
            except ValueError:
                where = evidence.path
            where = f"{where}:{evidence.line}"
        text = f"{evidence.what} at {where}"
        return text if evidence.then is None else f"{text}, {self.render(evidence.then)}"


def exports_of(ctx: FileContext, read_parents: bool = True) -> list[str]:
    """What another file may build collections with: functions that return a collection
    of modules ("def:clones") and classes that hold one ("class:BlockBank"); the project
    index keeps them for the prefilter (kinds.mentions_export).

    A class holds what it inherits too, from parents in other files. `read_parents=False`
    (a file's own analysis) reads such a parent only when the project already names it
    as holding a collection, from that parent's own file: reading costs a parse, and most
    parents hold none. A parent left unread marks this file for the runner, which brings
    it back with the project's names when it derives from one of them."""
    names = []
    for name, function in ctx.functions.items():
        scanner = ConstructionScanner(ctx, None)
        scanner.scan_function(function)
        for value, scope in scanner.returns:
            returned = scanner.collection_from_expr("", value, (), scope)
            if returned is None:
                continue
            container = returned.container in ("nn.ModuleList", "nn.ModuleDict")
            # Copies of one module, or the caller's members wrapped in a module container.
            if (returned.member is not None and (container or returned.member.is_module)) or (
                returned.passed_in is not None and container
            ):
                names.append(f"def:{name}")
                break
    held = {name[6:] for name in ctx.project.names if name.startswith("class:")} if ctx.project else set()
    done: set[int] = set()
    for info in ctx.classes.values():
        # What a subclass elsewhere would inherit, through parents in other files too.
        needed = read_parents or any(q.rpartition(".")[2] in held for q in info.foreign_bases)
        if not needed and info.foreign_parents is not None and ctx.project is not None and ctx.path is not None:
            ctx.project.unread.add(ctx.path)
        _inherit(info, ctx, done, needed=needed)
    names += [
        f"class:{info.name}" for info in ctx.classes.values() if any(c.identical for c in info.collections.values())
    ]
    return sorted(set(names))


def _top_level(body: Sequence[cst.CSTNode]) -> list[cst.CSTNode]:
    """Statements at module level, including those nested in if/try blocks."""
    statements = []
    for statement in body:
        statements.append(statement)
        if isinstance(statement, (cst.If, cst.Try)):
            statements.extend(_top_level(statement.body.body))
            orelse = getattr(statement, "orelse", None)
            if orelse is not None and hasattr(orelse, "body"):
                statements.extend(_top_level(orelse.body.body))
    return statements


# -- module-ness -----------------------------------------------------------------------
def _resolve_module_ness(ctx: FileContext) -> None:
    """Which classes are nn.Modules: True through a base that is one, False when every
    base is shown not to be, None when a base cannot be resolved."""
    state: dict[str, bool | None] = {}

    def of_class(name: str, seen: frozenset[str]) -> bool | None:
        if name in state:
            return state[name]
        if name in seen:
            return None  # a cycle of bases: Python would reject it anyway
        info = ctx.classes[name]
        result = module_verdict(
            [of_base(base.value, seen | {name}) for base in info.node.bases if base.keyword is None]
        )
        state[name] = result
        return result

    def of_base(base: cst.BaseExpression, seen: frozenset[str]) -> bool | None:
        if isinstance(base, cst.Subscript):  # `Generic[T]`
            base = base.value
        name = dotted_name(base)
        if name is None:
            return None
        if name in ctx.classes:
            return of_class(name, seen)
        qualified = ctx.imports.qualify_any(base)
        settled, verdict = base_without_reading(name, qualified)
        # (An unqualified base is always settled.)
        if settled or qualified is None or ctx.project is None or ctx.path is None:
            return verdict
        return ctx.project.is_module_class(qualified, ctx.path)

    for name, info in ctx.classes.items():
        info.is_module = of_class(name, frozenset())


def _parents(info: ClassInfo, ctx: FileContext) -> None:
    """The classes `info` derives from that can be read, for the collections and helper
    methods they define: those of this file now, those of other files when first needed."""
    foreign = []
    for base in info.node.bases:
        if base.keyword is not None:
            continue
        name = dotted_name(base.value)
        if name is not None and name in ctx.classes:
            if ctx.classes[name] is not info:
                info.parents.append((ctx.classes[name], ctx))
            continue
        if ctx.project is not None and ctx.path is not None:
            qualified = ctx.imports.qualify_any(base.value)
            if qualified is not None and not is_torch_name(qualified):
                foreign.append(qualified)
    if foreign:
        info.foreign_bases = tuple(foreign)
        info.foreign_parents = lambda: _read_parents(info, ctx)


def _read_parents(child: ClassInfo, ctx: FileContext) -> list[tuple[ClassInfo, FileContext]]:
    """The classes of `child.foreign_bases` that can be read, with their contexts."""
    project, importer = ctx.project, ctx.path
    assert project is not None and importer is not None  # `_parents` asks for foreign parents only then
    found = []
    for qualified in child.foreign_bases:
        if child.is_module is not True and project.is_module_class(qualified, importer) is False:
            # Neither is an nn.Module (its parser's facts say so, without a parse): nothing
            # an ensemble could inherit, and a parse saved (torch's own `Module`, 4k lines,
            # is that to every class below it when torch itself is checked).
            continue
        located = project.locate(qualified, importer)
        if located is None or located[2] != "class":
            continue
        symbol = project.load(Symbol("class", located[1], None, None, located[0], qualified), "collections", importer)
        if symbol is None or symbol.ctx is None:  # (a loaded symbol always has its context)
            continue
        parent = symbol.ctx.classes.get(symbol.name)
        if parent is not None:
            found.append((parent, symbol.ctx))
    return found


# -- collections -----------------------------------------------------------------------
def _mlp_sizes(cls: ClassInfo, ctx: FileContext) -> tuple[str | None, str | None] | None:
    """(in, out) of a class built only from nn.Linear and element-wise layers."""
    init = cls.methods.get("__init__")
    if init is None:
        return None
    linears: list[cst.Call] = []
    for statement in init.body.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            if isinstance(statement, (cst.For, cst.While, cst.If)):
                return None
            continue
        for small in statement.body:
            if not isinstance(small, (cst.Assign, cst.AnnAssign)) or not isinstance(small.value, cst.Call):
                continue
            value = small.value
            qualified = ctx.imports.qualify(value.func) or ""
            if qualified in LINEARS:
                linears.append(value)
            elif qualified == "torch.nn.Sequential":
                if any(a.star for a in value.args):
                    return None
                member = sequential_member("", [a.value for a in value.args], ctx)
                if member.kind != "mlp":
                    return None
                linears.append(value)
            elif qualified in ELEMENTWISE:
                continue
            elif qualified.startswith("torch.nn.") or code_of(value.func) in ctx.classes:
                return None
    if not linears:
        return None
    return _layer_size(linears[0], 0, ctx), _layer_size(linears[-1], 1, ctx)


def _layer_size(call: cst.Call, index: int, ctx: FileContext) -> str | None:
    """The in (`index` 0) or out (1) size of an nn.Linear, or of an MLP written as nn.Sequential."""
    if ctx.imports.qualify(call.func) == "torch.nn.Sequential":
        member = sequential_member("", [a.value for a in call.args], ctx)
        return member.in_size if index == 0 else member.out_size
    argument = arg_at(call, index, "in_features" if index == 0 else "out_features")
    return None if argument is None else code_of(argument)


def _proven_modules(collection: Collection, holder: ClassInfo) -> bool:
    """Whether the members are certainly modules: the container or the registration
    says so, or the members' constructor does."""
    if collection.container in ("nn.ModuleList", "nn.ModuleDict", "list + add_module"):
        return True
    if collection.container == "list + setattr":
        return holder.is_module is True or _built_as_modules(collection)
    return _plain_list_of_modules(collection, holder)


def _built_as_modules(collection: Collection) -> bool:
    """Whether the members' one constructor is proven to build nn.Modules (a torch.nn
    class, a module class of the project, a factory of one)."""
    return collection.member is not None and collection.member.is_module is True


def _plain_list_of_modules(collection: Collection, holder: ClassInfo) -> bool:
    """A plain list registered nowhere, on a holder that is no module (an RL agent's
    `self.critics = []` filled by a loop), holds modules where the constructor proves
    it. In an nn.Module, a list left unregistered keeps its members out of the module's
    parameters and checkpoints: that is the author's choice, and no finding."""
    return holder.is_module is False and _built_as_modules(collection)


def _read_collections(cls: ClassInfo, ctx: FileContext) -> None:
    for method in cls.methods.values():
        if any(code_of(d.decorator) == "staticmethod" for d in method.decorators):
            continue
        self_name = first_param(method)
        scanner = ConstructionScanner(ctx, self_name, self_is_collection=cls.is_module_list, cls=cls)
        scanner.scan_function(method)
        if cls.is_module_list and self_name is not None:
            own = scanner.own_collection()
            if own is not None:
                cls.collections.setdefault(SELF_COLLECTION, own)
        for attr, value in scanner.size_attrs.items():
            cls.size_attrs.setdefault(attr, value)
        attrs = set(scanner.self_assigns) | {k[5:] for k in scanner.builders if k.startswith("self.") and "[" not in k}
        for attr in sorted(attrs):
            if attr in cls.collections:
                continue
            collection = scanner.attribute_collection(attr)
            if collection is None:
                continue
            collection.method = method.name.value
            if collection.container in ("list", "tuple"):
                if collection.passed_in is None:
                    if scanner.registers:
                        collection.container = f"list + {scanner.registers}"
                    elif not _plain_list_of_modules(collection, cls):
                        continue
            elif collection.passed_in is not None and collection.container not in ("nn.ModuleList", "nn.ModuleDict"):
                continue
            cls.collections[attr] = collection


def _inherit(cls: ClassInfo, ctx: FileContext, done: set[int], needed: bool = False) -> None:
    """Add the collections `cls` inherits, nearest parent first: those of its parents in
    this file always, those of parents in other files when it (or a subclass: `needed`)
    loops over an attribute it does not build itself."""
    if id(cls) in done:
        return
    done.add(id(cls))
    looped, assigned = _attribute_use(cls, ctx)
    needed = needed or bool(looped - assigned - set(cls.collections))
    parents = cls.parent_classes() if needed else cls.parents
    for parent, parent_ctx in parents:
        _inherit(parent, parent_ctx, done, needed)
        for attr, collection in parent.collections.items():
            if attr in cls.collections or attr == SELF_COLLECTION:
                continue
            inherited = replace(
                collection, inherited_from=collection.inherited_from or parent.name, origin=None, created=None
            )
            if parent_ctx is not ctx and collection.inherited_from is None:
                inherited.evidence = parent_ctx.evidence(
                    f"inherited from `{parent.name}`", parent.node, collection.evidence
                )
            cls.collections[attr] = inherited
        for attr, value in parent.size_attrs.items():
            cls.size_attrs.setdefault(attr, value)


def _looped_attributes(cls: ClassInfo, ctx: FileContext) -> set[str]:
    """Attributes `self.<name>` read inside a loop or comprehension of the class."""
    return _attribute_use(cls, ctx)[0]


def _attribute_use(cls: ClassInfo, ctx: FileContext) -> tuple[set[str], set[str]]:
    """(attributes `self.<name>` read inside a loop or comprehension, attributes the
    class assigns `self.<name> = ...`) of the class. Asked of many classes, so answered
    for all the module's top-level classes at once (classes of one name together), from
    the module's index: a slice of the file's own, or one walk of another file's module.
    A class elsewhere (in a function) is read alone."""
    if ctx.looped is None:
        ctx.looped = _attribute_use_by_class(ctx.module)
    if cls.name not in ctx.looped:
        index = NodeIndex.of(cls.node)
        start = index.tree.find(cls.node)
        assert start is not None  # the index is of the class's own subtree
        ctx.looped[cls.name] = _attribute_use_in(index.tree, start, _self_names(cls.node))
    return ctx.looped[cls.name]


def _attribute_use_by_class(module: cst.Module) -> dict[str, tuple[set[str], set[str]]]:
    """`_attribute_use_in` of every top-level class, by name (classes of one name together)."""
    tree = NodeIndex.of(module).tree
    uses: dict[str, tuple[set[str], set[str]]] = {}
    for node in _cst_top_level(module.body):
        if type(node) is cst.ClassDef:
            start = tree.find(node)
            assert start is not None  # a top-level class of the indexed module
            looped, assigned = _attribute_use_in(tree, start, _self_names(node))
            known = uses.setdefault(node.name.value, (set(), set()))
            known[0].update(looped)
            known[1].update(assigned)
    return uses


def _self_names(node: cst.ClassDef) -> frozenset[str]:
    """What the class's methods call their instance (or class): `self`, `cls`, ..."""
    names = {"self"}
    for statement in node.body.body:
        if isinstance(statement, cst.FunctionDef):
            name = first_param(statement)
            if name is not None:
                names.add(name)
    return frozenset(names)


_LOOPS = (cst.For, cst.ListComp, cst.GeneratorExp, cst.DictComp, cst.SetComp)
_ASSIGNS = (cst.AssignTarget, cst.AnnAssign, cst.AugAssign)


def _attribute_use_in(tree: _Tree, start: int, self_names: frozenset[str]) -> tuple[set[str], set[str]]:
    """`_attribute_use` of the subtree at `start` of an index's tree: one pass over its slice."""
    order, end = tree.order, tree.end
    looped: set[str] = set()
    assigned: set[str] = set()
    inside_until = start
    for here in range(start, end[start]):
        found = order[here]
        kind = type(found)
        if kind in _LOOPS:
            inside_until = max(inside_until, end[here])
        # (Types compared, not isinstance: node classes are ABCs, slow to ask, and this
        # runs for every node of the module.)
        elif kind is cst.Attribute:
            attribute = cast("cst.Attribute", found)
            if here < inside_until and _of_self(attribute, self_names):
                looped.add(attribute.attr.value)
        elif kind in _ASSIGNS:
            target = cast("cst.AssignTarget | cst.AnnAssign | cst.AugAssign", found).target
            for element in target.elements if isinstance(target, (cst.Tuple, cst.List)) else (target,):
                written = element.value if isinstance(element, cst.BaseElement) else element
                if type(written) is cst.Attribute and _of_self(written, self_names):
                    assigned.add(written.attr.value)
    return looped, assigned


def _of_self(node: cst.Attribute, self_names: frozenset[str]) -> bool:
    return type(node.value) is cst.Name and node.value.value in self_names


def _cst_top_level(body: Sequence[cst.CSTNode]) -> Iterator[cst.CSTNode]:
    """The module's statements, and those inside its top-level `if` and `try` blocks."""
    for node in body:
        yield node
        if isinstance(node, cst.If):
            yield from _cst_top_level(node.body.body)
            if node.orelse is not None:
                yield from _cst_top_level([node.orelse] if isinstance(node.orelse, cst.If) else node.orelse.body.body)
        elif isinstance(node, cst.Try):
            yield from _cst_top_level(node.body.body)
            if node.orelse is not None:
                yield from _cst_top_level(node.orelse.body.body)


def _passed_in(cls: ClassInfo, ctx: FileContext) -> list[Collection]:
    """The collections of `cls` whose members the caller hands to `__init__`
    (`nn.ModuleList(models)`), and that the class loops over."""
    pending = [
        c
        for c in cls.collections.values()
        if c.passed_in is not None
        and c.method == "__init__"
        and not c.inherited_from
        # A plain list of whatever the caller hands over is worth the search only in a module.
        and (c.container in ("nn.ModuleList", "nn.ModuleDict") or cls.is_module is True)
    ]
    if not pending:
        return []
    looped = _looped_attributes(cls, ctx)
    return [c for c in pending if c.attr in looped]


# Stands for the caller's members while the loops are read: only a loop that would be a
# finding with identical members is worth reading the call sites for.
_PROVISIONAL = Member("the members passed in", MODULE, "the caller's", is_module=True)


def _judge_passed_in(collection: Collection, cls: ClassInfo, ctx: FileContext) -> None:
    """Identical when one call site of the class shows identical members and none shows
    different ones; the collection is updated in place (the loops hold it)."""
    assert collection.passed_in is not None  # `_passed_in` chose it for that
    param, position = collection.passed_in
    proven: tuple[Collection, Member, _Site] | None = None
    against = False
    for site in call_sites(cls, ctx):
        argument = arg_at(site.call, position - 1, param) if position > 0 else keyword_arg(site.call, param)
        if argument is None:
            continue
        found = site.scanner.collection_from_expr(collection.attr, argument, (), site.scope)
        if found is None or found.passed_in is not None:
            continue
        if found.member is None:  # not identical
            against = True
        elif proven is None:
            proven = (found, found.member, site)
    if proven is None or against:
        collection.member = None
        return
    found, member, site = proven
    collection.size, collection.size_value = found.size, found.size_value
    collection.member = member
    collection.why_heterogeneous = None
    collection.evidence = site.scanner.ctx.evidence(f"members built by `{member.text}`", site.call)


class _Site:
    def __init__(self, call: cst.Call, scope: _Scope, scanner: ConstructionScanner) -> None:
        self.call, self.scope, self.scanner = call, scope, scanner


def call_sites(cls: ClassInfo, ctx: FileContext) -> list[_Site]:
    """Every call that builds `cls`, in its own file and, through the project, in others:
    the calls are found first, then only the functions that hold them are scanned."""
    contexts = [ctx]
    if ctx.project is not None and ctx.path is not None:
        contexts += ctx.project.call_sites(ctx, cls.name)
    sites: list[_Site] = []
    for caller in contexts:
        names = frozenset(_names_for(caller, cls, ctx))
        if not names:
            continue
        if caller.source is not None and not any(
            re.search(rf"\b{re.escape(name)}\s*\(", caller.source) for name in names
        ):
            continue
        finder = _CallFinder(names)
        caller.module.visit(finder)
        for function, statements in finder.found.items():
            if function is None:
                body = cst.FunctionDef(
                    cst.Name("_module"), cst.Parameters(), cst.IndentedBlock(body=list(caller.module.body))
                )
                scanner = ConstructionScanner(caller, None, watch=names, watch_statements=statements)
                scanner.scan_function(body)
            else:
                scanner = ConstructionScanner(caller, first_param(function), watch=names, watch_statements=statements)
                scanner.scan_function(function)
            sites += [_Site(w.call, w.scope, w.scanner) for w in scanner.watched]
    return sites


class _CallFinder(cst.CSTVisitor):
    """The small statements that call one of `names`, grouped by the function around them."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.functions: list[cst.FunctionDef] = []
        self.statements: list[cst.CSTNode] = []
        self.found: dict[cst.FunctionDef | None, set[int]] = {}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.pop()

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.BaseSmallStatement):
            self.statements.append(node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if isinstance(original_node, cst.BaseSmallStatement):
            self.statements.pop()
        super().on_leave(original_node)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        name = (
            func.value if isinstance(func, cst.Name) else func.attr.value if isinstance(func, cst.Attribute) else None
        )
        if name is None or not any(n == name or n.endswith("." + name) for n in self.names):
            return
        if not self.statements or code_of(func) not in self.names:
            return
        owner = self.functions[-1] if self.functions else None
        self.found.setdefault(owner, set()).add(id(self.statements[-1]))


def _names_for(caller: FileContext, cls: ClassInfo, holder: FileContext) -> set[str]:
    """The names `caller` calls `cls` by."""
    if caller is holder:
        return {cls.name}
    candidates = {local for local, qualified in caller.imports.bindings.items() if qualified.split(".")[-1] == cls.name}
    # Through a module attribute: `layers.Ensemble(...)` after `from pkg import layers`,
    # `L.Ensemble` after `import pkg.layers as L`, `pkg.layers.Ensemble` after `import pkg.layers`.
    source = caller.source if caller.source is not None else caller.module.code
    for match in re.finditer(rf"\b((?:[A-Za-z_]\w*\s*\.\s*)+){re.escape(cls.name)}\s*\(", source):
        dotted = re.sub(r"\s+", "", match.group(1)) + cls.name
        if dotted.partition(".")[0] in caller.imports.bindings:
            candidates.add(dotted)
    names = set()
    for name in candidates:
        symbol = caller.resolve(cst.parse_expression(name))
        if symbol is not None and symbol.path == holder.path and symbol.name == cls.name:
            names.add(name)
    return names


# -- the model -------------------------------------------------------------------------
def build_context(
    module: cst.Module,
    path: str | None = None,
    project: Project | None = None,
    source: str | None = None,
    line_map: Callable[[int], int] | None = None,
) -> FileContext:
    """The file's context with every class's module-ness and collections: what another
    file's analysis may ask of this one. `line_map`: the file's line of each of the
    module's lines, when the module is a piece of the file."""
    imports = ImportTable.of_module(module)
    ctx = FileContext(module, imports, path, project)
    ctx.source = source
    ctx.line_map = line_map
    for statement in _top_level(module.body):
        if isinstance(statement, cst.FunctionDef):
            ctx.functions[statement.name.value] = statement
        elif isinstance(statement, cst.ClassDef):
            info = ClassInfo(statement.name.value, statement)
            info.methods = {s.name.value: s for s in statement.body.body if isinstance(s, cst.FunctionDef)}
            ctx.classes[info.name] = info
    _resolve_module_ness(ctx)
    for info in ctx.classes.values():
        info.is_module_list = any(imports.qualify(base.value) == "torch.nn.ModuleList" for base in info.node.bases)
        _parents(info, ctx)
    for info in ctx.classes.values():
        info.mlp_sizes = _mlp_sizes(info, ctx) if info.is_module else None
    for info in ctx.classes.values():
        _read_collections(info, ctx)
    done: set[int] = set()
    for info in ctx.classes.values():
        _inherit(info, ctx, done)
    for info in ctx.classes.values():
        for attr, collection in list(info.collections.items()):
            if collection.identical and not _proven_modules(collection, info):
                del info.collections[attr]  # plain lists of what may not be modules
    return ctx


def build_model(
    module: cst.Module,
    path: str | None = None,
    project: Project | None = None,
    source: str | None = None,
    line_map: Callable[[int], int] | None = None,
    runtime: Sequence[RuntimeMembers] = (),
) -> FileModel:
    """`runtime`: this file's collections a profiled run saw identical."""
    ctx = build_context(module, path, project, source, line_map)
    _take_runtime_proofs(ctx, runtime)
    classes = list(ctx.classes.values())
    loops: list[MemberLoop] = []
    for info in classes:
        provisional = _passed_in(info, ctx)
        for collection in provisional:
            collection.member = _PROVISIONAL
        if not any(c.identical for c in info.collections.values()):
            continue
        found = find_member_loops(info, ctx)
        for collection in provisional:
            used = [loop for loop in found if any(c is collection for c, _ in loop.collections)]
            if any(_candidate(loop) for loop in used):
                _judge_passed_in(collection, info, ctx)
            else:
                collection.member = None
            if collection.member is None:
                found = [loop for loop in found if loop not in used]
        loops.extend(found)
    return FileModel(module, imports=ctx.imports, classes=classes, loops=loops, ctx=ctx)


def _take_runtime_proofs(ctx: FileContext, groups: Sequence[RuntimeMembers]) -> None:
    """The collections a profiled run proved: each keeps what the source says of it (its
    container, the statement that builds it) and gains the run's members."""
    for group in groups:
        info = ctx.classes.get(group.cls)
        if info is None:
            continue
        collection = info.collections.get(group.collection)
        if collection is None and group.container:
            # Built where the reading of the source loses it (a slice of a list, a
            # registry's return): the run saw the container; the loop is what is rewritten.
            collection = Collection(group.collection, group.container, None, group.members, None)
            info.collections[group.collection] = collection
        if collection is None or collection.identical:
            continue  # not a collection of this class, or proven without the run
        collection.member = Member(group.member_class, MODULE, group.member_class, is_module=True)
        collection.why_heterogeneous = None
        collection.runtime = group
        collection.evidence = ctx.evidence(
            f"the profiled run ({group.source}) saw {group.members} identical `{group.member_class}` members built",
            collection.origin if collection.origin is not None else info.node,
        )


def _candidate(loop: MemberLoop) -> bool:
    """Whether a loop would be a finding if its members were identical."""
    entries = loop.entry_calls
    return bool(entries) and (all(c.input == SAME for c in entries) or all(c.input == SLICE for c in entries))
