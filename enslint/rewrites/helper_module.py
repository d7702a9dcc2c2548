"""Where a package's helper module goes, how a rewritten file imports it, and its text.

A fused rewrite that needs a helper (a checkpoint hook, `StackedMembers`) imports it from
one module per package, `fused_ensembles.py`, instead of pasting the definition into
every file it fixes:

- a file inside a package (its folder holds `__init__.py`) imports it from the top
  package's folder: relatively (`from ..fused_ensembles import ...`) when the file uses
  relative imports or none of its own package, absolutely (`from pkg.fused_ensembles
  import ...`) when it imports its own package that way;
- a file outside any package imports it from its own folder (`from fused_ensembles
  import ...`), where a script run from that folder finds it.

The engine writes the module (engine/helper_writes.py): created with the helpers the
fixes need, or the missing definitions appended to the one already there, never
rewriting what is in it.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

from enslint.analysis.kinds import HELPER_MODULE
from enslint.analysis.model import FileModel
from enslint.rewrites.helper_sources import SOURCES, is_current, source

_HEADER = '''"""Helpers for the fused ensembles enslint wrote into this package.

The rewritten modules import them from here; `enslint check --fix` adds what a
new rewrite needs and leaves the rest of this file as it is. Their checkpoint
hooks need torch 2.5 or later.
"""

import torch
'''


@dataclass(frozen=True)
class HelperHome:
    path: str  # absolute path of the helper module
    import_from: str  # what the rewritten file writes after `from`
    shown: str  # the path as the fixed file's folder sees it: "fused_ensembles.py", "../fused_ensembles.py"

    def import_line(self, names: list[str]) -> str:
        """In isort's order: classes before functions, then by name."""
        ordered = sorted(set(names), key=lambda name: (not name[:1].isupper(), name))
        return f"from {self.import_from} import {', '.join(ordered)}\n"


def home_for(filename: str, relative_imports: bool, absolute_packages: set[str]) -> HelperHome | None:
    """The helper module for the file `filename`; `relative_imports`: whether the file
    uses one; `absolute_packages`: the top-level packages it imports absolutely. None
    when `filename` is no file on disk (standard input)."""
    if not os.path.isfile(filename):
        return None
    folder = os.path.dirname(os.path.abspath(filename))
    parts: list[str] = []
    top = folder
    while os.path.isfile(os.path.join(top, "__init__.py")) and os.path.basename(top).isidentifier():
        parts.insert(0, os.path.basename(top))
        top = os.path.dirname(top)
    if not parts:
        return HelperHome(os.path.join(folder, f"{HELPER_MODULE}.py"), HELPER_MODULE, f"{HELPER_MODULE}.py")
    path = os.path.join(top, parts[0], f"{HELPER_MODULE}.py")
    shown = Path(os.path.relpath(path, folder)).as_posix()
    if parts[0] in absolute_packages and not relative_imports:
        return HelperHome(path, f"{parts[0]}.{HELPER_MODULE}", shown)
    return HelperHome(path, "." * len(parts) + HELPER_MODULE, shown)


class HelperModuleError(Exception):
    """The helper module there cannot be added to (one line for the user)."""


def defined_names(text: str) -> set[str]:
    return set(_definitions(text))


def _definitions(text: str) -> dict[str, str]:
    """The module's top-level classes and functions: name -> its text."""
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        raise HelperModuleError(f"it does not parse ({error.msg}, line {error.lineno})") from None
    return {
        node.name: ast.get_source_segment(text, node) or ""
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
    }


def module_text(existing: str | None, names: set[str]) -> str:
    """The helper module holding `names`: `existing` (the file's text, or None) with
    the definitions it lacks appended, in the catalogue's order. A definition already
    there is kept as it is, and must be the one this enslint writes (`is_current`):
    the rewrites rely on what it does."""
    text = _HEADER if existing is None else existing
    present = _definitions(text) if existing is not None else {}
    for name in sorted(names & set(present)):
        if not is_current(name, present[name]):
            raise HelperModuleError(
                f"its `{name}` is not the one this enslint writes (an older enslint's, or edited): "
                f"rename or delete it, and `--fix` writes the current one"
            )
    missing = [name for name in SOURCES if name in names and name not in present]
    if not missing:
        return text
    if existing is not None and "import torch" not in existing:
        raise HelperModuleError("it does not `import torch`, which the helpers call")
    return text.rstrip("\n") + "\n" + "".join("\n\n" + source(name) for name in missing)


def home_of(model: FileModel) -> HelperHome | None:
    """The helper module of the file `model` was built from; None when its fixes must
    stand alone in the text."""
    if model.fixed_file is None:
        return None
    bound = list(model.imports.bindings.values())
    relative = any(name.startswith(".") for name in bound)
    packages = {name.partition(".")[0] for name in bound if not name.startswith(".")}
    return home_for(model.fixed_file, relative, packages)
