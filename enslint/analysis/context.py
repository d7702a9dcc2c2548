"""What the analysis of one file knows about the file as a whole.

`FileContext` holds the file's imports, its top-level functions and its classes, and
answers "what does this name refer to?" for the passes that read collections
(members.py) and loops (loops.py). Names bound in the file resolve here; names
imported from another file of the project (or an installed package) are handed to the
project index, when there is one (project.py), which answers with the other file's own
context. This module depends on neither pass, so both can depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import libcst as cst

from enslint.analysis.imports import ImportTable
from enslint.analysis.syntax import dotted_name

if TYPE_CHECKING:
    from enslint.analysis.members import Collection


# Bases that make a class an nn.Module. Any public class of `torch.nn` is one, except
# the tensor types that live there too.
_NOT_MODULES = {"torch.nn.Parameter", "torch.nn.UninitializedParameter", "torch.nn.Buffer", "torch.nn.UninitializedBuffer"}
MODULE_BASES = {
    "pytorch_lightning.LightningModule",
    "pytorch_lightning.core.LightningModule",
    "lightning.LightningModule",
    "lightning.pytorch.LightningModule",
}


def is_torch_module_name(qualified: str) -> bool:
    """`torch.nn.Linear`, `torch.nn.modules.linear.Linear`, `lightning.LightningModule`."""
    if qualified in MODULE_BASES:
        return True
    parts = qualified.split(".")
    return (
        qualified not in _NOT_MODULES
        and parts[:2] == ["torch", "nn"]
        and parts[-1][:1].isupper()
        and "functional" not in parts
        and "parameter" not in parts
    )


def is_torch_name(qualified: str) -> bool:
    head = qualified.split(".")[0]
    return head in ("torch", "lightning", "pytorch_lightning")


@dataclass
class ClassInfo:
    """A class of the file, with what the passes learn about it."""

    name: str
    node: cst.ClassDef
    methods: dict[str, cst.FunctionDef] = field(default_factory=dict)
    collections: dict[str, Collection] = field(default_factory=dict)
    size_attrs: dict[str, str] = field(default_factory=dict)  # `self.n = n`
    # (in, out) when the class is only nn.Linear layers and element-wise activations.
    mlp_sizes: tuple[str | None, str | None] | None = None
    is_module_list: bool = False  # derives from nn.ModuleList: `for m in self`
    # True: an nn.Module; False: shown not to be one; None: a base could not be resolved.
    is_module: bool | None = False
    # The classes it derives from that could be resolved, nearest first, with their contexts.
    parents: list[tuple[ClassInfo, FileContext]] = field(default_factory=list)


def find_method(cls: ClassInfo, ctx: FileContext, name: str, depth: int = 0) -> tuple[cst.FunctionDef, FileContext, ClassInfo] | None:
    """A method of `cls` or of a class it derives from, with the context it is defined in."""
    if name in cls.methods:
        return cls.methods[name], ctx, cls
    if depth > 8:
        return None
    for parent, parent_ctx in cls.parents:
        found = find_method(parent, parent_ctx, name, depth + 1)
        if found is not None:
            return found
    return None


@dataclass
class Symbol:
    """What a name refers to: a function or a class, and the context it lives in."""

    kind: str  # "function" or "class"
    name: str
    node: cst.FunctionDef | cst.ClassDef
    ctx: FileContext

    def where(self) -> str:
        """`utils.py:12` for a symbol of another file, else ``."""
        return self.ctx.location(self.node)


class Project(Protocol):
    """What a file's analysis may ask about the rest of the project (project.py)."""

    def symbol(self, qualified: str, importer: str) -> Symbol | None: ...

    def is_module_class(self, qualified: str, importer: str) -> bool | None: ...

    def call_sites(self, holder: FileContext, class_name: str) -> list[Any]: ...


class FileContext:
    def __init__(self, module: cst.Module, imports: ImportTable, path: str | None = None, project: Project | None = None) -> None:
        self.module = module
        self.imports = imports
        self.path = path  # absolute; None for a text with no file
        self.project = project
        self.display_path = path or ""  # how messages name the file
        self.functions: dict[str, cst.FunctionDef] = {}
        self.classes: dict[str, ClassInfo] = {}  # every class, nn.Module or not
        # Scanners of factory functions and helper methods, by function node.
        self.scanners: dict[int, Any] = {}
        self._positions = None

    # -- names -------------------------------------------------------------------------
    def qualify(self, node: cst.BaseExpression) -> str | None:
        return self.imports.qualify(node)

    def resolve(self, node: cst.BaseExpression) -> Symbol | None:
        """The function or class a name (`clones`, `utils.clones`, `Critic`) refers to."""
        name = dotted_name(node)
        if name is None:
            return None
        if name in self.functions:
            return Symbol("function", name, self.functions[name], self)
        if name in self.classes:
            return Symbol("class", name, self.classes[name].node, self)
        qualified = self.imports.qualify_any(node)
        if qualified is None or is_torch_name(qualified) or self.project is None or self.path is None:
            return None
        return self.project.symbol(qualified, self.path)

    def class_info(self, symbol: Symbol) -> ClassInfo | None:
        return symbol.ctx.classes.get(symbol.name) if symbol.kind == "class" else None

    # -- positions, for evidence in messages --------------------------------------------
    def location(self, node: cst.CSTNode) -> str:
        """`path:line` of a node of this file, for messages about another file."""
        if self.path is None:
            return ""
        if self._positions is None:
            from libcst.metadata import MetadataWrapper, PositionProvider

            self._positions = MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider)
        try:
            line = self._positions[node].start.line
        except KeyError:
            return self.display_path
        return f"{self.display_path}:{line}"
