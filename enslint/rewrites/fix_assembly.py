"""How a rewrite becomes a fix: the edits it makes, and what they need of the file.

`unsafe_rewrite` turns a rewrite's edits into an unsafe `RuleFix`: it imports the helpers
the new code calls from the package's helper module (or, for a text with no file beside
it, defines them after the file's opening imports), in the section and order isort would
give it, removes the imports the edits leave unused, adds `import torch` where the file
has none, and says in the message what happens to checkpoints.
"""

from __future__ import annotations

import re
from collections import Counter

import libcst as cst

from enslint.analysis.combine import single_statement
from enslint.analysis.syntax import NodeIndex, children_of, code_of, names_in, walk
from enslint.findings import Applicability, Form, HelperNeed, NodeEdit, RuleFix
from enslint.rewrites.helper_module import HelperHome
from enslint.rewrites.helper_sources import is_current
from enslint.rewrites.helper_sources import source as helper_source
from enslint.rewrites.reasons import Reason, Rejection, reject

# Every fused rewrite changes the state_dict keys and adds a hook for old checkpoints.
MIGRATION = (
    "changes state_dict keys; old checkpoints load through a hook (torch >= 2.5), which migrates the model's "
    "parameters and buffers, not an optimizer's or an EMA copy's saved state"
)


def unsafe_rewrite(
    form: Form,
    message: str,
    edits: list[NodeEdit],
    module: cst.Module,
    helpers: tuple[str, ...],
    torch_name: str,
    home: HelperHome | None,
    add_import: bool = False,
    note: str = MIGRATION,
) -> RuleFix | Rejection:
    """The rewrite as an unsafe fix, with what its code calls: `helpers` are imported from
    the package's helper module at `home` (which the engine writes), or, with no home (a
    text with no file beside it), defined after the imports that open the file, before
    the first function or class: code at module level (a script that builds the model)
    may run before the end of the file. A helper the file already defines or imports is
    used as it is. With `add_import`, `import torch` goes before the file's first import
    (after any `from __future__` import). `note` says what happens to checkpoints."""
    edits = list(edits)
    facts = _facts_of(module)
    missing = []
    for name in helpers:
        found = definition(module, name)
        if found is None:
            missing.append(name)
        elif not is_current(name, module.code_for_node(found), torch_name):
            return reject(Reason.HELPER_NOT_CURRENT, name=name)
    need = None
    written = ""
    if home is None:
        written = "\n\n".join(helper_source(name, torch_name) for name in missing)
        if missing:
            edits.append(_helper_edit(module, written))
    elif missing:
        need = HelperNeed(home.path, tuple(missing))
        edit = _helper_import_edit(facts, home, missing)
        if edit is None:
            return reject(Reason.NO_PLACE_FOR_IMPORT)  # a star import of the helper module
        edits.append(edit)
        written = edit.content
    edits += unused_import_edits(module, edits, also_written=written)
    if add_import:
        first = facts.first_import
        if first is None:
            return reject(Reason.NO_PLACE_FOR_IMPORT)  # no fix rather than a broken one
        edits.append(NodeEdit(first, "import torch\n", before=True))
    if need is not None and home is not None:  # `need` is only set when there is a home
        message = f"{message}, with {', '.join(f'`{name}`' for name in missing)} from `{home.shown}`"
    return RuleFix(Applicability.UNSAFE, f"{message} ({note})", tuple(edits), form, need)


def _helper_import_edit(facts: _ModuleFacts, home: HelperHome, names: list[str]) -> NodeEdit | None:
    """The import of `names` from the helper module: added to the file's import of it
    when there is one (an earlier fix's), else as a line after the opening imports."""
    for statement, small in facts.imports:
        if isinstance(small, cst.ImportFrom) and _imported_module(small) == home.import_from:
            if isinstance(small.names, cst.ImportStar):
                return None
            held = [code_of(alias.name) for alias in small.names]
            wanted = held + [name for name in names if name not in held]
            return NodeEdit(statement, home.import_line(wanted).rstrip("\n"))
    line = home.import_line(names).rstrip("\n")
    if facts.last_opening_import is not None:
        last = single_statement(facts.last_opening_import)
        same_section = isinstance(last, cst.ImportFrom) and _same_section(_imported_module(last), home.import_from)
        # The project's own import starts a section of its own, as isort and ruff order them.
        return NodeEdit(facts.last_opening_import, line if same_section else "\n" + line, after=True)
    if facts.first_definition is not None:
        return NodeEdit(facts.first_definition, line + "\n\n\n", before=True)
    return None


def _same_section(module: str, helper_module: str) -> bool:
    """Whether an import of `module` is in the section an import of the helper module
    joins: relative beside relative, the project's own package beside itself."""
    if helper_module.startswith("."):
        return module.startswith(".")
    return module.partition(".")[0] == helper_module.partition(".")[0] and "." in helper_module


def _imported_module(node: cst.ImportFrom) -> str:
    dots = "." * len(node.relative)
    return dots + (code_of(node.module) if node.module is not None else "")


class _ModuleFacts:
    """What the rewrites ask of a whole module, found once per module: how often each
    bare name and each string appears outside import statements, which body holds each
    statement, the top-level imports and definitions, and where a helper goes. Each fix
    of each finding asks; walking the module once per fix made a file of N flagged
    classes cost N module walks."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.names, self.strings = _usage(module)
        self._body_of: dict[int, tuple] | None = None
        self.imports = [
            (statement, small)
            for statement in module.body
            if isinstance(small := single_statement(statement), (cst.Import, cst.ImportFrom))
        ]
        self.definitions: dict[str, cst.FunctionDef | cst.ClassDef] = {}
        for statement in module.body:
            if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
                self.definitions.setdefault(statement.name.value, statement)
        self.first_import = next(
            (
                s
                for s in module.body
                if isinstance(s, cst.SimpleStatementLine)
                and isinstance(s.body[0], (cst.Import, cst.ImportFrom))
                and not (
                    isinstance(s.body[0], cst.ImportFrom) and code_of(s.body[0].module or cst.Name("x")) == "__future__"
                )
            ),
            None,
        )
        body = list(module.body)
        first_definition = next(
            (i for i, s in enumerate(body) if isinstance(s, (cst.FunctionDef, cst.ClassDef))), len(body)
        )
        imports = [s for s in body[:first_definition] if _is_import_block(s)]
        self.last_opening_import = imports[-1] if imports else None
        self.first_definition = body[first_definition] if first_definition < len(body) else None
        self._holding: dict[str, int] = {}

    @property
    def body_of(self) -> dict[int, tuple]:
        """The body (one shared tuple) holding each statement, by the statement's id; found
        on first use, by the fixes that replace a run of statements."""
        if self._body_of is None:
            self._body_of = {}
            for found in walk(self.module):
                body = getattr(found, "body", None)
                statements = body if isinstance(body, (list, tuple)) else getattr(body, "body", None)
                if isinstance(statements, (list, tuple)):
                    shared = tuple(statements)
                    for statement in shared:
                        self._body_of[id(statement)] = shared
        return self._body_of

    def strings_holding(self, name: str) -> int:
        """How many string literals of the module contain `name`."""
        if name not in self._holding:
            self._holding[name] = sum(count for text, count in self.strings.items() if name in text)
        return self._holding[name]


def _usage(*roots: cst.CSTNode) -> tuple[Counter, Counter]:
    """Bare names and string literals below `roots` (each node once), imports left out."""
    names: Counter = Counter()
    strings: Counter = Counter()
    held = [NodeIndex.tree_holding(root) for root in roots]
    indexed = [found for found in held if found is not None]
    if held and len(indexed) == len(held) and all(found[0] is indexed[0][0] for found in indexed):
        # Slices of the module's index: a root inside another is counted once.
        tree = indexed[0][0]
        order, end = tree.order, tree.end
        covered = 0
        for start in sorted(here for _, here in indexed):
            here, stop = max(start, covered), end[start]
            while here < stop:
                node = order[here]
                kind = type(node)
                if kind is cst.Import or kind is cst.ImportFrom:
                    here = end[here]
                    continue
                if isinstance(node, cst.Name):
                    names[node.value] += 1
                elif isinstance(node, cst.SimpleString):
                    strings[node.value] += 1
                here += 1
            covered = max(covered, stop)
        return names, strings
    seen: set[int] = set()
    pending = list(roots)
    while pending:
        node = pending.pop()
        if id(node) in seen or isinstance(node, (cst.Import, cst.ImportFrom)):
            continue
        seen.add(id(node))
        if isinstance(node, cst.Name):
            names[node.value] += 1
        elif isinstance(node, cst.SimpleString):
            strings[node.value] += 1
        pending.extend(children_of(node))
    return names, strings


_FACTS: list[_ModuleFacts] = []  # the module of the file being analysed (one at a time)


def _facts_of(module: cst.Module) -> _ModuleFacts:
    if not _FACTS or _FACTS[0].module is not module:
        _FACTS[:] = [_ModuleFacts(module)]
    return _FACTS[0]


def names_used_outside(module: cst.Module, names: set[str]) -> None:
    """`module` is a piece of a bigger file (analysis/pieces.py): `names` appear in the
    text it leaves out, so no import of one of them is unused."""
    facts = _facts_of(module)
    facts.names.update(names)


def _replaced_nodes(module: cst.Module, edits: list[NodeEdit]) -> list[cst.CSTNode]:
    """The nodes `edits` replace (a run of statements stands for each of them)."""
    replaced: list[cst.CSTNode] = []
    for edit in edits:
        if edit.node is None or edit.before or edit.after:
            continue
        if isinstance(edit.node, tuple):
            first, last = edit.node
            statements = _facts_of(module).body_of.get(id(first))
            if statements is not None:
                start = next(i for i, s in enumerate(statements) if s is first)
                end = next(i for i, s in enumerate(statements) if s is last)
                replaced.extend(statements[start : end + 1])
        else:
            replaced.append(edit.node)
    return replaced


def unused_import_edits(module: cst.Module, edits: list[NodeEdit], also_written: str = "") -> list[NodeEdit]:
    """Edits that drop the module-level imports only the replaced code used
    (`ModuleList` after its collection became one layer, `copy` after `deepcopy`);
    `also_written` is more code the rewrite adds (its helper)."""
    replaced = _replaced_nodes(module, edits)
    if not replaced:
        return []
    used_there = set().union(*(names_in(node) for node in replaced))
    written = set(re.findall(r"[A-Za-z_]\w*", "\n".join([*(e.content for e in edits if not e.delete), also_written])))
    usage = _facts_of(module)
    names_inside, strings_inside = _usage(*replaced)

    def used_elsewhere(name: str) -> bool:
        # As a name, or inside a string (`getattr(nn, "ModuleList")`), outside the replaced code.
        if usage.names[name] > names_inside[name]:
            return True
        return usage.strings_holding(name) > sum(count for text, count in strings_inside.items() if name in text)

    result: list[NodeEdit] = []
    for statement, small in usage.imports:
        if isinstance(small.names, cst.ImportStar):
            continue
        if isinstance(small, cst.ImportFrom) and code_of(small.module or cst.Name("x")) == "__future__":
            continue
        kept, dropped = [], []
        for alias in small.names:
            local = alias.asname.name if alias.asname else alias.name
            local_name = code_of(local).split(".")[0]
            if local_name in used_there and local_name not in written and not used_elsewhere(local_name):
                dropped.append(alias)
            else:
                kept.append(alias)
        if not dropped:
            continue
        if not kept:
            result.append(NodeEdit(statement, "", delete=True))
            continue
        names = [alias.with_changes(comma=cst.MaybeSentinel.DEFAULT) for alias in kept]
        rewritten = (
            small.with_changes(names=names, lpar=None, rpar=None)
            if isinstance(small, cst.ImportFrom)
            else small.with_changes(names=names)
        )
        result.append(NodeEdit(statement, code_of(rewritten)))
    return result


def _is_import_block(statement: cst.CSTNode) -> bool:
    """`import x`, or a try/if whose every statement is an import (`try: import x ...`)."""
    if isinstance(statement, cst.SimpleStatementLine):
        return all(isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body)
    if isinstance(statement, (cst.Try, cst.If)):
        blocks = [statement.body.body, *(h.body.body for h in getattr(statement, "handlers", ()))]
        orelse = getattr(statement, "orelse", None)
        if orelse is not None:
            blocks.append(orelse.body.body)
        return all(
            isinstance(s, cst.SimpleStatementLine)
            and all(isinstance(x, (cst.Import, cst.ImportFrom, cst.Pass)) for x in s.body)
            for block in blocks
            for s in block
        )
    return False


def _helper_edit(module: cst.Module, source: str) -> NodeEdit:
    """Where a helper definition goes: after the last import before the first function or
    class (two blank lines either side), else before that first definition."""
    facts = _facts_of(module)
    text = source.strip("\n")
    if facts.last_opening_import is not None:
        return NodeEdit(facts.last_opening_import, "\n\n" + text, after=True)
    if facts.first_definition is not None:
        return NodeEdit(facts.first_definition, text + "\n\n\n", before=True)
    return NodeEdit(None, source)


def definition(module: cst.Module, name: str) -> cst.FunctionDef | cst.ClassDef | None:
    """The module-level function or class called `name` (the first, if several)."""
    return _facts_of(module).definitions.get(name)
