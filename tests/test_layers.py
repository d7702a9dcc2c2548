"""The package's layering, held by a test: every import of one part of enslint by
another runs down the table below, never up, so the import graph has no circle; and
each package's docstring names every part it imports ("May import: ...").

A new module takes a row (or joins one); moving a row is a design change, made here
on purpose and said in the commit."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "enslint"

# Bottom up: a part may import the parts of the rows before its own, never its own row's
# other parts or a later row's.
LAYERS: list[set[str]] = [
    {"__init__", "findings", "source", "target_version", "cache", "workers"},  # __init__: the version
    {"analysis"},
    {"parsing"},
    {"rewrites"},
    {"rules"},
    {"config", "output", "measurements", "profiles"},
    {"checking", "discovery"},
    {"analyser"},
    {"runner"},
    {"engine"},
    {"verify", "profiling"},
    {"cli"},
    {"__main__"},
]
RANK = {part: rank for rank, row in enumerate(LAYERS) for part in row}


def part_of(path: Path) -> str:
    """The layer a file belongs to: its subpackage, or its own name at the top."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_parts(path: Path) -> dict[str, int]:
    """The parts of enslint the file imports (anywhere in it, at module level or in a
    function), each with the line of its first import."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "enslint":
                found.setdefault(parts[1] if len(parts) > 1 else "__init__", node.lineno)
    return found


FILES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_has_a_row():
    assert {part_of(path) for path in FILES} <= set(RANK), "a new part of enslint: give it a row in LAYERS"


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_imports_run_down_the_layers(path):
    mine = part_of(path)
    upward = [
        f"line {line}: {mine} imports {other}"
        for other, line in imported_parts(path).items()
        if other != mine and RANK[other] >= RANK[mine]
    ]
    assert not upward, upward


PACKAGES = sorted(path.parent for path in PACKAGE.glob("*/__init__.py"))


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: path.name)
def test_package_docstring_names_what_it_imports(package):
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    said = re.search(r"May import:?(.*?)(?:\.\s*(?:Never|$)|\n\n)", docstring, re.DOTALL)
    assert said, f"{package.name}/__init__.py: its docstring says nothing of what it may import"
    named = set(re.findall(r"enslint\.(\w+)", said.group(1)))
    used = set()
    for path in package.rglob("*.py"):
        used |= set(imported_parts(path))
    used.discard(package.name)
    assert used <= named, f"{package.name} imports {sorted(used - named)}, which its docstring does not name"


LONG_MODULE = 500  # lines: above this a module says in its docstring why it is one module


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_long_module_says_why_it_is_one(path):
    text = path.read_text()
    if text.count("\n") <= LONG_MODULE:
        return
    docstring = ast.get_docstring(ast.parse(text)) or ""
    assert "Why one module of this size:" in docstring, f"{text.count(chr(10))} lines and no reason given"


def _module_name(path: Path) -> str:
    name = ".".join(("enslint", *path.relative_to(PACKAGE).with_suffix("").parts))
    return name.removesuffix(".__init__")


def test_no_circle_between_modules_either():
    """Within a part too (analysis/context.py and analysis/members.py importing each
    other was one): the module import graph, imports inside functions and for type
    checking included, has no cycle."""
    modules = {_module_name(path): path for path in FILES}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("enslint"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name.startswith("enslint")}
        graph[name] = {t for t in targets if t in modules and t != name}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            pytest.fail("import circle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
