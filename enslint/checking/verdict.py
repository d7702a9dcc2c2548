"""Whether a file can be analysed: Python's verdict (a syntax error is ENS000,
exactly when `python file.py` would reject it) and libcst's measured limits (a file
Python takes that libcst's parser cannot is ENS000 "cannot analyse", told without
calling libcst)."""

from __future__ import annotations

import ast
import re
import sys
import tokenize
from collections.abc import Iterator

from enslint.checking.jobs import FileJob, first_line_of, unreadable
from enslint.findings import Diagnostic
from enslint.parsing import compiled_by_python, python_check, python_parse, python_tokens, target_check
from enslint.source import line_starts
from enslint.target_version import describe, target_for

_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _python_error(job: FileJob, error: BaseException, first_line: int = 1, python: str = _PYTHON) -> list[Diagnostic]:
    """ENS000 for what Python raised on the text that starts at the file's `first_line`."""
    if isinstance(error, SyntaxError):
        return unreadable(
            job,
            f"syntax error for Python {python}: {first_line_of(error.msg)}",
            (error.lineno or 1) + first_line - 1,
            error.offset or 1,
        )
    return unreadable(job, f"cannot parse: {first_line_of(error)}", first_line)


PYTHON_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


def python_syntax_error(job: FileJob, source: str, data: bytes | None = None) -> list[Diagnostic] | None:
    """The file's ENS000 when the Python its project targets rejects it, else None: this
    interpreter's verdict, or libcst's where the project targets a newer Python. `data`:
    the file's bytes as read from its path, when they are (its bytecode cache may hold the
    verdict already)."""
    if data is not None and compiled_by_python(job.filename, data):
        return None
    target = target_for(job.filename)
    newer = target is not None and target > sys.version_info[:2]
    try:
        target_check(source, target)
    except PYTHON_ERRORS as error:
        return _python_error(job, error, python=describe(target) if target and newer else _PYTHON)
    return None


def python_tree(job: FileJob, source: str) -> ast.Module | list[Diagnostic]:
    """Python's tree of a big file, or its ENS000. The verdict is compile's, statement
    by statement (the whole file at once would take minutes)."""
    try:
        tree = python_parse(source)
    except PYTHON_ERRORS as error:
        return _python_error(job, error)
    return _statement_errors(job, tree, source) or tree


def _statement_errors(job: FileJob, tree: ast.Module, source: str) -> list[Diagnostic] | None:
    """What compile rejects in a parsed file, found statement by statement (each one
    compiled alone), and a `from __future__` import after other statements (which
    Python allows only at the top)."""
    starts = line_starts(source)
    opening = True
    for index, statement in enumerate(tree.body):
        future = isinstance(statement, ast.ImportFrom) and statement.module == "__future__"
        docstring = (
            index == 0
            and isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str)
        )
        if future and not opening:
            return unreadable(
                job,
                f"syntax error for Python {_PYTHON}: from __future__ imports must occur at the beginning of the file",
                statement.lineno,
                statement.col_offset + 1,
            )
        opening = opening and (future or docstring)
        first = min([statement.lineno, *(d.lineno for d in getattr(statement, "decorator_list", ()))])
        last = statement.end_lineno or statement.lineno
        text = source[starts[first - 1] : starts[last] if last < len(starts) else len(source)]
        try:
            python_check(text)
        except PYTHON_ERRORS as error:
            return _python_error(job, error, first)
    return None


# Where libcst's parser takes less than Python (benchmarks/limits.py, 27 families of
# deep and wide constructs; every other one parses to Python's own limit):
# - it nests a chain of `and` (or of `or`) one level per operand, and its process dies
#   (SIGSEGV) past about 7,000 operands, where Python takes 100,000 and more: chains
#   are stopped well short of the crash;
# - it rejects more than 3,000 strings written one after another (implicitly
#   concatenated), and more than 3,000 `for` clauses in one comprehension.
# A file past one of them is ENS000 "cannot analyse" with the construct and its line,
# told from Python's tree (and tokens) without calling libcst.
MAX_BOOLEAN_OPERANDS = 5_000
MAX_ADJACENT_STRINGS = 3_000
MAX_COMPREHENSION_CLAUSES = 3_000
_BOOLEAN_WORD = re.compile(r"\b(?:and|or)\b")
_FOR_WORD = re.compile(r"\bfor\b")
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def past_libcst_limits(job: FileJob, tree: ast.Module | None, source: str) -> list[Diagnostic] | None:
    """The ENS000 of a file Python accepts but libcst's parser could not take; its tree
    (None: parsed here, where the text leaves a doubt). Each limit is first bounded by a
    count over the text, which rules it out for any ordinary file."""
    chains = len(_BOOLEAN_WORD.findall(source)) >= MAX_BOOLEAN_OPERANDS
    clauses = len(_FOR_WORD.findall(source)) > MAX_COMPREHENSION_CLAUSES
    walked: Iterator[ast.AST] = iter(())
    if chains or clauses:
        if tree is None:
            try:
                tree = python_parse(source)
            except SyntaxError:  # syntax newer than this Python, which libcst reads (target_version)
                tree = None
        walked = ast.walk(tree) if tree is not None else iter(())
    for node in walked:
        if isinstance(node, ast.BoolOp) and len(node.values) > MAX_BOOLEAN_OPERANDS:
            operator = "and" if isinstance(node.op, ast.And) else "or"
            return unreadable(
                job,
                f"cannot analyse: a chain of {len(node.values):,} `{operator}` operands is more than libcst's parser "
                f"survives (it crashes past about 7,000; enslint stops at {MAX_BOOLEAN_OPERANDS:,})",
                node.lineno,
                node.col_offset + 1,
            )
        if isinstance(node, _COMPREHENSIONS) and len(node.generators) > MAX_COMPREHENSION_CLAUSES:
            return unreadable(
                job,
                f"cannot analyse: a comprehension of {len(node.generators):,} `for` clauses is more than libcst's "
                f"parser takes ({MAX_COMPREHENSION_CLAUSES:,})",
                node.lineno,
                node.col_offset + 1,
            )
    if source.count('"') + source.count("'") > 2 * MAX_ADJACENT_STRINGS:
        run = _longest_string_run(source)
        if run is not None and run[0] > MAX_ADJACENT_STRINGS:
            return unreadable(
                job,
                f"cannot analyse: {run[0]:,} strings written one after another are more than libcst's parser takes "
                f"({MAX_ADJACENT_STRINGS:,})",
                run[1],
                run[2],
            )
    return None


def _longest_string_run(source: str) -> tuple[int, int, int] | None:
    """The most string tokens in a row (implicit concatenation; line breaks and comments
    between them allowed), with where the run starts; None if Python's tokenizer fails."""
    tokens = python_tokens(source)
    if tokens is None:
        return None
    best = (0, 1, 1)
    count, start = 0, (1, 0)
    for token in tokens:
        if token.type == tokenize.STRING:
            if count == 0:
                start = token.start
            count += 1
            if count > best[0]:
                best = (count, start[0], start[1] + 1)
        elif token.type not in (tokenize.NL, tokenize.COMMENT):
            count = 0
    return best
