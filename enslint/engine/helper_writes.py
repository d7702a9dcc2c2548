"""The helper modules a `--fix` run writes beside the files it fixes.

A fixed file that imports helpers from its package's helper module
(rewrites/helper_module.py) is written only once that module holds them: the module is
created, or the definitions it lacks are appended, first. It is written as the fixed
files are: to a temporary file renamed into place, and never over a change made
meanwhile (a module created or edited by someone else since it was read is read again).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from enslint.engine.line_length import style_for
from enslint.engine.replacing import WRITTEN, replace_bytes, signals_held
from enslint.engine.transaction import diff_label
from enslint.engine.wrapping import wrap_written
from enslint.rewrites.helper_module import HelperModuleError, defined_names, module_text


@dataclass
class HelperChange:
    path: str
    before: str | None  # None: the module is new
    after: str

    def diff(self, cwd: str | None = None) -> str:
        import difflib

        shown = _shown(self.path, cwd)
        return "".join(
            difflib.unified_diff(
                (self.before or "").splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=diff_label("a", shown if self.before is not None else None),
                tofile=diff_label("b", shown),
            )
        )


def _shown(path: str, cwd: str | None = None) -> str:
    relative = os.path.relpath(path, cwd or os.getcwd())
    return path if relative.startswith("..") else Path(relative).as_posix()


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            return stream.read()
    except FileNotFoundError:
        return None


@dataclass
class HelperModules:
    """What this run has planned (`--diff`) or written (`--fix`) per helper module."""

    planned: dict[str, HelperChange] = field(default_factory=dict)

    def plan(self, needs: dict[str, set[str]]) -> None:
        """Add what `needs` (module path -> names) adds to what is planned so far;
        HelperModuleError when a module there cannot take them."""
        for path, names in sorted(needs.items()):
            known = self.planned.get(path)
            before = _read(path) if known is None else known.after
            after = _with_names(path, before, names)
            if after != before:
                self.planned[path] = HelperChange(path, before if known is None else known.before, after)

    def write_for(self, needs: dict[str, set[str]]) -> list[str]:
        """Write what `needs` adds to each module as it is on disk now; returns what was
        written, one line each. Another run writing the same module at the same time
        (a second enslint) is read again and added to, never overwritten. OSError (one
        line) when a module cannot be written."""
        written = []
        for path, names in sorted(needs.items()):
            for _ in range(_ATTEMPTS):
                before = _read(path)
                after = _with_names(path, before, names)
                if after == before:
                    break
                change = HelperChange(path, before, after)
                if _write(change):
                    added = sorted(defined_names(after) - (set() if before is None else defined_names(before)))
                    verb = "created with" if before is None else "added"
                    written.append(f"{_shown(path)}: {verb} {', '.join(added)}")
                    break
            else:
                raise OSError(f"{_shown(path)} kept changing while enslint was writing it")
        return written


_ATTEMPTS = 5


def _with_names(path: str, before: str | None, names: set[str]) -> str:
    """The module's text `before` (None: new) holding `names`, its path in any error."""
    try:
        text = module_text(before, names)
    except HelperModuleError as error:
        raise HelperModuleError(f"{_shown(path)}: {error}") from None
    kept = len(before.rstrip("\n")) if before is not None else 0
    style = style_for(path)  # what is added, to the line length of the project's formatter
    return wrap_written(text, ((kept, len(text)),), style.width, style.black)


def _write(change: HelperChange) -> bool:
    """Whether the change was written: False when the module is no longer `before`."""
    if change.before is None:
        with signals_held():
            return _create(change)
    path = Path(os.path.realpath(change.path))
    before, after = change.before.encode(), change.after.encode()
    return replace_bytes(path, after, before, os.stat(path).st_mode, None, _shown(change.path)) == "written"


def _create(change: HelperChange) -> bool:
    folder = os.path.dirname(change.path)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(change.path)}.", suffix=".enslint-tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(change.after)
        try:
            os.link(temporary, change.path)  # fails where someone created it meanwhile
        except FileExistsError:
            return False
        WRITTEN.append(_shown(change.path))
        return True
    finally:
        os.unlink(temporary)
