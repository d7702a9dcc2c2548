"""Which reasons a rule's findings can give for offering no fused rewrite, read from the
rewrites' own source, so that the rule pages list the catalogue of reasons.py and never
a copy of it.

A rule names the registry function that makes its offer (`Rule.offered_by`). From there
every function, class and module-level value of `enslint/rewrites/` that the code reaches
by name (its own module's or one it imports from another rewrites module, at the top or
inside a function) is searched for the reasons it gives, `reject(Reason.NAME, ...)`; those of the kinds a finding says
(blocked, members) are the rule's. Python's parser reads the files; nothing is imported.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from enslint.rewrites.reasons import Kind, Reason

_PACKAGE = "enslint.rewrites"
_FOLDER = Path(__file__).parent
_SAID = (Kind.BLOCKED, Kind.MEMBERS)
_MAKERS = ("reject", "Rejection")  # a reason given, not one looked up (`_STANDALONE`)

Definition = tuple[str, str]  # (module, name), as in ("wide_layer", "wide_layer_fix")


class _Module:
    """A rewrites module: its top-level definitions and the names it imports from others."""

    def __init__(self, tree: ast.Module) -> None:
        self.definitions: dict[str, ast.AST] = {}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                self.definitions[node.name] = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.definitions[target.id] = node
        # Imports inside functions too: the registry imports each rewrite where it is used.
        self.imports: dict[str, Definition] = {}
        for inner in ast.walk(tree):
            if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith(_PACKAGE + "."):
                module = (inner.module or "").removeprefix(_PACKAGE + ".")
                for alias in inner.names:
                    self.imports[alias.asname or alias.name] = (module, alias.name)


@cache
def _module(name: str) -> _Module | None:
    path = _FOLDER / f"{name}.py"
    if not path.is_file():
        return None
    return _Module(ast.parse(path.read_text(encoding="utf-8")))


def _reached(entry: Definition) -> set[Definition]:
    seen: set[Definition] = set()
    pending = [entry]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        module = _module(current[0])
        node = module.definitions.get(current[1]) if module is not None else None
        if module is None or node is None:
            continue
        seen.add(current)
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name):
                if inner.id in module.definitions:
                    pending.append((current[0], inner.id))
                elif inner.id in module.imports:
                    pending.append(module.imports[inner.id])
    return seen


@cache
def reasons_said_by(offered_by: str) -> tuple[Reason, ...]:
    """The reasons a finding whose offer `registry.<offered_by>` makes may give, in the
    catalogue's order."""
    named: set[str] = set()
    for module_name, name in _reached(("registry", offered_by)):
        module = _module(module_name)
        assert module is not None  # `_reached` keeps only what it found
        for inner in ast.walk(module.definitions[name]):
            made = isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id in _MAKERS
            reason = inner.args[0] if made and inner.args else None  # type: ignore[attr-defined]
            if isinstance(reason, ast.Attribute) and isinstance(reason.value, ast.Name) and reason.value.id == "Reason":
                named.add(reason.attr)
    return tuple(reason for reason in Reason if reason.name in named and reason.kind in _SAID)
