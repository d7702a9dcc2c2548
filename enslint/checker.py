"""Check one file: read, decode, parse once, build the model, run the rules, apply noqa.

Everything that can go wrong with one file (unreadable, not UTF-8, a syntax error)
becomes an ENS000 diagnostic for that file, so one bad file never stops the others.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from enslint.analysis import build_model
from enslint.analysis.model import MODULE_ROOT_MARKERS
from enslint.rules import ALL_RULES, Settings

PARSE_ERROR = "ENS000"
PARSE_ERROR_NAME = "unreadable-file"

_FILE_NOQA = re.compile(rb"#\s*enslint:\s*noqa\b", re.IGNORECASE)
_LINE_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Za-z]+\d+(?:[\s,]+[A-Za-z]+\d+)*))?", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Diagnostic:
    path: str  # as shown to the user
    row: int  # 1-based
    column: int  # 1-based
    code: str
    message: str = field(compare=False)
    name: str = field(compare=False)
    end_row: int = field(compare=False, default=0)
    end_column: int = field(compare=False, default=0)
    filename: str = field(compare=False, default="")  # absolute


@dataclass(frozen=True)
class FileJob:
    path: str  # display path
    filename: str  # absolute path
    codes: frozenset[str]  # the rule codes enabled for this file
    settings: Settings


def _could_match(data: bytes) -> bool:
    """Cheap, lossless test: can any rule fire on this file at all?

    The analysis only looks at classes whose bases resolve, through the file's own
    imports, to torch or lightning; and every pattern involves a loop or a
    comprehension. A file that mentions neither cannot produce a finding.
    """
    return b"for" in data and any(marker in data for marker in MODULE_ROOT_MARKERS)


def _decode(data: bytes) -> str:
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding)


def _suppressed(line: str, code: str) -> bool:
    for match in _LINE_NOQA.finditer(line):
        codes = match.group("codes")
        if codes is None:
            return True
        if code.upper() in {c.upper() for c in re.split(r"[\s,]+", codes) if c}:
            return True
    return False


def _error(job: FileJob, message: str, row: int = 1, column: int = 1) -> list[Diagnostic]:
    if PARSE_ERROR not in job.codes:
        return []
    return [Diagnostic(job.path, row, column, PARSE_ERROR, message, PARSE_ERROR_NAME, row, column, job.filename)]


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else "invalid syntax"


def _python_syntax_error(job: FileJob, source: str) -> list[Diagnostic] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like: not ours to report
            ast.parse(source)
    except SyntaxError as error:
        return _error(job, f"syntax error: {_first_line(error.msg)}", error.lineno or 1, error.offset or 1)
    except (ValueError, RecursionError, MemoryError) as error:
        return _error(job, f"cannot parse: {_first_line(error)}")
    return None


def check_file(job: FileJob) -> list[Diagnostic]:
    try:
        data = Path(job.filename).read_bytes()
    except OSError as error:
        return _error(job, f"cannot read file: {error.strerror or error}")
    return check_bytes(job, data)


def check_bytes(job: FileJob, data: bytes) -> list[Diagnostic]:
    if _FILE_NOQA.search(data):
        return []
    try:
        source = _decode(data)
    except (UnicodeDecodeError, SyntaxError, LookupError) as error:
        return _error(job, f"cannot decode file: {error}")
    if not _could_match(data):
        # No rule can fire, but a broken file is still worth reporting; Python's own
        # parser answers that far faster than libcst.
        return _python_syntax_error(job, source) or []
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        found = _python_syntax_error(job, source)
        if found is not None:
            return found
        return _error(job, f"cannot analyse: libcst cannot parse this syntax: {_first_line(error.message)}", error.raw_line, error.raw_column + 1)
    except RecursionError:
        return _error(job, "file is nested too deeply to parse")
    rules = [rule() for rule in ALL_RULES if rule.code in job.codes]
    if not rules:
        return []
    try:
        model = build_model(module)
        findings = [(rule, finding) for rule in rules for finding in rule.check(model, job.settings)]
    except RecursionError:
        return _error(job, "file is nested too deeply to analyse")
    except Exception as error:  # noqa: BLE001 - one file's analysis bug must not stop the run
        if os.environ.get("ENSLINT_DEBUG"):
            raise
        return _error(job, f"internal error while analysing this file (please report it): {type(error).__name__}: {error}")
    if not findings:
        return []
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    lines = source.splitlines()
    diagnostics = []
    for rule, finding in findings:
        where = positions[finding.node]
        row, column = where.start.line, where.start.column + 1
        if row <= len(lines) and _suppressed(lines[row - 1], finding.code):
            continue
        diagnostics.append(
            Diagnostic(
                job.path, row, column, finding.code, finding.message, rule.name,
                where.end.line, where.end.column + 1, job.filename,
            )
        )
    return sorted(set(diagnostics))
