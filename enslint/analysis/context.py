"""What the analysis of one file knows about the file as a whole.

`FileContext` holds the file's imports, its top-level functions and its classes (with
the member collections they hold: `Collection`, `Member`, which members.py fills in), and
answers "what does this name refer to?" for the passes that read collections
(members.py) and loops (loops.py). Names bound in the file resolve here; names
imported from another file of the project (or an installed package) are handed to the
project index, when there is one (project.py), which answers with the other file's own
context. This module depends on neither pass, so both can depend on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import libcst as cst

from enslint.analysis.bases import is_torch_name
from enslint.analysis.imports import ImportTable
from enslint.analysis.syntax import dotted_name

if TYPE_CHECKING:
    from enslint.analysis.positions import Positions
    from enslint.analysis.runtime import RuntimeMembers


@dataclass(frozen=True)
class Evidence:
    """Where the proof that members are identical comes from, when it is not the
    holder's own code: "built by `clones()`" at utils.py, line 8. Rendered relative to
    the file a message is about (FileModel.render), so one file's context can serve the
    analysis of another; the line is looked up only when a message is written."""

    what: str  # "built by `clones()`", "members built by `make_q()`", "inherited from `Bank`"
    ctx: FileContext = field(compare=False, repr=False)
    node: cst.CSTNode = field(compare=False, repr=False)
    then: Evidence | None = None  # the evidence behind this one (a parent's own helper)

    @property
    def path(self) -> str | None:
        return self.ctx.path

    @property
    def line(self) -> int | None:
        return self.ctx.line_of(self.node)


@dataclass
class Member:
    text: str  # the constructor as written, e.g. "nn.Linear(hidden_dim, num_actions)"
    kind: str
    type_name: str  # "nn.Linear", "MLP", "nn.Sequential", "create_mlp(...)"
    in_size: str | None = None
    out_size: str | None = None
    inner: Collection | None = None  # set when kind == GROUP
    # True: proven an nn.Module (a torch.nn class, a module class, a factory of one);
    # None: nothing says either way (a constructor imported from where we cannot read).
    is_module: bool | None = None
    shared: bool = False  # one instance repeated: every member is the same object
    cls: ClassInfo | None = None  # the member's class, when it could be read
    # The parameter of the scanned function the member is (a copy of): `module` in
    # `def clones(module, n): return nn.ModuleList([copy.deepcopy(module) ...])`. A caller
    # of the helper knows what it is.
    source_param: str | None = None
    qualified: str | None = None  # the class as imported, when it lives in another file


@dataclass
class Collection:
    attr: str
    container: str  # "nn.ModuleList", "nn.ModuleDict", "list + add_module", "list + setattr"
    size: str | None  # as written: "ensemble_size", "3", "n_layers - 1"
    size_value: int | None
    member: Member | None  # None: the members are not provably identical
    why_heterogeneous: str | None = None  # when member is None: the evidence against
    # The one statement that builds the collection (`self.heads = nn.ModuleList([...])`),
    # when it is built that way; rewrites replace it.
    origin: cst.SimpleStatementLine | None = None
    # For a collection created empty and filled by a loop: the creating statement.
    created: cst.SimpleStatementLine | None = None
    method: str | None = None  # the method that builds it (`__init__`, `build`, `fit`)
    conditional: bool = False  # built in one branch of an `if` (`if individual:`)
    # Each branch of an `if` builds its own members (a dueling or a plain head): identical
    # in every run, but `member` is the first branch's only. Each branch's, as written.
    branch_members: tuple[str, ...] = ()
    # Where the evidence comes from when it is not this class's own code: "members built
    # by `make_q()` at builders.py:63", "built by `clones()` at utils.py:5".
    evidence: Evidence | None = None
    inherited_from: str | None = None  # the parent class that builds it
    # (parameter name, position) when the members are the caller's: nn.ModuleList(models)
    passed_in: tuple[str, int] | None = None
    # The profiled run that proved the members identical, when the source could not.
    runtime: RuntimeMembers | None = None

    @property
    def identical(self) -> bool:
        return self.member is not None

    @property
    def per_branch(self) -> bool:
        return bool(self.branch_members)


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
    # The classes it derives from that could be resolved, nearest first, with their
    # contexts: those of this file at once, those of other files when first asked for
    # (reading another file costs a parse), through `parent_classes()`.
    parents: list[tuple[ClassInfo, FileContext]] = field(default_factory=list)
    foreign_parents: Callable[[], list[tuple[ClassInfo, FileContext]]] | None = field(default=None, repr=False)
    foreign_bases: tuple[str, ...] = ()  # the qualified names of those parents

    def parent_classes(self) -> list[tuple[ClassInfo, FileContext]]:
        if self.foreign_parents is not None:
            resolve, self.foreign_parents = self.foreign_parents, None
            self.parents = self.parents + resolve()
        return self.parents


def find_method(
    cls: ClassInfo, ctx: FileContext, name: str, depth: int = 0
) -> tuple[cst.FunctionDef, FileContext, ClassInfo] | None:
    """A method of `cls` or of a class it derives from, with the context it is defined in."""
    if name in cls.methods:
        return cls.methods[name], ctx, cls
    if depth > 8:
        return None
    for parent, parent_ctx in cls.parent_classes():
        found = find_method(parent, parent_ctx, name, depth + 1)
        if found is not None:
            return found
    return None


@dataclass
class Symbol:
    """What a name refers to: a function or a class. One of this file comes with its
    node and context; one of another file only with where it is, until the project
    index is asked to read that file (`Project.load`): reading costs a parse."""

    kind: str  # "function" or "class"
    name: str
    node: cst.FunctionDef | cst.ClassDef | None
    ctx: FileContext | None
    path: str | None = None  # the file that defines it
    qualified: str | None = None  # as the importing file names it, for the project


class Project(Protocol):
    """What a file's analysis may ask about the rest of the project (project.py)."""

    names: tuple[str, ...]  # the project's collection names, when the run knows them
    unread: set[str]  # files this analysis left unread for want of those names

    def locate(self, qualified: str, importer: str) -> tuple[str, str, str] | None: ...

    def load(self, symbol: Symbol, why: str, owner: str | None = None) -> Symbol | None: ...

    def is_module_class(self, qualified: str, importer: str) -> bool | None: ...

    def defines_method(self, qualified: str, importer: str, method: str) -> bool | None: ...

    def call_sites(self, holder: FileContext, class_name: str) -> list[FileContext]: ...


class FileContext:
    def __init__(
        self, module: cst.Module, imports: ImportTable, path: str | None = None, project: Project | None = None
    ) -> None:
        self.module = module
        self.imports = imports
        self.path = path  # absolute; None for a text with no file
        self.project = project
        self.source: str | None = None  # the text, when the caller has it (a cheap search)
        # per class: attributes `self.<name>` read in loops, and those it assigns
        self.looped: dict[str, tuple[set[str], set[str]]] | None = None
        self.functions: dict[str, cst.FunctionDef] = {}
        self.classes: dict[str, ClassInfo] = {}  # every class, nn.Module or not
        # Scanners of factory functions and helper methods, by function node.
        self.scanners: dict[int, Any] = {}
        self._positions: Positions | None = None
        self.line_map: Callable[[int], int] | None = None  # piece line -> file line, for a piece of a big file

    # -- names -------------------------------------------------------------------------
    def qualify(self, node: cst.BaseExpression) -> str | None:
        return self.imports.qualify(node)

    def resolve(self, node: cst.BaseExpression) -> Symbol | None:
        """The function or class a name (`clones`, `utils.clones`, `Critic`) refers to."""
        name = dotted_name(node)
        if name is None:
            return None
        if name in self.functions:
            return Symbol("function", name, self.functions[name], self, self.path)
        if name in self.classes:
            return Symbol("class", name, self.classes[name].node, self, self.path)
        qualified = self.imports.qualify_any(node)
        if qualified is None or is_torch_name(qualified) or self.project is None or self.path is None:
            return None
        located = self.project.locate(qualified, self.path)
        if located is None:
            return None
        path, found, kind = located
        return Symbol(kind, found, None, None, path, qualified)

    def load(self, symbol: Symbol, why: str) -> Symbol | None:
        """The symbol with its node and context, reading its file if need be; `why` says
        what is sought there ("collections": the file must name a member container)."""
        if symbol.ctx is not None:
            return symbol
        return None if self.project is None else self.project.load(symbol, why, self.path)

    # -- positions, for evidence in messages --------------------------------------------
    def line_of(self, node: cst.CSTNode) -> int | None:
        if self._positions is None:
            from enslint.analysis.positions import Positions

            self._positions = Positions(self.module, self.source if self.source is not None else self.module.code)
        try:
            line = self._positions[node].start.line
        except KeyError:
            return None
        return self.line_map(line) if self.line_map is not None else line

    def evidence(self, what: str, node: cst.CSTNode, then: Evidence | None = None) -> Evidence:
        return Evidence(what, self, node, then)
