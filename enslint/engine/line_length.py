"""The line length the project's formatter keeps to, and which formatter it is, for the
code enslint writes.

Read, never guessed from the code: the nearest `ruff.toml` / `.ruff.toml`, or
`pyproject.toml` with a `[tool.ruff]` or `[tool.black]` table, at or above the file, up
to the repository's root (the folder with `.git`); ruff's `line-length` first, then
black's. Both formatters default to 88, and so does enslint.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

from enslint.target_version import nearest_declared, read_toml

DEFAULT = 88


class Style(NamedTuple):
    width: int
    black: bool  # the project configures black, not ruff: wrap as black does


def style_for(filename: str | None) -> Style:
    if not filename:
        return Style(DEFAULT, False)
    return _for_folder(str(Path(filename).absolute().parent))


@functools.lru_cache(maxsize=256)
def _for_folder(folder: str) -> Style:
    return nearest_declared(Path(folder), _declared) or Style(DEFAULT, False)


def _declared(folder: Path) -> Style | None:
    """The style a formatter's configuration in `folder` sets (its default length where
    the configuration is there without one); None: no formatter configuration here."""
    for name in ("ruff.toml", ".ruff.toml"):
        table = read_toml(folder / name)
        if table is not None:
            return Style(_length(table.get("line-length")), False)
    pyproject = read_toml(folder / "pyproject.toml")
    tools = pyproject.get("tool") if isinstance(pyproject, dict) else None
    if not isinstance(tools, dict):
        return None
    for tool in ("ruff", "black"):
        table = tools.get(tool)
        if isinstance(table, dict):
            return Style(_length(table.get("line-length")), tool == "black")
    return None


def _length(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 20 <= value <= 1000:
        return value
    return DEFAULT
