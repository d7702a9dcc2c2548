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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import libcst as cst

from enslint.analysis.context import ClassInfo, FileContext, Project, is_torch_module_name, is_torch_name
from enslint.analysis.imports import ImportTable
from enslint.analysis.kinds import SELF_COLLECTION
from enslint.analysis.loops import MemberLoop, find_member_loops
from enslint.analysis.members import (
    ELEMENTWISE,
    LINEARS,
    Collection,
    ConstructionScanner,
    sequential_member,
)
from enslint.analysis.syntax import arg_at, code_of, dotted_name, first_param

# Classes that are certainly not modules when they are a base: builtins and typing.
_PLAIN_BASES = {"object", "Exception", "dict", "list", "tuple", "str", "int", "float", "Enum", "Generic", "Protocol", "NamedTuple", "ABC"}


@dataclass
class FileModel:
    module: cst.Module
    imports: ImportTable
    classes: list[ClassInfo]
    loops: list[MemberLoop]
    ctx: FileContext

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
        """Top-level names another file may build collections with: functions that
        return a collection and classes that hold one (the project index keeps them)."""
        names = []
        for name, function in self.ctx.functions.items():
            scanner = ConstructionScanner(self.ctx, None)
            scanner.scan_function(function)
            if any(scanner.collection_from_expr("", value, (), scope) is not None for value, scope in scanner.returns):
                names.append(name)
        names += [info.name for info in self.classes if any(c.identical for c in info.collections.values())]
        return sorted(set(names))


def _top_level(body) -> list[cst.CSTNode]:
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
        answers = [of_base(base.value, seen | {name}) for base in info.node.bases if base.keyword is None]
        if any(answer is True for answer in answers):
            result: bool | None = True
        elif all(answer is False for answer in answers):
            result = False
        else:
            result = None
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
        if qualified is None:
            return False if name.split(".")[-1] in _PLAIN_BASES else None
        if is_torch_module_name(qualified):
            return True
        if is_torch_name(qualified) or qualified.split(".")[0] in ("typing", "abc", "enum", "collections", "dataclasses"):
            return False
        if ctx.project is None or ctx.path is None:
            return None
        return ctx.project.is_module_class(qualified, ctx.path)

    for name, info in ctx.classes.items():
        info.is_module = of_class(name, frozenset())


def _parents(info: ClassInfo, ctx: FileContext) -> None:
    """The classes `info` derives from that can be read, for their collections and methods."""
    for base in info.node.bases:
        if base.keyword is not None:
            continue
        symbol = ctx.resolve(base.value)
        if symbol is None or symbol.kind != "class" or symbol.node is info.node:
            continue
        parent = symbol.ctx.classes.get(symbol.name)
        if parent is not None:
            info.parents.append((parent, symbol.ctx))


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

    def size(call: cst.Call, index: int) -> str | None:
        if ctx.imports.qualify(call.func) == "torch.nn.Sequential":
            member = sequential_member("", [a.value for a in call.args], ctx)
            return member.in_size if index == 0 else member.out_size
        argument = arg_at(call, index, "in_features" if index == 0 else "out_features")
        return None if argument is None else code_of(argument)

    return size(linears[0], 0), size(linears[-1], 1)


def _proven_modules(collection: Collection, holder: ClassInfo) -> bool:
    """Whether the members are certainly modules: the container or the registration
    says so, or the members' constructor does."""
    if collection.container in ("nn.ModuleList", "nn.ModuleDict", "list + add_module"):
        return True
    if collection.container == "list + setattr":
        return holder.is_module is True or (collection.member is not None and collection.member.is_module is True)
    return False


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
                    if not scanner.registers:
                        continue
                    collection.container = f"list + {scanner.registers}"
            elif collection.passed_in is not None and collection.container not in ("nn.ModuleList", "nn.ModuleDict"):
                continue
            cls.collections[attr] = collection


def _inherit(cls: ClassInfo, ctx: FileContext, done: set[int]) -> None:
    """Add the collections `cls` inherits, nearest parent first."""
    if id(cls) in done:
        return
    done.add(id(cls))
    for parent, parent_ctx in cls.parents:
        _inherit(parent, parent_ctx, done)
        for attr, collection in parent.collections.items():
            if attr in cls.collections or attr == SELF_COLLECTION:
                continue
            inherited = replace(collection, inherited_from=collection.inherited_from or parent.name, origin=None, created=None)
            if parent_ctx is not ctx and inherited.evidence is None:
                inherited.evidence = f"built in `{parent.name}.{collection.method or '__init__'}` at {parent_ctx.location(parent.node)}"
            cls.collections[attr] = inherited
        for attr, value in parent.size_attrs.items():
            cls.size_attrs.setdefault(attr, value)


def _passed_in_members(cls: ClassInfo, ctx: FileContext) -> None:
    """Members handed to `__init__` (`nn.ModuleList(models)`) are judged by the call
    sites that build the class: identical when one of them shows identical members and
    none shows different ones."""
    for attr, collection in list(cls.collections.items()):
        if collection.passed_in is None or collection.method != "__init__" or collection.inherited_from:
            continue
        param, position = collection.passed_in
        proven, against = None, False
        for site in call_sites(cls, ctx):
            argument = arg_at(site.call, position - 1, param) if position > 0 else None
            if argument is None:
                continue
            found = site.scanner.collection_from_expr(attr, argument, (), site.scope)
            if found is None or found.passed_in is not None:
                continue
            if not found.identical:
                against = True
            elif proven is None:
                proven = (found, site)
        if proven is None or against:
            continue
        found, site = proven
        where = site.scanner.ctx.location(site.call)
        cls.collections[attr] = replace(
            collection,
            size=found.size,
            size_value=found.size_value,
            member=found.member,
            why_heterogeneous=None,
            evidence=f"members built by `{found.member.text}` at {where}",
        )


class _Site:
    def __init__(self, call, scope, scanner) -> None:
        self.call, self.scope, self.scanner = call, scope, scanner


def call_sites(cls: ClassInfo, ctx: FileContext) -> list[_Site]:
    """Every call that builds `cls`, in its own file and, through the project, in others."""
    contexts = [ctx]
    if ctx.project is not None and ctx.path is not None:
        contexts += ctx.project.call_sites(ctx, cls.name)
    sites: list[_Site] = []
    for caller in contexts:
        names = frozenset(_names_for(caller, cls, ctx))
        if not names:
            continue
        functions = list(caller.functions.values()) + [m for info in caller.classes.values() for m in info.methods.values()]
        for function in functions:
            scanner = ConstructionScanner(caller, first_param(function), watch=names)
            scanner.scan_function(function)
            sites += [_Site(w.call, w.scope, w.scanner) for w in scanner.watched]
        scanner = ConstructionScanner(caller, None, watch=names)
        scanner.scan_function(cst.FunctionDef(cst.Name("_module"), cst.Parameters(), cst.IndentedBlock(body=list(caller.module.body))))
        sites += [_Site(w.call, w.scope, w.scanner) for w in scanner.watched]
    return sites


def _names_for(caller: FileContext, cls: ClassInfo, holder: FileContext) -> set[str]:
    """The names `caller` calls `cls` by."""
    if caller is holder:
        return {cls.name}
    names = set()
    for local, qualified in caller.imports.bindings.items():
        if qualified.split(".")[-1] != cls.name:
            continue
        symbol = caller.resolve(cst.Name(local))
        if symbol is not None and symbol.ctx is holder and symbol.name == cls.name:
            names.add(local)
    return names


# -- the model -------------------------------------------------------------------------
def build_context(module: cst.Module, path: str | None = None, project: Project | None = None) -> FileContext:
    """The file's context with every class's module-ness and collections: what another
    file's analysis may ask of this one."""
    imports = ImportTable.of_module(module)
    ctx = FileContext(module, imports, path, project)
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


def build_model(module: cst.Module, path: str | None = None, project: Project | None = None) -> FileModel:
    ctx = build_context(module, path, project)
    classes = list(ctx.classes.values())
    for info in classes:
        _passed_in_members(info, ctx)
    loops: list[MemberLoop] = []
    for info in classes:
        if info.collections:
            loops.extend(find_member_loops(info, ctx))
    return FileModel(module, imports=ctx.imports, classes=classes, loops=loops, ctx=ctx)
