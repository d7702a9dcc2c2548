"""Results of analysed files, kept by content so an unchanged file skips libcst.

Parsing and even importing libcst dominate the cost of checking a small file, and most
runs (pre-commit, CI, an editor on save) see files that have not changed since the last
run. The key is a hash of the file's bytes, the enabled codes, the settings and a
fingerprint of enslint's own code and libcst's version, so any change to any of them is
a miss. Entries are small JSON files written atomically; a cache that cannot be read or
written is silently skipped, never an error.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CACHE_FOLDER = ".enslint_cache"
_FORMAT = "5"  # entries: {rows, deps, exports}; fixes carry their form; rows their details and no_fix


def code_fingerprint() -> str:
    """Changes whenever enslint's source, the libcst version or the Python version
    changes (what parses is Python's to say: a 3.11 verdict does not hold for 3.12)."""
    digest = hashlib.sha256(_FORMAT.encode())
    digest.update(f"python {sys.version_info[0]}.{sys.version_info[1]}".encode())
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    # libcst's version, read from its files: importing it is what the cache avoids.
    spec = importlib.util.find_spec("libcst")
    if spec is not None and spec.origin:
        version_file = Path(spec.origin).with_name("_version.py")
        if version_file.is_file():
            digest.update(version_file.read_bytes())
    return digest.hexdigest()[:16]


def entry_key(
    fingerprint: str,
    codes: frozenset[str],
    settings: object,
    data: bytes,
    names: tuple[str, ...] = (),
    place: str = "",
) -> str:
    """`place`: where the file's fixes import their helpers from (its path decides)."""
    digest = hashlib.sha256()
    digest.update(f"{fingerprint}|{','.join(sorted(codes))}|{settings!r}|{','.join(names)}|{place}|".encode())
    digest.update(data)
    return digest.hexdigest()


@dataclass
class CacheEntry:
    rows: list[list]  # the file's diagnostics
    # Other files the analysis read, by absolute path, with a digest of their bytes (None:
    # absent); "scan:<name>" keys are call-site searches. The entry holds while they do.
    # "unread:<path>" keys name files left unread for want of the project's names.
    deps: dict[str, str | None] = field(default_factory=dict)
    exports: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {"rows": self.rows, "deps": self.deps, "exports": list(self.exports)}

    @classmethod
    def from_json(cls, value: object) -> CacheEntry | None:
        """The entry, or None for anything not of its shape (a miss, never an error)."""
        if not isinstance(value, dict):
            return None
        rows, deps, exports = value.get("rows"), value.get("deps"), value.get("exports")
        if not isinstance(rows, list) or not all(_valid_row(r) for r in rows):
            return None
        if not isinstance(deps, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in deps.items()
        ):
            return None
        if not isinstance(exports, list) or not all(isinstance(n, str) for n in exports):
            return None
        return cls(rows, deps, tuple(exports))


def _ints(*values: object) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _valid_fix(row: object) -> bool:
    """[applicability, message, [[start, end, content, row, col, end_row, end_col]], form,
    helpers: None or [module path, [names]]]"""
    if not (
        isinstance(row, list)
        and len(row) == 5
        and isinstance(row[0], str)
        and isinstance(row[1], str)
        and isinstance(row[3], str)
    ):
        return False
    helpers = row[4]
    if helpers is not None and not (
        isinstance(helpers, list)
        and len(helpers) == 2
        and isinstance(helpers[0], str)
        and isinstance(helpers[1], list)
        and all(isinstance(name, str) for name in helpers[1])
    ):
        return False
    edits = row[2]
    return isinstance(edits, list) and all(
        isinstance(e, list) and len(e) == 7 and _ints(e[0], e[1], *e[3:]) and isinstance(e[2], str) for e in edits
    )


def _valid_row(row: object) -> bool:
    """A diagnostic as checking/file.py's _to_row writes it: anything else makes the
    entry a miss."""
    return (
        isinstance(row, list)
        and len(row) == 10
        and _ints(row[0], row[1], row[5], row[6])
        and all(isinstance(row[i], str) for i in (2, 3, 4, 8, 9))
        and isinstance(row[7], list)
        and all(_valid_fix(f) for f in row[7])
    )


class ResultCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> CacheEntry | None:
        try:
            value = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return CacheEntry.from_json(value)

    def put(self, key: str, entry: CacheEntry) -> None:
        path = self._path(key)
        try:
            if not self.folder.is_dir():
                self.folder.mkdir(parents=True, exist_ok=True)
                (self.folder / ".gitignore").write_text("# created by enslint\n*\n")
                (self.folder / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
            path.parent.mkdir(exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(entry.as_json(), stream)
            os.replace(temporary, path)
        except OSError:
            pass
