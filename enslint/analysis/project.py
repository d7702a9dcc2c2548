"""The project index: what the analysis of one file may learn from the others.

Real ensembles are spread over files: the holder's base class lives in `base.py`, the
collection is built by `clones()` from `utils.py`, the members are made by a builder
that calls `EnsembleQ(q_funcs)`, or the base class comes from an installed library. The
index answers those questions for one project, without importing anything:

- which files: the project a file belongs to is the folder above it that holds a
  `pyproject.toml`, `setup.py`, `setup.cfg` or `.git`; without one (an installed package
  has none), the folder that holds the checked files, never the rest of the package or
  folder they sit in; its files are the `.py` files below that, minus hidden folders and
  virtualenvs. Files outside that bound are read when a checked file imports from them
  (`exports`), never walked.
- which facts: a name imported by a file is followed to the file that defines it, by path
  (`from .base import X` next to the importer; `pkg.mod` under the importer's source
  root, the project root, its `src/`, then `sys.path` for installed packages), through
  re-exports in `__init__.py` files, which are read, never executed. Cheap facts (imports,
  classes and their bases) come from Python's own parser; a file's collections and
  helpers from its libcst context (model.build_context), built once per run and process.
  The call sites of a class are found by a text search for its name, then parsed.
- how it is cached: every file read for an analysis is recorded with a digest of its
  bytes (and every call-site search with a digest of what it found), and the checker
  keeps them beside the cached findings; a cached finding is reused only while those
  files are unchanged. The names that other files may build collections with (the
  `exports` of each file) are kept in one table by file size and modification time, so
  that a one-file run reads the other files only when they changed.

Why one module of this size: `ProjectIndex` holds one project's files, facts, contexts
and the dependencies of the analysis under way; every question (locate, module-ness,
call sites, exports) records what it read in the same place, which is what makes the
cache exact.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import re
import sys
import sysconfig
import tempfile
import warnings
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from enslint.analysis.bases import PLAIN_BASES, base_without_reading, is_torch_name, module_verdict
from enslint.analysis.kinds import MODULE_ROOT_MARKERS, mentions_export, names_a_collection
from enslint.analysis.registrations import builds_collections

if TYPE_CHECKING:
    # The contexts are libcst's: built in the processes that analyse, never imported
    # where only the index's cheap facts are read (the runner's own process).
    from enslint.analysis.context import FileContext, Symbol

PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
_PACKAGE_HOMES = ("site-packages", "dist-packages")
_SKIPPED_FOLDERS = {
    "__pycache__",
    "__pypackages__",
    "node_modules",
    "site-packages",
    "dist-packages",
    "build",
    "dist",
    "_build",
    "buck-out",
}
MAX_FILES = 20_000  # a project walk stops here: a home folder is not a project
MAX_BYTES = 2_000_000  # files larger than this are not read for another file's sake
# What a helper or a parent class builds a collection for others with (a plain list it
# registers itself with setattr stays its own).
_CONTAINER_MARKERS = (b"ModuleList", b"ModuleDict", b"add_module")
MAX_CALL_SITE_FILES = 20  # a class called from more files is not judged by its call sites


def digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.blake2b(data, digest_size=12).hexdigest()


def project_root(path: Path) -> Path | None:
    """The folder of the project `path` belongs to (see the module docstring), or None
    where no marker says: `project_roots` then bounds it by what is checked."""
    path = path.absolute()
    folder = path if path.is_dir() else path.parent
    for candidate in (folder, *folder.parents):
        if candidate.name in _PACKAGE_HOMES:
            # An installed package has no marker of its own; one further up belongs to
            # the project whose virtualenv this is, which does not walk it.
            return None
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    return None


def project_roots(files: list[Path]) -> dict[Path, Path]:
    """The project root of each checked file's folder. Without a marker, the project is
    what is checked: the folder holding all the checked files of one source root, never
    the rest of it. A copy of a package checked beside 1,600 unrelated files indexes the
    package, not them; torch/nn checked where torch is installed indexes torch/nn, not
    the 2,000 other files of torch."""
    roots: dict[Path, Path] = {}
    unmarked: dict[Path, list[Path]] = {}  # source root -> the checked folders below it
    seen: set[Path] = set()
    for path in files:
        folder = path.absolute().parent
        if folder in seen:
            continue
        seen.add(folder)
        marked = project_root(path)
        if marked is not None:
            roots[folder] = marked
        else:
            unmarked.setdefault(source_root(path.absolute()), []).append(folder)
    for folders in unmarked.values():
        common = Path(os.path.commonpath(folders)) if len(folders) > 1 else folders[0]
        roots.update(dict.fromkeys(folders, common))
    return roots


def source_root(path: Path) -> Path:
    """The folder absolute imports of `path` start from: above its top package."""
    folder = path.parent if path.suffix else path
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


def import_bases(importer: Path, project: Path | None) -> list[Path]:
    """The folders the project resolves `importer`'s absolute imports from, before
    Python's own path: above its top package, the project's root and its `src/`."""
    bases = [source_root(importer)]
    if project is not None:
        bases += [project, project / "src"]
    return list(dict.fromkeys(bases))


@dataclass
class _Facts:
    """What Python's parser says about a file: enough to follow names and bases."""

    imports: dict[str, str] = field(default_factory=dict)  # local name -> qualified (relative keeps its dots)
    star_imports: list[str] = field(default_factory=list)
    classes: dict[str, list[str]] = field(default_factory=dict)  # name -> its bases as written
    methods: dict[str, set[str]] = field(default_factory=dict)  # class name -> the methods it defines
    functions: set[str] = field(default_factory=set)


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Subscript):
        return _dotted(node.value)
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _facts_of(tree: ast.Module) -> _Facts:
    facts = _Facts()
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    facts.imports[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    facts.imports[head] = head
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            for alias in node.names:
                if alias.name == "*":
                    facts.star_imports.append(base)
                    continue
                qualified = f"{base}{alias.name}" if base.endswith(".") or not base else f"{base}.{alias.name}"
                facts.imports[alias.asname or alias.name] = qualified
        elif isinstance(node, ast.ClassDef):
            facts.classes[node.name] = [_dotted(b) or "?" for b in node.bases]
            facts.methods[node.name] = {
                n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            }
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            facts.functions.add(node.name)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            pending[:0] = [
                *node.body,
                *getattr(node, "orelse", []),
                *(s for h in getattr(node, "handlers", []) for s in h.body),
            ]
    return facts


# An import statement, read from the text: `from .base import (A, B as C)`, `import a.b as c`.
_IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)|import[ \t]+([^\n]*))", re.MULTILINE
)


def _imported_names(data: bytes) -> list[str]:
    """What a file's imports bind, qualified as `_Facts.imports` qualifies them, read from
    its text, which is cheaper than parsing it: an import spelled inside a string counts
    too, one after a `;` does not."""
    names: list[str] = []
    for match in _IMPORT.finditer(data):
        base, listed, plain = (g.decode("utf-8", "replace") if g is not None else None for g in match.groups())
        if plain is not None:
            for alias in plain.split("#")[0].split(";")[0].split(","):
                parts = alias.split()
                if parts and all(p.replace(".", "").replace("_", "").isalnum() for p in parts[:1]):
                    names.append(parts[0] if len(parts) == 3 and parts[1] == "as" else parts[0].split(".")[0])
            continue
        assert base is not None and listed is not None  # the other branch of the pattern
        text = re.sub(r"#[^\n]*", "", listed).strip("()\\ \t")
        for alias in text.replace("\n", ",").split(";")[0].split(","):
            parts = alias.split()
            if not parts or parts[0] == "*" or not parts[0].isidentifier():
                continue
            names.append(f"{base}{parts[0]}" if base.endswith(".") or not base else f"{base}.{parts[0]}")
    return names


def _qualify(name: str, imports: dict[str, str]) -> str | None:
    head, _, rest = name.partition(".")
    bound = imports.get(head)
    if bound is None:
        return None
    return f"{bound}.{rest}" if rest else bound


class ProjectIndex:
    """The index of one project; one instance per project root and process."""

    def __init__(self, root: Path, cache_dir: Path | None = None) -> None:
        self.root = root.absolute()
        self.cache_dir = cache_dir
        self._files: list[Path] | None = None
        self._bytes: dict[str, bytes | None] = {}
        self._digests: dict[str, str | None] = {}
        self._facts: dict[str, _Facts | None] = {}
        self._modules: dict[tuple[str, str], Path | None] = {}  # module_file's answers
        self._outside: dict[frozenset[str], list[str]] = {}  # _imported_from_outside's answers
        self._contexts: dict[str, FileContext | None] = {}
        self._building: set[str] = set()
        # What each context was read from (files, other contexts), so that a later analysis
        # that uses the context records them all: `_active` is the contexts being built.
        self._links: dict[str, set[str]] = {}
        self._active: list[str] = []
        self._scans: dict[str, tuple[list[Path], str]] = {}
        self.current: str | None = None  # the file being analysed
        self._deps: dict[str, str | None] = {}
        # The project's collection names, when the run knows them (its second phase): a
        # parent or helper in a file that names none of them and no container is not read.
        self.names: tuple[str, ...] = ()
        self.unread: set[str] = set()  # files this analysis left unread for want of those names

    # -- which files ----------------------------------------------------------------
    def files(self) -> list[Path]:
        if self._files is None:
            found: list[Path] = []
            for folder, subfolders, names in os.walk(self.root):
                here = Path(folder)
                subfolders[:] = sorted(
                    name
                    for name in subfolders
                    if not name.startswith(".")
                    and name not in _SKIPPED_FOLDERS
                    and not (here / name / "pyvenv.cfg").is_file()
                    and not (here / name / "conda-meta").is_dir()
                )
                found += [here / name for name in sorted(names) if name.endswith(".py")]
                if len(found) > MAX_FILES:
                    break
            self._files = found
        return self._files

    def _read(self, path: str) -> bytes | None:
        if path not in self._bytes:
            try:
                data = Path(path).read_bytes() if os.path.getsize(path) <= MAX_BYTES else None
            except OSError:
                data = None
            self._bytes[path] = data
        return self._bytes[path]

    def _digest(self, path: str) -> str | None:
        """The digest of what `_read` holds for `path`, which never changes in a run."""
        if path not in self._digests:
            self._digests[path] = digest(self._read(path))
        return self._digests[path]

    # -- dependencies of one analysis ----------------------------------------------------
    def begin(self, path: str, names: tuple[str, ...] = ()) -> None:
        self.current = path
        self._deps = {}
        self.unread = set()
        self.names = tuple(sorted(names))

    def dependencies(self) -> dict[str, str | None]:
        return dict(self._deps)

    def absorb(self, deps: dict[str, str | None], unread: set[str]) -> None:
        """Add what another process read for this analysis (a piece of a big file)."""
        self._deps.update(deps)
        self.unread |= unread

    def _depend(self, path: str) -> None:
        """Record that the analysis under way (and the context being built) read `path`."""
        if path != self.current:
            self._deps[path] = self._digest(path)
        if self._active and self._active[-1] != path:
            self._links.setdefault(self._active[-1], set()).add(path)

    def _depend_on_context(self, path: str) -> None:
        """Record a context and everything it was read from, however long ago it was built."""
        pending, seen = [path], set()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            if current != self.current:
                self._deps[current] = self._digest(current)
            pending.extend(self._links.get(current, ()))
        if self._active and self._active[-1] != path:
            self._links.setdefault(self._active[-1], set()).add(path)

    def still_valid(self, deps: dict[str, str | None]) -> bool:
        """Whether every file (and call-site search) an earlier analysis read is unchanged."""
        for key, value in deps.items():
            if key.startswith("unread:"):
                continue  # the runner's business: it knows the names
            if key.startswith("scan:"):
                if self._scan(key[5:])[1] != value:
                    return False
            else:
                try:
                    data = Path(key).read_bytes()
                except OSError:
                    data = None
                if digest(data) != value:
                    return False
        return True

    # -- module files -------------------------------------------------------------------
    def _roots(self, importer: str) -> list[Path]:
        roots = import_bases(Path(importer), self.root)
        roots += [Path(entry) for entry in sys.path if entry and os.path.isdir(entry)]
        return list(dict.fromkeys(roots))

    def module_file(self, module: str, importer: str) -> Path | None:
        """The file of `module` (`.base`, `..utils`, `pkg.layers`) as `importer` imports it."""
        key = (module, os.path.dirname(importer))
        if key not in self._modules:
            self._modules[key] = self._find_module_file(module, importer)
        return self._modules[key]

    def _find_module_file(self, module: str, importer: str) -> Path | None:
        if module.startswith("."):
            level = len(module) - len(module.lstrip("."))
            base = Path(importer).parent
            for _ in range(level - 1):
                base = base.parent
            rest = module[level:]
            bases = [base]
        else:
            rest = module
            bases = self._roots(importer)
        parts = rest.split(".") if rest else []
        for base in bases:
            target = base.joinpath(*parts)
            candidates = [target / "__init__.py"] if not parts else [target.with_suffix(".py"), target / "__init__.py"]
            for candidate in candidates:
                if candidate.is_file():
                    return candidate
        return None

    def facts(self, path: str) -> _Facts | None:
        if path not in self._facts:
            data = self._read(path)
            facts = None
            if data is not None:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        facts = _facts_of(ast.parse(data))
                except (SyntaxError, ValueError, RecursionError, MemoryError):
                    facts = None
            self._facts[path] = facts
        self._depend(path)
        return self._facts[path]

    def locate(self, qualified: str, importer: str, depth: int = 0) -> tuple[str, str, str] | None:
        """(file, name, "class" or "function") that defines `qualified` as `importer` sees it."""
        if depth > 6 or is_torch_name(qualified):
            return None
        level = len(qualified) - len(qualified.lstrip("."))
        rest = qualified[level:]
        if "." in rest:
            module_rest, name = rest.rsplit(".", 1)
            module = "." * level + module_rest
        elif level:
            module, name = "." * level, rest
        else:
            return None  # a bare name no import binds
        path = self.module_file(module, importer)
        if path is None:
            return None
        path_text = str(path)
        facts = self.facts(path_text)
        if facts is None:
            return None
        if name in facts.classes:
            return path_text, name, "class"
        if name in facts.functions:
            return path_text, name, "function"
        if name in facts.imports:
            return self.locate(facts.imports[name], path_text, depth + 1)
        for star in facts.star_imports:
            found = self.locate(f"{star}{name}" if star.endswith(".") else f"{star}.{name}", path_text, depth + 1)
            if found is not None:
                return found
        return None

    # -- what another file's analysis asks ----------------------------------------------
    def context(self, path: str) -> FileContext | None:
        """The libcst context of another file: its classes, collections and helpers."""
        if path in self._building:
            return None  # files that import each other: no answer rather than a loop
        if path not in self._contexts:
            self._active.append(path)
            try:
                self._contexts[path] = self._build_context(path)
            finally:
                self._active.pop()
        self._depend_on_context(path)
        return self._contexts[path]

    def _build_context(self, path: str) -> FileContext | None:
        import libcst as cst

        from enslint.analysis.model import build_context
        from enslint.source import detect_encoding

        data = self._read(path)
        if data is None:
            return None
        try:
            text = data.decode(detect_encoding(data))
            module = cst.parse_module(text)
        except (cst.ParserSyntaxError, UnicodeDecodeError, SyntaxError, LookupError, RecursionError, ValueError):
            return None
        self._building.add(path)
        try:
            return build_context(module, path, self, text)
        except RecursionError:
            return None
        finally:
            self._building.discard(path)

    def load(self, symbol: Symbol, why: str, owner: str | None = None) -> Symbol | None:
        """`symbol` with its node and its file's context. For collections (a helper that
        builds one, a parent class that holds one), only a file that names a member
        container or one of the project's names (`self.names`) is read: any other has
        none to give, and reading costs a parse."""
        if symbol.path is None:
            return None
        if why == "collections" and not self._may_hold_collections(symbol.path):
            self.unread.add(symbol.path)
            return None
        ctx = self.context(symbol.path)
        if owner is not None and owner != symbol.path:
            # Read on behalf of `owner`'s context (a parent resolved when first needed):
            # whoever uses that context later depends on this file too.
            self._links.setdefault(owner, set()).add(symbol.path)
        if ctx is None:
            return None
        from enslint.analysis.context import Symbol  # noqa: F811 - the class, at run time

        if symbol.kind == "class" and symbol.name in ctx.classes:
            return Symbol("class", symbol.name, ctx.classes[symbol.name].node, ctx, symbol.path, symbol.qualified)
        if symbol.kind == "function" and symbol.name in ctx.functions:
            return Symbol("function", symbol.name, ctx.functions[symbol.name], ctx, symbol.path, symbol.qualified)
        return None

    def _may_hold_collections(self, path: str) -> bool:
        data = self._read(path)
        if data is None:
            return False
        if names_a_collection(data) and builds_collections(data):
            return True
        return bool(self.names) and mentions_export(data, self.names)

    def defines_method(self, qualified: str, importer: str, method: str, depth: int = 0) -> bool | None:
        """Whether the class `qualified` (or a base of it) defines `method`; None: unknown."""
        if is_torch_name(qualified) or depth > 8:
            return None
        located = self.locate(qualified, importer)
        if located is None or located[2] != "class":
            return None
        path, name, _ = located
        facts = self.facts(path)
        if facts is None:
            return None
        seen: set[str] = set()
        pending = [name]
        unknown = False
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            if method in facts.methods.get(current, set()):
                return True
            for base in facts.classes.get(current, []):
                if base in facts.classes:
                    pending.append(base)
                    continue
                full = _qualify(base, facts.imports)
                if full is None:
                    unknown = unknown or base.split(".")[-1] not in PLAIN_BASES
                    continue
                answer = self.defines_method(full, path, method, depth + 1)
                if answer:
                    return True
                unknown = unknown or answer is None
        return None if unknown else False

    def is_module_class(self, qualified: str, importer: str, depth: int = 0) -> bool | None:
        """Whether the class `qualified` (as `importer` imports it) is an nn.Module:
        followed base by base through the files that define them."""
        settled, verdict = base_without_reading(qualified, qualified)
        if settled:
            return verdict
        if depth > 12:
            return None
        located = self.locate(qualified, importer)
        if located is None or located[2] != "class":
            return None
        return self._class_is_module(located[0], located[1], depth, frozenset())

    def _class_is_module(self, path: str, name: str, depth: int, seen: frozenset[tuple[str, str]]) -> bool | None:
        if (path, name) in seen:
            return None  # a cycle of bases
        facts = self.facts(path)
        answers: list[bool | None] = []
        if facts is None:
            return module_verdict(answers)
        for base in facts.classes.get(name, []):
            if base in facts.classes:
                answers.append(self._class_is_module(path, base, depth + 1, seen | {(path, name)}))
                continue
            full = _qualify(base, facts.imports)
            settled, verdict = base_without_reading(base, full)
            # (An unqualified base is always settled.)
            answers.append(verdict if settled or full is None else self.is_module_class(full, path, depth + 1))
        return module_verdict(answers)

    def _scan(self, name: str) -> tuple[list[Path], str]:
        """The project files whose text calls `name`, and a digest of them."""
        if name not in self._scans:
            pattern = re.compile(rb"\b" + re.escape(name.encode()) + rb"\s*\(")
            found, parts = [], []
            for path in self.files():
                data = self._read(str(path))
                if data is not None and pattern.search(data):
                    found.append(path)
                    parts.append(f"{path}:{digest(data)}")
            self._scans[name] = (found, digest("\n".join(parts).encode()) or "")
        return self._scans[name]

    def call_sites(self, holder: FileContext, class_name: str) -> list[FileContext]:
        """The contexts of the other project files that mention `class_name`: where the
        class may be built with its members passed in."""
        found, summary = self._scan(class_name)
        if self.current is not None:
            self._deps[f"scan:{class_name}"] = summary
        if len(found) > MAX_CALL_SITE_FILES:
            return []  # built all over the project: a library class, not one ensemble
        contexts = []
        for path in found:
            if str(path) == holder.path:
                continue
            ctx = self.context(str(path))
            if ctx is not None:
                contexts.append(ctx)
        return contexts

    # -- names for the prefilter ----------------------------------------------------------
    def exports(self, skip: set[str], fingerprint: str = "", known: AbstractSet[str] = frozenset()) -> set[str]:
        """Top-level names the project's files build collections with (helpers that return
        one, classes that hold one), from every file not in `skip`, beyond `known`.

        A file that names a member container exports what it builds; a file that uses an
        exported name may export in turn (`BlockBank` holds `clones(Block(d), n)`), so the
        files that mention a name are read until no new name appears. Entries are kept by
        file size and modification time, with those of the files they read."""
        table_path = None
        table: dict[str, Any] = {}  # file -> [mtime, size, its names, the stats of what it read]
        if self.cache_dir is not None:
            table_path = self.cache_dir / f"index-{digest(str(self.root).encode())}.json"
            try:
                loaded = json.loads(table_path.read_text(encoding="utf-8"))
                if (
                    isinstance(loaded, dict)
                    and loaded.get("fingerprint") == fingerprint
                    and isinstance(loaded.get("files"), dict)
                ):
                    table = loaded["files"]
            except (OSError, ValueError):
                table = {}
        names: set[str] = set(known)
        candidates = [str(path) for path in self.files() if str(path) not in skip]
        candidates += self._imported_from_outside(skip)
        done: set[str] = set()
        changed = False
        for _ in range(6):
            before = len(names)
            known_now = tuple(sorted(names))
            for path in candidates:
                if path in done:
                    continue
                entry = table.get(path)
                if _still_fresh(entry, path):
                    names.update(entry[2])
                    done.add(path)
                    continue
                data = self._read(path)
                if data is None:
                    continue
                marked = (
                    any(m in data for m in _CONTAINER_MARKERS)
                    and any(m in data for m in MODULE_ROOT_MARKERS)
                    and builds_collections(data)
                )
                if not marked and not (known_now and mentions_export(data, known_now)):
                    continue
                found, read, unread = self._exports_of(path, names)
                names.update(found)
                changed = True
                if unread:
                    # It left a parent or helper unread for want of names: read again in
                    # the next round, with the names this one found (and not kept).
                    continue
                table[path] = [*_stat(path), found, {p: _stat(p) for p in read}]
                done.add(path)
            if len(names) == before:
                break
        if changed and table_path is not None:
            _write_json(table_path, {"fingerprint": fingerprint, "files": table})
        return names - set(known)

    def read_ahead(self, checked: AbstractSet[str]) -> None:
        """What `exports` will need that no analysis changes, for the files that are being
        analysed or were deferred (`checked`): read while the analysis runs elsewhere."""
        self._imported_from_outside(checked)

    def _imported_from_outside(self, checked: AbstractSet[str]) -> list[str]:
        key = frozenset(checked)
        if key not in self._outside:
            self._outside[key] = self._search_outside(checked)
        return self._outside[key]

    def _search_outside(self, checked: AbstractSet[str]) -> list[str]:
        """The files outside a project without a marker (what is checked, see
        `project_roots`) that the checked files import names from: the only other files
        whose exports they can use. A marked project's files are all walked already, and
        so are those of a package checked whole (its other imports are other packages).

        The checked files' imports are read from their text (`_imported_names`), not
        parsed: a name imported from a module below the root is followed only through a
        package's `__init__.py`, where it may come from outside; any other file below the
        root is checked itself, and its own imports are read in turn."""
        if project_root(self.root) is not None or not (self.root.parent / "__init__.py").is_file():
            return []
        found: dict[str, None] = {}
        asked: set[tuple[str, str]] = set()  # (name, folder): files side by side import alike
        for path in sorted(checked):
            data = self._read(path)
            if data is None:
                continue
            folder = os.path.dirname(path)
            for qualified in _imported_names(data):
                if is_torch_name(qualified) or (qualified, folder) in asked:
                    continue
                asked.add((qualified, folder))
                level = len(qualified) - len(qualified.lstrip("."))
                module = "." * level + qualified[level:].rpartition(".")[0]
                where = self.module_file(module, path) if module else None
                if where is not None and where.is_relative_to(self.root) and where.name != "__init__.py":
                    continue
                if where is not None and _in_standard_library(where):
                    continue  # `typing`, `collections`: they define no module of torch's
                located = self.locate(qualified, path)
                if located is not None and not Path(located[0]).is_relative_to(self.root):
                    found[located[0]] = None
        return list(found)

    def _exports_of(self, path: str, names: set[str]) -> tuple[list[str], list[str], list[str]]:
        """The file's exports, the other files read to find them, and those left unread
        for want of the project's names."""
        import libcst as cst

        from enslint.analysis.model import build_context, exports_of
        from enslint.source import detect_encoding

        data = self._read(path)
        self.begin(path, tuple(sorted(names)))
        try:
            assert data is not None  # the caller has read it (and `_read` keeps it)
            module = cst.parse_module(data.decode(detect_encoding(data)))
            found = exports_of(build_context(module, path, self))
        except Exception:  # noqa: BLE001 - a file we cannot read exports nothing
            found = []
        read = [p for p in self.dependencies() if not p.startswith("scan:")]
        unread = sorted(self.unread - {path})
        self.current = None
        return found, read, unread


@functools.lru_cache(maxsize=1)
def _standard_library() -> Path:
    return Path(sysconfig.get_paths()["stdlib"]).resolve()


def _in_standard_library(path: Path) -> bool:
    return path.resolve().is_relative_to(_standard_library()) and not any(part in _PACKAGE_HOMES for part in path.parts)


def _stat(path: str) -> list[int]:
    try:
        stat = os.stat(path)
    except OSError:
        return [0, -1]
    return [stat.st_mtime_ns, stat.st_size]


def _still_fresh(entry: object, path: str) -> TypeGuard[list[Any]]:
    """Whether a table entry (stat, names, the stats of the files it read) still holds."""
    if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[2], list) and isinstance(entry[3], dict)):
        return False
    if not all(isinstance(n, str) for n in entry[2]) or entry[:2] != _stat(path):
        return False
    return all(isinstance(p, str) and value == _stat(p) for p, value in entry[3].items())


def _write_json(path: Path, value: object) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(value, stream)
        os.replace(temporary, path)
    except OSError:
        pass


_INDEXES: dict[tuple[str, str], ProjectIndex] = {}


def index_for(root: str, cache_dir: str | None = None) -> ProjectIndex:
    """The index of the project at `root`, one per process."""
    key = (root, cache_dir or "")
    if key not in _INDEXES:
        _INDEXES[key] = ProjectIndex(Path(root), Path(cache_dir) if cache_dir else None)
    return _INDEXES[key]
