"""Which files `enslint check` reads: `.py` files under the given paths, minus excludes.

Folders are pruned as the walk goes (a hidden folder or a virtualenv is never entered).
Paths named on the command line are always taken, except where a configured `exclude`
or `extend-exclude` glob matches them: pre-commit passes file names one by one, and its
users expect the project's excludes to hold there too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path

from enslint.config import DEFAULT_EXCLUDE, Config


class DiscoveryError(Exception):
    """A path given on the command line does not exist."""


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def matches(patterns: tuple[str, ...], path: Path, root: Path, every_part: bool = False) -> bool:
    """A glob without a slash matches a name (the path's own, or with `every_part` any
    folder's on the way from the config's folder); one with a slash matches the path
    relative to the config's folder, or any of its parent folders."""
    relative = _relative(path, root)
    parts = relative.split("/")
    names = parts if every_part and not Path(relative).is_absolute() else [path.name]
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if "/" not in pattern:
            if any(fnmatchcase(name, pattern) for name in names):
                return True
        else:
            pattern = pattern.removeprefix("./")
            if any(fnmatchcase("/".join(parts[: i + 1]), pattern) for i in range(len(parts))):
                return True
    return False


# The kernel's pseudo file systems hold no source, and reading them can block or fail
# (`/proc/1/fdinfo` is not readable): a walk that reaches one (a link to `/`) skips it.
_PSEUDO_FILE_SYSTEMS = ("/proc", "/sys", "/dev")


def _is_virtualenv(folder: Path) -> bool:
    return (folder / "pyvenv.cfg").is_file() or (folder / "conda-meta").is_dir()


def _skipped(folder: Path, warn: Callable[[str], None]) -> bool:
    """A folder the walk does not enter: a virtualenv, a pseudo file system, or one that
    cannot be looked into (said through `warn`)."""
    if os.path.realpath(folder) in _PSEUDO_FILE_SYSTEMS:
        return True
    try:
        return _is_virtualenv(folder)
    except OSError as error:
        warn(f"{folder}: skipped: {error.strerror or error}")
        return True


def discover(paths: list[Path], config: Config, warn: Callable[[str], None] = lambda message: None) -> list[Path]:
    user_excludes = config.extend_exclude + tuple(p for p in config.exclude if p not in DEFAULT_EXCLUDE)
    found: set[Path] = set()
    for given in paths:
        path = given.absolute()
        if not path.exists():
            raise DiscoveryError(f"{given}: no such file or directory")
        if not path.is_dir():  # a file, or a FIFO or device named here: ENS000 says which
            if not matches(user_excludes, path, config.root, every_part=True):
                found.add(path)
            continue
        for folder, subfolders, files in os.walk(path):
            here = Path(folder)
            kept = []
            for name in sorted(subfolders):
                child = here / name
                if matches(config.exclude + config.extend_exclude, child, config.root) or _skipped(child, warn):
                    continue
                kept.append(name)
            subfolders[:] = kept
            for name in files:
                if name.endswith(".py"):
                    child = here / name
                    if not matches(config.exclude + config.extend_exclude, child, config.root):
                        found.add(child)
    return sorted(found)
