"""Resolve the names a file binds by import to fully qualified names.

`nn.Linear`, `torch.nn.Linear`, `tnn.Linear` (after `import torch.nn as tnn`) and
`Linear` (after `from torch.nn import Linear`) all resolve to `torch.nn.Linear`. This is
all the name resolution the rules need, read from the file's own import statements;
libcst's QualifiedNameProvider would cost ten times the parse.

A relative import keeps its leading dots: after `from ..utils import clones`, `clones`
resolves to `..utils.clones`. Only the project index (project.py) can say which file
that is, by the importing file's own path; nothing here looks at the file system.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from enslint.analysis.syntax import dotted_name


def _module_name(node: cst.BaseExpression) -> str:
    name = dotted_name(node)
    return name or ""


def _bound_name(asname: cst.AsName) -> str:
    """The name an import's `as` binds: always a plain name (only `with` and `except`
    bind tuples or lists)."""
    name = asname.name
    assert isinstance(name, cst.Name)
    return name.value


def is_relative(qualified: str) -> bool:
    return qualified.startswith(".")


class ImportTable:
    def __init__(self) -> None:
        self.bindings: dict[str, str] = {}

    @classmethod
    def of_module(cls, module: cst.Module) -> ImportTable:
        table = cls()
        table._scan(module.body)
        return table

    def _scan(self, statements: Sequence[cst.CSTNode]) -> None:
        # Imports guarded by `if TYPE_CHECKING`, `try`/`except ImportError` or `with`
        # still bind the names, so look inside compound statements at module level.
        for statement in statements:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, cst.Import):
                        self._add_import(small)
                    elif isinstance(small, cst.ImportFrom):
                        self._add_import_from(small)
            elif isinstance(statement, (cst.If, cst.Try, cst.With)):
                self._scan(statement.body.body)
                for handler in getattr(statement, "handlers", ()):
                    self._scan(handler.body.body)
                orelse = getattr(statement, "orelse", None)
                while orelse is not None:
                    self._scan(orelse.body.body)
                    orelse = getattr(orelse, "orelse", None)

    def _add_import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = _module_name(alias.name)
            if alias.asname is not None:
                self.bindings[_bound_name(alias.asname)] = full
            else:
                head = full.split(".")[0]
                self.bindings[head] = head

    def _add_import_from(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        dots = "." * len(node.relative)
        base = dots + (_module_name(node.module) if node.module is not None else "")
        if not base:
            return
        for alias in node.names:
            name = _module_name(alias.name)
            local = _bound_name(alias.asname) if alias.asname is not None else name
            self.bindings[local] = f"{base}{name}" if base.endswith(".") else f"{base}.{name}"

    def local_name(self, qualified: str) -> str | None:
        """The name this file binds to module `qualified` (`torch`), if it binds one."""
        return next((local for local, full in self.bindings.items() if full == qualified), None)

    def qualify(self, node: cst.BaseExpression) -> str | None:
        """The qualified name `node` refers to through an absolute import, or None."""
        found = self.qualify_any(node)
        return None if found is None or is_relative(found) else found

    def qualify_any(self, node: cst.BaseExpression) -> str | None:
        """Like `qualify`, relative imports included (`..utils.clones`)."""
        name = dotted_name(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        bound = self.bindings.get(head)
        if bound is None:
            return None
        return f"{bound}.{rest}" if rest else bound
