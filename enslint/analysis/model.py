"""The one model of a file that every rule reads.

`build_model` parses nothing itself: it takes the libcst tree, finds the classes that
are `nn.Module`s (directly, through any import alias, or through a base class defined
in the same file), reads their member collections (`members.py`) and the loops over
those collections in every method (`loops.py`). Rules are queries over the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import libcst as cst

from enslint.analysis.imports import ImportTable
from enslint.analysis.kinds import SELF_COLLECTION
from enslint.analysis.members import (
    ELEMENTWISE,
    LINEARS,
    Collection,
    ConstructionScanner,
    Member,
    _sequential_member,
)
from enslint.analysis.syntax import arg_at, code_of, first_param

# Bases that make a class an nn.Module. Any public class of `torch.nn` is one, except
# the tensor types that live there too.
_NOT_MODULES = {"torch.nn.Parameter", "torch.nn.UninitializedParameter", "torch.nn.Buffer", "torch.nn.UninitializedBuffer"}
_MODULE_BASES = {
    "pytorch_lightning.LightningModule",
    "pytorch_lightning.core.LightningModule",
    "lightning.LightningModule",
    "lightning.pytorch.LightningModule",
}


@dataclass
class ModuleClass:
    name: str
    node: cst.ClassDef
    methods: dict[str, cst.FunctionDef] = field(default_factory=dict)
    collections: dict[str, Collection] = field(default_factory=dict)
    size_attrs: dict[str, str] = field(default_factory=dict)  # `self.n = n`
    # (in, out) when the class is only nn.Linear layers and element-wise activations.
    mlp_sizes: tuple[str | None, str | None] | None = None
    is_module_list: bool = False  # derives from nn.ModuleList: `for m in self`


@dataclass
class FileModel:
    module: cst.Module
    imports: ImportTable
    classes: list[ModuleClass]
    loops: list  # list[MemberLoop], see loops.py

    def member_loops(self, reading: str, min_members: int) -> Iterator:
        """Loops over at least `min_members` members (when the count is a literal) in
        which every member call reads input of kind `reading` (kinds.SAME, kinds.SLICE)."""
        for loop in self.loops:
            size = loop.collection.size_value
            if size is not None and size < min_members:
                continue
            if loop.calls and all(call.input == reading for call in loop.calls):
                yield loop


def _is_module_base(base: cst.BaseExpression, imports: ImportTable, local_modules: set[str]) -> bool:
    if isinstance(base, cst.Name) and base.value in local_modules:
        return True
    qualified = imports.qualify(base)
    if qualified is None:
        return False
    if qualified in _MODULE_BASES:
        return True
    parts = qualified.split(".")
    return (
        qualified not in _NOT_MODULES
        and parts[:2] == ["torch", "nn"]
        and parts[-1][:1].isupper()
        and "functional" not in parts
    )


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


class FileContext:
    """What the analysis of one file knows about the file as a whole."""

    def __init__(self, module: cst.Module, imports: ImportTable) -> None:
        self.module = module
        self.imports = imports
        self.functions: dict[str, cst.FunctionDef] = {}
        self.classes: dict[str, ModuleClass] = {}
        self._factory_cache: dict[str, ConstructionScanner] = {}

    def _factory_scanner(self, function: cst.FunctionDef) -> ConstructionScanner:
        name = function.name.value
        if name not in self._factory_cache:
            scanner = ConstructionScanner(self, self_name=None)
            scanner.scan_function(function)
            self._factory_cache[name] = scanner
        return self._factory_cache[name]

    def factory_collection(self, attr: str, function: cst.FunctionDef, call: cst.Call, seen) -> Collection | None:
        """The collection a local factory (`_get_clones(layer, n)`) returns for `call`."""
        scanner = self._factory_scanner(function)
        if len(scanner.returns) != 1:
            return None
        collection = scanner.collection_from_expr(attr, scanner.returns[0], seen)
        if collection is None or collection.size is None:
            return collection
        # Sizes are written in the factory's parameters; say them in the caller's words.
        params = [p.name.value for p in function.params.params]
        for index, param in enumerate(params):
            argument = arg_at(call, index, param)
            if argument is not None:
                collection.size = re.sub(rf"\b{re.escape(param)}\b", code_of(argument), collection.size)
        return collection

    def factory_member(self, function: cst.FunctionDef, call: cst.Call) -> Member | None:
        scanner = self._factory_scanner(function)
        if len(scanner.returns) != 1:
            return None
        return scanner.member(scanner.returns[0], None, ())


def _mlp_sizes(cls: ModuleClass, ctx: FileContext) -> tuple[str | None, str | None] | None:
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
                member = _sequential_member("", [a.value for a in value.args], ctx)
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
            member = _sequential_member("", [a.value for a in call.args], ctx)
            return member.in_size if index == 0 else member.out_size
        argument = arg_at(call, index, "in_features" if index == 0 else "out_features")
        return None if argument is None else code_of(argument)

    return size(linears[0], 0), size(linears[-1], 1)


def _read_collections(cls: ModuleClass, ctx: FileContext) -> None:
    for method in cls.methods.values():
        if any(code_of(d.decorator) == "staticmethod" for d in method.decorators):
            continue
        self_name = first_param(method)
        scanner = ConstructionScanner(ctx, self_name, self_is_collection=cls.is_module_list)
        scanner.scan_function(method)
        if cls.is_module_list and self_name is not None:
            own = scanner.collection(SELF_COLLECTION, self_name, None)
            if own is not None:
                cls.collections.setdefault(SELF_COLLECTION, own)
        for attr, value in scanner.size_attrs.items():
            cls.size_attrs.setdefault(attr, value)
        attrs = set(scanner.self_values) | {k[5:] for k in scanner.builders if k.startswith("self.") and "[" not in k}
        for attr in sorted(attrs):
            values = scanner.self_values.get(attr, [])
            collection = scanner.collection(attr, "self." + attr, values[-1] if values else None)
            if collection is None:
                continue
            lines = scanner.self_lines.get(attr, [])
            if len(lines) == 1:
                if "self." + attr in scanner.builders:
                    collection.created = lines[0]
                else:
                    collection.origin = lines[0]
            if collection.container in ("list", "tuple"):
                if not scanner.registers_with_add_module:
                    continue
                collection.container = "list + add_module"
            cls.collections.setdefault(attr, collection)


def build_model(module: cst.Module) -> FileModel:
    from enslint.analysis.loops import find_member_loops

    imports = ImportTable.of_module(module)
    ctx = FileContext(module, imports)
    class_nodes: list[cst.ClassDef] = []
    for statement in _top_level(module.body):
        if isinstance(statement, cst.FunctionDef):
            ctx.functions[statement.name.value] = statement
        elif isinstance(statement, cst.ClassDef):
            class_nodes.append(statement)

    # A class is a module when a base is; bases may be defined later in the file.
    local_modules: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node in class_nodes:
            if node.name.value not in local_modules and any(
                _is_module_base(base.value, imports, local_modules) for base in node.bases
            ):
                local_modules.add(node.name.value)
                changed = True

    classes: list[ModuleClass] = []
    for node in class_nodes:
        if node.name.value not in local_modules:
            continue
        cls = ModuleClass(node.name.value, node)
        cls.is_module_list = any(imports.qualify(base.value) == "torch.nn.ModuleList" for base in node.bases)
        for statement in node.body.body:
            if isinstance(statement, cst.FunctionDef):
                cls.methods[statement.name.value] = statement
        ctx.classes[cls.name] = cls
        classes.append(cls)
    for cls in classes:
        cls.mlp_sizes = _mlp_sizes(cls, ctx)
    for cls in classes:
        _read_collections(cls, ctx)

    loops = []
    for cls in classes:
        if cls.collections:
            loops.extend(find_member_loops(cls, ctx))
    return FileModel(module, imports, classes, loops)
