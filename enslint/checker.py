"""Check one file: read, decode, parse once, build the model, run the rules, apply noqa.

Everything that can go wrong with one file (unreadable, not UTF-8, a syntax error)
becomes an ENS000 diagnostic for that file, so one bad file never stops the others.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import tokenize
from bisect import bisect_right
from dataclasses import dataclass, field, replace
from pathlib import Path

from enslint.analysis.kinds import MODULE_ROOT_MARKERS, names_a_collection, uses_pattern
from enslint.analysis.positions import LINE_END, Positions, line_starts
from enslint.cache import CacheEntry, ResultCache, entry_key
from enslint.engine.edits import Edit, Fix
from enslint.parsing import analysed_deep, as_libcst_reads, python_check, python_parse, python_tokens
from enslint.rules import ALL_RULES, Settings

PARSE_ERROR = "ENS000"
_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
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
    fixes: tuple[Fix, ...] = field(compare=False, default=())  # preferred first
    details: str = field(compare=False, default="")  # the long explanation (--show-details)

    def fix_for(self, unsafe: bool) -> Fix | None:
        """The fix `--fix` applies in this mode: the first one it allows."""
        return next((f for f in self.fixes if f.applies(unsafe)), None)

    def fix_of_form(self, form: str) -> Fix | None:
        return next((f for f in self.fixes if f.form == form), None)


@dataclass(frozen=True)
class FileJob:
    path: str  # display path
    filename: str  # absolute path
    codes: frozenset[str]  # the rule codes enabled for this file
    settings: Settings
    cache_dir: str | None = None  # None: no result cache
    fingerprint: str = ""  # enslint's code version, part of every cache key
    project_root: str | None = None  # None: the file is read on its own
    # Names other files of the project build collections with (a helper such as
    # `clones`, a class that holds one): a file that mentions one is analysed too.
    names: tuple[str, ...] = ()


@dataclass
class FileOutcome:
    diagnostics: list[Diagnostic]
    exports: tuple[str, ...] = ()  # what this file lets others build collections with
    analysed: bool = False  # parsed with libcst (or answered from the cache)
    # Skipped by the prefilter, but it loops and belongs to a project: a collection
    # built in another file may still reach it (the runner asks the project index).
    # Or analysed, but files it depends on were left unread (`unread`) for want of the
    # project's names.
    deferred: bool = False
    unread: tuple[str, ...] = ()


def _could_match(data: bytes, names: tuple[str, ...] = ()) -> bool:
    """Cheap, lossless test: can any rule fire on this file at all?

    The analysis finds collections spelt `ModuleList` or `ModuleDict`, or registered
    with `add_module` or `setattr(self, f"...")` (kinds.names_a_collection), in files
    that mention torch or lightning;
    and every pattern is a loop or a comprehension. A collection built in another file
    reaches this one only through a name that file defines (`names`, from the project
    index). A file that has none of these cannot produce a finding, so it is not parsed
    by libcst.
    """
    if b"for" not in data:
        return False
    if any(marker in data for marker in MODULE_ROOT_MARKERS) and names_a_collection(data):
        return True
    return bool(names) and uses_pattern(names).search(data) is not None


def _piece_could_match(data: bytes, names: tuple[str, ...]) -> bool:
    """Whether the statements a piece reports on could hold a finding (a loop or a
    comprehension: `for`) or an export (a collection another file may loop over). The
    file passed `_could_match`; its collections may sit in the piece's context."""
    return b"for" in data or names_a_collection(data) or (bool(names) and uses_pattern(names).search(data) is not None)


def detect_encoding(data: bytes) -> str:
    """The encoding Python would read the file with (PEP 263 cookie, BOM, else UTF-8).
    Lines end at \r too, as they do for Python: a cookie in a file with old-Mac line
    endings is on its first line, not lost in one long one."""
    lines = iter(re.findall(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", data[:4096]))
    encoding, _ = tokenize.detect_encoding(lambda: next(lines, b""))
    return encoding


def _decode(data: bytes) -> str:
    return data.decode(detect_encoding(data))


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


def _python_error(job: FileJob, error: BaseException, first_line: int = 1) -> list[Diagnostic]:
    """ENS000 for what Python raised on the text that starts at the file's `first_line`."""
    if isinstance(error, SyntaxError):
        return _error(
            job,
            f"syntax error for Python {_PYTHON}: {_first_line(error.msg)}",
            (error.lineno or 1) + first_line - 1,
            error.offset or 1,
        )
    return _error(job, f"cannot parse: {_first_line(error)}", first_line)


_PYTHON_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


def _python_syntax_error(job: FileJob, source: str) -> list[Diagnostic] | None:
    """The file's ENS000 when Python rejects it, else None."""
    try:
        python_check(source)
    except _PYTHON_ERRORS as error:
        return _python_error(job, error)
    return None


def _python_tree(job: FileJob, source: str) -> ast.Module | list[Diagnostic]:
    """Python's tree of a big file, or its ENS000. The verdict is compile's, statement
    by statement (the whole file at once would take minutes)."""
    try:
        tree = python_parse(source)
    except _PYTHON_ERRORS as error:
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
            return _error(
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
        except _PYTHON_ERRORS as error:
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


def _past_libcst_limits(job: FileJob, tree: ast.Module | None, source: str) -> list[Diagnostic] | None:
    """The ENS000 of a file Python accepts but libcst's parser could not take; its tree
    (None: parsed here, where the text leaves a doubt). Each limit is first bounded by a
    count over the text, which rules it out for any ordinary file."""
    chains = len(_BOOLEAN_WORD.findall(source)) >= MAX_BOOLEAN_OPERANDS
    clauses = len(_FOR_WORD.findall(source)) > MAX_COMPREHENSION_CLAUSES
    if (chains or clauses) and tree is None:
        tree = python_parse(source)
    for node in ast.walk(tree) if chains or clauses else ():
        if isinstance(node, ast.BoolOp) and len(node.values) > MAX_BOOLEAN_OPERANDS:
            operator = "and" if isinstance(node.op, ast.And) else "or"
            return _error(
                job,
                f"cannot analyse: a chain of {len(node.values):,} `{operator}` operands is more than libcst's parser "
                f"survives (it crashes past about 7,000; enslint stops at {MAX_BOOLEAN_OPERANDS:,})",
                node.lineno,
                node.col_offset + 1,
            )
        if isinstance(node, _COMPREHENSIONS) and len(node.generators) > MAX_COMPREHENSION_CLAUSES:
            return _error(
                job,
                f"cannot analyse: a comprehension of {len(node.generators):,} `for` clauses is more than libcst's parser "
                f"takes ({MAX_COMPREHENSION_CLAUSES:,})",
                node.lineno,
                node.col_offset + 1,
            )
    if source.count('"') + source.count("'") > 2 * MAX_ADJACENT_STRINGS:
        run = _longest_string_run(source)
        if run is not None and run[0] > MAX_ADJACENT_STRINGS:
            return _error(
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


def check_file(job: FileJob) -> list[Diagnostic]:
    return check_file_outcome(job).diagnostics


# A bound on what is read: far above any source file, far below what would exhaust memory
# (a link to /dev/zero, a generated blob named .py).
MAX_FILE_BYTES = 32 * 1024 * 1024


def read_source(path: str | Path) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES; OSError otherwise, with a
    message for the user. A FIFO would block the run and a device never ends: neither
    is opened."""
    import stat

    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(f"not a regular file ({_kind(info.st_mode)})")
    if info.st_size > MAX_FILE_BYTES:
        raise OSError(
            f"file too large ({info.st_size // (1024 * 1024)} MiB; the limit is {MAX_FILE_BYTES // (1024 * 1024)} MiB)"
        )
    with open(path, "rb") as stream:
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise OSError(f"file too large (over {MAX_FILE_BYTES // (1024 * 1024)} MiB)")
    return data


def _kind(mode: int) -> str:
    import stat

    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a plain file"


def check_file_outcome(job: FileJob) -> FileOutcome:
    try:
        data = read_source(job.filename)
    except OSError as error:
        return FileOutcome(_error(job, f"cannot read file: {error.strerror or error}"))
    return check_bytes_outcome(job, data)


def crashed_outcome(job: FileJob, reason: str) -> FileOutcome:
    """The outcome of a file whose checker process died (a native crash, the kernel's
    out-of-memory killer): ENS000 for this file, the run goes on."""
    return FileOutcome(
        _error(job, f"internal error while checking this file: the checker process was {reason} (please report it)")
    )


def check_bytes(job: FileJob, data: bytes) -> list[Diagnostic]:
    return check_bytes_outcome(job, data).diagnostics


def check_bytes_outcome(job: FileJob, data: bytes) -> FileOutcome:
    if _FILE_NOQA.search(data):
        return FileOutcome([])
    try:
        source = _decode(data)
    except (UnicodeDecodeError, SyntaxError, LookupError) as error:
        return FileOutcome(_error(job, f"cannot decode file: {error}"))
    if not _could_match(data, job.names):
        # No rule can fire, but a broken file is still worth reporting; Python's own
        # parser answers that far faster than libcst.
        broken = _python_syntax_error(job, source)
        deferred = broken is None and job.project_root is not None and not job.names and b"for" in data
        return FileOutcome(broken or [], deferred=deferred)
    project = None
    if job.project_root is not None:
        from enslint.analysis.project import index_for

        project = index_for(job.project_root, job.cache_dir)
    cache = key = None
    if job.cache_dir is not None:
        cache = ResultCache(Path(job.cache_dir))
        key = entry_key(job.fingerprint, job.codes, job.settings, data, job.names)
        entry = cache.get(key)
        if entry is not None and (not entry.deps or (project is not None and project.still_valid(entry.deps))):
            try:
                diagnostics = [_from_row(job, row) for row in entry.rows]
            except (TypeError, ValueError, KeyError, IndexError):
                diagnostics = None  # an entry of the wrong shape is a miss
            if diagnostics is not None:
                return _outcome(diagnostics, entry.exports, entry.deps)
    diagnostics, exports, deps = _analyse(job, source, project)
    if cache is not None and key is not None:
        cache.put(key, CacheEntry([_to_row(d) for d in diagnostics], deps, exports))
    return _outcome(diagnostics, exports, deps)


def _outcome(diagnostics: list[Diagnostic], exports, deps: dict) -> FileOutcome:
    unread = tuple(key[len("unread:") :] for key in deps if key.startswith("unread:"))
    return FileOutcome(diagnostics, tuple(exports), analysed=True, deferred=bool(unread), unread=unread)


def _to_row(d: Diagnostic) -> list:
    return [
        d.row,
        d.column,
        d.code,
        d.message,
        d.name,
        d.end_row,
        d.end_column,
        [f.as_row() for f in d.fixes],
        d.details,
    ]


def _from_row(job: FileJob, row: list) -> Diagnostic:
    r, c, code, message, name, end_r, end_c, fixes, details = row
    return Diagnostic(
        job.path, r, c, code, message, name, end_r, end_c, job.filename, tuple(Fix.from_row(f) for f in fixes), details
    )


def _analyse(job: FileJob, source: str, project=None) -> tuple[list[Diagnostic], tuple[str, ...], dict]:
    """Parse with libcst, build the model, run the rules, place and filter findings.
    Also returns the file's exports and the other files the analysis read (with digests).
    A big file is analysed in pieces (analysis/pieces.py), side by side."""
    from enslint.analysis.pieces import PIECE_BYTES

    # Python's own parser first: what it rejects is ENS000 whatever libcst would say (a
    # truncated \u escape, a stray BOM, newer syntax), and code nested too deeply for it
    # (5,000 parentheses, a 50,000-term sum) never reaches libcst's native parser, which
    # can crash the whole process on it.
    if len(source) > PIECE_BYTES:
        pieces = _big_file_pieces(job, source)
    else:
        pieces = _python_syntax_error(job, source) or _past_libcst_limits(job, None, source)
    if isinstance(pieces, list) and pieces and isinstance(pieces[0], Diagnostic):
        return pieces, (), {}
    if project is not None:
        project.begin(job.filename, job.names)
    if pieces is None:
        result = analysed_deep(lambda: _analyse_text(job, source, project))
        if isinstance(result, list):
            return result, (), {}
        diagnostics, exports = result
    else:
        diagnostics, exports = [], []
        file_starts = line_starts(source)
        todo = [p for p in pieces if _piece_could_match(p.target_text.encode("utf-8", "surrogatepass"), job.names)]
        for piece, result in zip(todo, _analyse_pieces(job, todo, project)):
            if isinstance(result, list):  # libcst's limit in one piece: the file's answer
                return [_moved(d, piece, file_starts) for d in result], (), {}
            found, exported = result
            diagnostics += [_moved(d, piece, file_starts) for d in found]
            exports += [name for name in exported if name.split(":", 1)[-1] in piece.target_names]
        exports = list(dict.fromkeys(exports))
    deps = project.dependencies() if project is not None else {}
    if project is not None and project.unread and not job.names:
        # A parent or helper was left unread for want of the project's names: the runner
        # checks this file again if one of them holds a name. Until then, nothing is cached.
        for path in project.unread:
            deps[f"unread:{path}"] = None
    return sorted(set(diagnostics)), tuple(exports), deps


def _tree_and_pieces(job: FileJob, source: str):
    """The file's ENS000 (what Python rejects), its pieces, or None (analyse it whole)."""
    from enslint.analysis.pieces import split

    tree = _python_tree(job, source)
    if isinstance(tree, list):
        return tree
    return _past_libcst_limits(job, tree, source) or split(tree, source)


def _big_file_pieces(job: FileJob, source: str):
    """`_tree_and_pieces` of a big file, its chunks described side by side, each in a
    short-lived process (pieces.py): Python's tree of the whole file would take most of
    a GB, which a process keeps once freed. A chunk that does not parse on its own, or
    any doubt, and the file is parsed whole, once, for Python's own answer."""
    from enslint.analysis.pieces import chunks, join_chunks, pieces_of
    from enslint.workers import in_process, isolated_map

    parts = chunks(source)
    if len(parts) < 2:
        described: list = [None]  # one chunk: the whole file's parse
    elif in_process():
        described = [_chunk_segments(job, part) for part in parts]
    else:
        cores = min(os.cpu_count() or 1, len(parts))
        described = isolated_map(lambda part: _chunk_segments(job, part), parts, cores, lambda part, why: None)
    for found in described:
        if found is not None and found and isinstance(found[0], Diagnostic):
            return found  # past libcst's limits: the file's answer
    if any(found is None for found in described):
        if in_process():
            return _tree_and_pieces(job, source)
        (result,) = isolated_map(
            lambda text: _tree_and_pieces(job, text),
            [source],
            1,
            lambda text, why: crashed_outcome(job, why).diagnostics,
        )
        return result
    return pieces_of(join_chunks(described), source)


_FUTURE_IMPORT = re.compile(r"^from[ \t]+__future__[ \t]", re.MULTILINE)


def _chunk_segments(job: FileJob, part: tuple[int, str]):
    """A chunk's segments; its ENS000 when it is past libcst's limits; None when only a
    parse of the whole file can tell (the chunk does not parse on its own, or a future
    import that must open the file)."""
    from enslint.analysis.pieces import chunk_segments

    first_line, text = part
    if first_line > 1 and _FUTURE_IMPORT.search(text):
        return None
    numbered = "\n" * (first_line - 1) + text  # lines numbered as in the file
    try:
        python_check(numbered)
        tree = python_parse(numbered)
    except _PYTHON_ERRORS:
        return None
    return _past_libcst_limits(job, tree, text) or chunk_segments(tree, first_line, text)


def _analyse_pieces(job: FileJob, pieces: list, project) -> list:
    """Each piece's `_analyse_text` result, the pieces shared among processes (one per
    core) when there are several: a big file's pieces are independent. What a piece's
    process read of the project comes back with its result."""
    from enslint.workers import in_process, isolated_map

    cores = os.cpu_count() or 1
    if len(pieces) < 2 or cores < 2 or in_process():
        return [analysed_deep(lambda: _analyse_text(job, piece.source, project, piece)) for piece in pieces]

    def analyse(piece):
        if project is not None:
            project.begin(job.filename, job.names)
        result = analysed_deep(lambda: _analyse_text(job, piece.source, project, piece))
        return result, (project.dependencies(), set(project.unread)) if project is not None else None

    def died(piece, reason: str):
        return crashed_outcome(job, reason).diagnostics, None

    results = []
    for result, read in isolated_map(analyse, pieces, min(cores, len(pieces)), died):
        if read is not None and project is not None:
            project.absorb(*read)
        results.append(result)
    return results


def _analyse_text(
    job: FileJob, source: str, project=None, piece=None
) -> tuple[list[Diagnostic], list[str]] | list[Diagnostic]:
    """The findings and exports of one text (the file, or a piece of it, in the piece's
    own lines), or the ENS000 that stopped its analysis."""
    import libcst as cst

    text, dropped = as_libcst_reads(source)
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        # Python accepted the file: this is libcst's limit, not a syntax error.
        return _error(
            job,
            f"cannot analyse: libcst cannot parse this syntax: {_first_line(error.message)}",
            error.raw_line,
            error.raw_column + 1,
        )
    except RecursionError:
        return _error(job, "file is nested too deeply to parse")
    if dropped:
        try:
            reproduced = module.code == text
        except RecursionError:
            return _error(job, "file is nested too deeply to analyse")
        if not reproduced:
            return _error(job, "cannot analyse: libcst does not reproduce this file exactly")
    result = _findings(job, module, text, project, piece)
    if not dropped or isinstance(result, list):
        return result
    found, exports = result
    return [_restored(d, dropped, text, source) for d in found], exports


def _restored(d: Diagnostic, dropped: list[int], code: str, source: str) -> Diagnostic:
    """A diagnostic on `code` placed on `source`, which also has the characters at the
    `dropped` offsets: a start goes after dropped text at its place (a form feed stays
    before the code it preceded), an end before it."""
    code_starts, source_starts = line_starts(code), line_starts(source)

    def moved(offset: int, end: bool) -> int:
        shift = 0
        for position in dropped:
            if position < offset + shift or (not end and position == offset + shift):
                shift += 1
            else:
                break
        return offset + shift

    def column(row: int, col: int, end: bool) -> int:  # 1-based columns
        offset = moved(code_starts[row - 1] + col - 1, end)
        return offset - source_starts[row - 1] + 1

    fixes = []
    for fix in d.fixes:
        edits = []
        for edit in fix.edits:
            start = moved(edit.start, end=False)
            end = start if edit.end == edit.start else moved(edit.end, end=True)
            edits.append(_edit_at(edit, start, end, source_starts))
        fixes.append(replace(fix, edits=tuple(edits)))
    return replace(
        d, column=column(d.row, d.column, False), end_column=column(d.end_row, d.end_column, True), fixes=tuple(fixes)
    )


def _findings(
    job: FileJob, module, source: str, project=None, piece=None
) -> tuple[list[Diagnostic], list[str]] | list[Diagnostic]:
    """The findings and exports of a parsed text whose code is `source`."""
    from enslint.analysis.model import build_model
    from enslint.analysis.syntax import NodeIndex
    from enslint.rewrites.common import names_used_outside

    rules = [rule() for rule in ALL_RULES if rule.code in job.codes]
    NodeIndex.index_module(module)
    if piece is not None:
        names_used_outside(module, piece.outside_names)
    try:
        model = build_model(
            module,
            job.filename if project is not None else None,
            project,
            source,
            piece.file_line if piece is not None else None,
        )
        findings = [(rule, finding) for rule in rules for finding in rule.check(model, job.settings)]
        exports = list(model.exports()) if project is not None else []
    except RecursionError:
        return _error(job, "file is nested too deeply to analyse")
    except Exception as error:  # noqa: BLE001 - one file's analysis bug must not stop the run
        if os.environ.get("ENSLINT_DEBUG"):
            raise
        return _error(
            job, f"internal error while analysing this file (please report it): {type(error).__name__}: {error}"
        )
    if not findings:
        return [], exports
    try:
        positions = Positions(module, source)
    except RecursionError:
        return _error(job, "file is nested too deeply to analyse")
    place = _Offsets(source)
    lines = place.lines()  # the parser's lines: a form feed or U+2028 does not end one
    diagnostics = []
    for rule, finding in findings:
        where = positions[finding.node]
        row, column = where.start.line, where.start.column + 1
        if piece is not None and not piece.is_target_line(row):
            continue  # context: its own piece reports it
        if row <= len(lines) and _suppressed(lines[row - 1], finding.code):
            continue
        fixes = tuple(_placed(f, positions, place, lines) for f in finding.fixes)
        diagnostics.append(
            Diagnostic(
                job.path,
                row,
                column,
                finding.code,
                finding.message,
                rule.name,
                where.end.line,
                where.end.column + 1,
                job.filename,
                fixes,
                finding.details,
            )
        )
    return diagnostics, exports


def _edit_at(edit: Edit, start: int, end: int, starts: list[int]) -> Edit:
    """`edit` moved to offsets `start`..`end` of a text whose lines begin at `starts`."""
    row, end_row = bisect_right(starts, start), bisect_right(starts, end)
    return replace(
        edit,
        start=start,
        end=end,
        row=row,
        column=start - starts[row - 1] + 1,
        end_row=end_row,
        end_column=end - starts[end_row - 1] + 1,
    )


def _moved(d: Diagnostic, piece, file_starts: list[int]) -> Diagnostic:
    """A piece's diagnostic in the file's lines and offsets; a fix whose edits would
    reach over text the piece left out is dropped (the finding stays)."""
    fixes = []
    for fix in d.fixes:
        edits = []
        for edit in fix.edits:
            start, first = piece.file_offset(edit.start, file_starts)
            if edit.end == edit.start:
                end, last = start, first
            else:
                end, last = piece.file_offset(edit.end, file_starts, end=True)
            if edit.start == len(piece.source) and not piece.ends_file:
                break  # the end of the piece is not the end of the file
            if not piece.adjacent(first, last):
                break
            edits.append(_edit_at(edit, start, end, file_starts))
        else:
            fixes.append(replace(fix, edits=tuple(edits)))
    return replace(d, row=piece.file_line(d.row), end_row=piece.file_line(d.end_row), fixes=tuple(fixes))


def _placed(rule_fix, positions, place: _Offsets, lines: list[str]) -> Fix:
    """A rule's node-based fix as edits on character offsets.

    Lines after the first in a replacement get the replaced node's own indentation (the
    file's, tabs included); a node of None appends to the file; `before` inserts."""
    edits = []
    for node_edit in rule_fix.edits:
        if node_edit.node is None:
            end, row = len(place.source), len(place.starts) - 1
            edits.append(Edit(end, end, node_edit.content.replace("\n", place.newline), row, 1, row, 1))
            continue
        if isinstance(node_edit.node, tuple):  # a run of statements, first to last
            first, final = (positions[n] for n in node_edit.node)
            span = type(first)(first.start, final.end)
        else:
            span = positions[node_edit.node]
        indent = lines[span.start.line - 1][: span.start.column]
        if indent.strip():
            indent = " " * span.start.column  # the node does not start its line
        content = "\n".join(
            line if i == 0 or not line else indent + line for i, line in enumerate(node_edit.content.split("\n"))
        ).replace("\n", place.newline)
        if node_edit.delete:  # the statement's whole lines, their line break included
            start = place.offset(span.start.line, 0)
            end = place.starts[min(span.end.line, len(place.starts) - 1)]
            edits.append(Edit(start, end, "", span.start.line, 1, span.end.line + 1, 1))
            continue
        if node_edit.after:  # new lines, at the statement's indentation, after its end
            end = place.offset(span.end.line, span.end.column)
            content = place.newline + indent + content
            edits.append(
                Edit(end, end, content, span.end.line, span.end.column + 1, span.end.line, span.end.column + 1)
            )
            continue
        if not node_edit.before:
            content = _with_directives(content, node_edit.node, span, positions, place.newline)
        last = span.start if node_edit.before else span.end  # an insertion ends where it starts
        edits.append(
            Edit(
                place.offset(span.start.line, span.start.column),
                place.offset(last.line, last.column),
                content,
                span.start.line,
                span.start.column + 1,
                last.line,
                last.column + 1,
            )
        )
    # One copy of each text: every fix of a file inserts the same helper (a few KB), and a
    # file of thousands of findings held and sent that many copies.
    edits = [replace(e, content=_shared(e.content)) for e in edits]
    return Fix(
        rule_fix.applicability, _shared(rule_fix.message), tuple(sorted(edits, key=lambda e: e.start)), rule_fix.form
    )


_SHARED: dict[str, str] = {}


def _shared(text: str) -> str:
    if len(_SHARED) > 4096:
        _SHARED.clear()
    return _SHARED.setdefault(text, text)


# Comments addressed to tools (`# noqa: E501`, `# type: ignore`, `# pragma: no cover`):
# they still apply to the code that replaces what they sat on.
_DIRECTIVE = re.compile(r"#\s*(noqa\b|type:|pragma\b|pylint:|mypy:|pyright:|fmt:|isort:)", re.IGNORECASE)


def _with_directives(content: str, replaced, span, positions, newline: str) -> str:
    """`content` with the tool directives inside the replaced span kept, at the end of
    its first line of code (unless it has them already). A statement's trailing comment
    lies after its span and stays where it is."""
    import libcst as cst

    from enslint.analysis.syntax import walk

    def inside(comment) -> bool:
        where = positions.get(comment)
        return (
            where is not None
            and (span.start.line, span.start.column) <= (where.start.line, where.start.column)
            and (where.end.line, where.end.column) <= (span.end.line, span.end.column)
        )

    nodes = replaced if isinstance(replaced, tuple) else (replaced,)
    kept = [
        c.value
        for n in nodes
        for c in walk(n)
        if isinstance(c, cst.Comment) and _DIRECTIVE.match(c.value) and c.value not in content and inside(c)
    ]
    if not kept:
        return content
    lines = content.split(newline)
    first = next((i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")), None)
    if first is None or "#" in lines[first]:
        return content
    lines[first] += "  " + "  ".join(dict.fromkeys(kept))
    return newline.join(lines)


class _Offsets:
    """Line and column (libcst's: 1-based line, 0-based column) to a character offset."""

    def __init__(self, source: str) -> None:
        self.source = source
        # Lines end where the parser's do (LINE_END), not where str.splitlines breaks.
        self.starts = line_starts(source)
        if self.starts[-1] != len(source):
            self.starts.append(len(source))
        if self.starts[-1] != len(source):
            self.starts.append(len(source))
        first = LINE_END.search(source)
        self.newline = first.group() if first else "\n"

    def lines(self) -> list[str]:
        """The source's lines, without their endings, as the parser counts them."""
        return [LINE_END.sub("", self.source[a:b]) for a, b in zip(self.starts, self.starts[1:])]

    def offset(self, line: int, column: int) -> int:
        return self.starts[line - 1] + column
