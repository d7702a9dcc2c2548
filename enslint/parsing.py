"""How Python and libcst are made to read a file as Python does.

Python's verdict on a file (`python_check`: what `python file.py` refuses before running
it) and its tree (`python_parse`) come from a fresh thread, whatever the depth of the
caller's stack; libcst's parse and the analysis run in a thread with room for all the
nesting Python takes (`analysed_deep`). libcst is handed the text with what its
tokenizer stumbles on and Python ignores read around (`as_libcst_reads`).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
import tokenize
import warnings
from bisect import bisect_right
from collections.abc import Callable
from typing import TypeVar

from enslint.source import line_starts

# Python's verdict on a file is `compile`'s (parsing, then the checks a tree does not
# make: `break` outside a loop, a late `from __future__` import). Its nesting budget
# (how long a sum, how deep a call chain) is a multiple of the recursion limit less the
# depth of the stack it runs from: a fresh interpreter running a file has a limit of
# 1000 and an empty stack. enslint compiles in a new thread (an empty stack wherever
# enslint is) with 1000 plus the thread's own frames, measured on 9 families of nesting
# so that the verdict is `python file.py`'s exactly (benchmarks/limits.py). Trees are
# built after the verdict, with a little more room: never the reason a file is refused.
_VERDICT_RECURSION_LIMIT = 1005
_TREE_RECURSION_LIMIT = 1010
_PARSER_STACK_BYTES = 32 * 1024 * 1024  # the main thread's, or more: some platforms give threads 512 KB


# libcst's parser and code generation, and the analysis over their trees, recurse a few
# frames per level of nesting: they run in a thread of their own with room for all of
# Python's (about 3,000 levels; benchmarks/limits.py), where the main thread's stack and
# recursion limit stopped them near 490 ("nested too deeply to analyse").
_ANALYSIS_RECURSION_LIMIT = 30_000
_ANALYSIS_STACK_BYTES = 256 * 1024 * 1024  # reserved, touched only as deep as it goes

Outcome = TypeVar("Outcome")


def analysed_deep(work: Callable[[], Outcome]) -> Outcome:
    """`work()` (libcst's parse, the analysis) in a thread with room for any nesting
    Python takes."""
    return _in_fresh_thread(work, _ANALYSIS_RECURSION_LIMIT, _ANALYSIS_STACK_BYTES, quiet=False)


def _in_fresh_thread(
    work: Callable[[], Outcome], recursion_limit: int, stack_bytes: int = _PARSER_STACK_BYTES, quiet: bool = True
) -> Outcome:
    """`work()` on an empty stack of `stack_bytes`, under `recursion_limit`, its warnings
    silenced (`quiet`); what it raises is raised here."""
    import threading

    outcome: list[Outcome | BaseException] = []

    def run() -> None:
        try:
            if not quiet:
                outcome.append(work())
                return
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes and the like: not ours to report
                outcome.append(work())
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            outcome.append(error)

    limit, stack = sys.getrecursionlimit(), threading.stack_size()
    sys.setrecursionlimit(recursion_limit)
    threading.stack_size(stack_bytes)
    try:
        worker = threading.Thread(target=run, name="enslint-python-parser")
        worker.start()
        worker.join()
    finally:
        threading.stack_size(stack)
        sys.setrecursionlimit(limit)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def python_check(source: str) -> None:
    """Raise what `python file.py` raises on `source` before running it (SyntaxError,
    RecursionError, ValueError, MemoryError), wherever this is called from. Linear up
    to PIECE_BYTES; past about 500 KB Python's compiler is not (5 MB: 26 s)."""
    _in_fresh_thread(lambda: compile(source, "<file>", "exec", dont_inherit=True), _VERDICT_RECURSION_LIMIT)


def compiled_by_python(path: str, data: bytes) -> bool:
    """Whether this Python has compiled the file at `path`, holding `data`, already: its
    bytecode cache (`__pycache__/NAME.cpython-311.pyc`, where imports and pip write it)
    has this interpreter's magic number and records this source, by hash or, as Python
    itself trusts, by modification time and size (and the pyc was written in a later
    second than the source's last change). Python compiled it without error, so its
    verdict is known without compiling again: on the torch package, half of the first
    phase of a cold check. `python file.py` and an import compile alike; a pyc written by
    a process that had raised its recursion limit could stand for a file nested past the
    default one, which libcst's own limits then judge."""
    try:
        cached = importlib.util.cache_from_source(path)
        with open(cached, "rb") as stream:
            header = stream.read(16)
            written = os.fstat(stream.fileno()).st_mtime
        status = os.stat(path)
    except (OSError, ValueError, NotImplementedError):
        return False
    if len(header) < 16 or header[:4] != importlib.util.MAGIC_NUMBER:
        return False
    flags = int.from_bytes(header[4:8], "little")
    if flags & 0b1:  # hash-based (PEP 552)
        return header[8:16] == importlib.util.source_hash(data)
    mtime, size = int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little")
    recorded = (
        size == len(data) & 0xFFFFFFFF == status.st_size & 0xFFFFFFFF and mtime == int(status.st_mtime) & 0xFFFFFFFF
    )
    # A save of the same size within the second the pyc was written would match it too:
    # trusted only when the pyc was written in a later second than the source's last change.
    return recorded and int(written) > int(status.st_mtime)


def target_check(source: str, target: tuple[int, int] | None) -> None:
    """`python_check` for a project whose code targets Python `target`: where that is
    newer than this interpreter, what this Python rejects is judged by libcst's parser
    instead, which reads the newer grammar (PEP 695's `type` and generics, PEP 701's
    f-strings); its error is raised as a SyntaxError."""
    try:
        python_check(source)
    except SyntaxError:
        if target is None or target <= sys.version_info[:2]:
            raise
        import libcst as cst

        try:
            analysed_deep(lambda: cst.parse_module(as_libcst_reads(source)[0]))
        except cst.ParserSyntaxError as error:
            where = ("<file>", error.raw_line, error.raw_column + 1, "")
            message = re.sub(r"^parser error: error at \d+:\d+: ", "", error.message.strip().splitlines()[0])
            raise SyntaxError(message, where) from None
        except RecursionError:
            raise SyntaxError("too deeply nested for libcst's parser") from None


def python_parse(source: str) -> ast.Module:
    """Python's tree of `source` (its parse errors raised, not its warnings)."""
    return _in_fresh_thread(lambda: ast.parse(source), _TREE_RECURSION_LIMIT)


def as_libcst_reads(source: str) -> tuple[str, list[int]]:
    """The text libcst is given for `source`, and the offsets of `source` it leaves out.

    libcst's tokenizer stumbles where Python's does not: on a form feed in indentation
    (Python restarts the column count after it), and on a line holding only a backslash
    after an indented block (Python joins it to the next line). The form-fed
    indentation is left out, and every position is put back where the file has it; the
    backslash becomes a space (a blank line, as Python reads it), in place."""
    text, dropped = _without_form_feeds(source)
    return _without_backslash_lines(text), dropped


def python_tokens(source: str) -> list[tokenize.TokenInfo] | None:
    """Python's tokens of `source`, None if its tokenizer cannot read it."""
    import io

    try:
        return list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None


def _string_lines(source: str) -> set[int] | None:
    """The lines that continue a string (their text is data), None if Python's tokenizer
    cannot read `source`."""
    tokens = python_tokens(source)
    if tokens is None:
        return None
    inside: set[int] = set()
    for token in tokens:
        if token.type == tokenize.STRING and token.end[0] > token.start[0]:
            inside.update(range(token.start[0] + 1, token.end[0] + 1))
    return inside


_BACKSLASH_LINE = re.compile(r"^([ \t]*)\\(?=\r?\n)", re.MULTILINE)


def _without_backslash_lines(source: str) -> str:
    """`source` with each line that holds only a backslash (outside strings) made blank,
    where the next line has the same indentation: Python reads the two lines as the
    next one alone, whose indentation is then the backslash line's."""
    if "\\" not in source:
        return source
    found = list(_BACKSLASH_LINE.finditer(source))
    if not found:
        return source
    inside = _string_lines(source)
    if inside is None:
        return source
    starts = line_starts(source)
    text = list(source)
    for match in found:
        number = bisect_right(starts, match.start())
        if number in inside or number >= len(starts):
            continue
        following = source[starts[number] : starts[number + 1] if number + 1 < len(starts) else len(source)]
        if following[: len(following) - len(following.lstrip(" \t"))] == match.group(1):
            text[match.end() - 1] = " "
    return "".join(text)


_FORM_FED_INDENT = re.compile(r"[ \t\f]*\f")


def _without_form_feeds(source: str) -> tuple[str, list[int]]:
    """`source` less the indentation up to the last form feed on each line (outside
    strings), and the offsets of what was left out: Python counts indentation from after
    the form feed. The same text and nothing left out when there is no such line."""
    if "\f" not in source:
        return source, []
    inside_strings = _string_lines(source)
    if inside_strings is None:
        return source, []
    kept: list[str] = []
    dropped: list[int] = []
    starts = line_starts(source)
    for number, start in enumerate(starts, 1):
        end = starts[number] if number < len(starts) else len(source)
        line = source[start:end]
        found = _FORM_FED_INDENT.match(line) if number not in inside_strings else None
        if found:
            dropped.extend(range(start, start + found.end()))
            line = line[found.end() :]
        kept.append(line)
    return "".join(kept), dropped
