"""The Python version a project's code is written for, from its own configuration.

Whether a file is broken is the verdict of the Python the project targets, not of the
interpreter enslint happens to run on: a project that requires Python 3.12 may use PEP
695's `type` aliases and generic classes, which Python 3.11's compiler rejects and
libcst reads. Read, never guessed from the code: the nearest `ruff.toml` /
`.ruff.toml` or `pyproject.toml` at or above the file, up to the repository's root (the
folder with `.git`), that says any of ruff's `target-version` ("py312"), the project's
`requires-python` lower bound (">=3.12"), or black's `target-version` (the oldest listed),
in that order, as ruff reads them. None: the project says nothing. `nearest_declared`
and `read_toml` serve the line length the fixes keep to as well (engine/line_length.py).
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

Version = tuple[int, int]
T = TypeVar("T")

_PY_NAME = re.compile(r"py(\d)(\d{1,2})")
# A clause of a version specifier that bounds it from below: >=3.12, ~=3.12, ==3.12.*
_LOWER_BOUND = re.compile(r"(?:>=|~=|==)\s*(\d+)\.(\d+)")


def target_for(filename: str | None) -> Version | None:
    if not filename:
        return None
    return _for_folder(str(Path(filename).absolute().parent))


def describe(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


@functools.lru_cache(maxsize=256)
def _for_folder(folder: str) -> Version | None:
    return nearest_declared(Path(folder), _declared)


def nearest_declared(folder: Path, declared: Callable[[Path], T | None]) -> T | None:
    """What `declared` finds in `folder` or the nearest folder above it, up to the
    repository's root (the folder with `.git`); None when none says."""
    for candidate in (folder, *folder.parents):
        found = declared(candidate)
        if found is not None:
            return found
        if (candidate / ".git").exists():
            break
    return None


def _declared(folder: Path) -> Version | None:
    for name in ("ruff.toml", ".ruff.toml"):
        table = read_toml(folder / name)
        if table is not None and (found := _py_name(table.get("target-version"))) is not None:
            return found
    pyproject = read_toml(folder / "pyproject.toml")
    if pyproject is None:
        return None
    tools = pyproject.get("tool")
    tools = tools if isinstance(tools, dict) else {}
    ruff = tools.get("ruff")
    if isinstance(ruff, dict) and (found := _py_name(ruff.get("target-version"))) is not None:
        return found
    project = pyproject.get("project")
    if isinstance(project, dict) and (found := _requires(project.get("requires-python"))) is not None:
        return found
    black = tools.get("black")
    if isinstance(black, dict):
        listed = black.get("target-version")
        names = listed if isinstance(listed, list) else [listed]
        versions = [version for version in map(_py_name, names) if version is not None]
        if versions:
            return min(versions)
    return None


def _py_name(value: object) -> Version | None:
    """(3, 12) for "py312"."""
    if not isinstance(value, str):
        return None
    match = _PY_NAME.fullmatch(value.strip().lower())
    return (int(match.group(1)), int(match.group(2))) if match else None


def _requires(value: object) -> Version | None:
    """The highest lower bound of a `requires-python` specifier (">=3.10,<4" -> (3, 10))."""
    if not isinstance(value, str):
        return None
    bounds = [(int(major), int(minor)) for major, minor in _LOWER_BOUND.findall(value)]
    return max(bounds) if bounds else None


def read_toml(path: Path) -> dict | None:
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
        return None
