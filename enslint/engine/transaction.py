"""`--fix` and `--diff`: apply fixes to files as one transaction per file.

For each file: check, apply the applicable fixes (apply.py), wrap what they wrote to
the project's line length (wrapping.py), check the result again and repeat while fixes
remain (a fix skipped for overlapping another is taken on a later pass). The new text
must parse, with libcst and with Python's own parser, before anything is written; it is
written to a temporary file beside the original and renamed over it, keeping the file's
encoding, line endings and permissions. A file that cannot
be decoded or parsed is never touched, nor is a `# noqa` site (its finding carries no fix).
"""

from __future__ import annotations

import difflib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from enslint.checking import FileJob, check_bytes, check_file
from enslint.engine.apply import apply_fixes
from enslint.engine.line_length import style_for
from enslint.engine.replacing import replace_bytes
from enslint.engine.wrapping import wrap_written
from enslint.findings import PARSE_ERROR, Diagnostic, Fix
from enslint.parsing import analysed_deep, as_libcst_reads, target_check
from enslint.source import detect_encoding, read_source
from enslint.target_version import target_for

MAX_PASSES = 10


@dataclass
class FixOutcome:
    job: FileJob
    before: str = ""
    after: str = ""
    fixed: int = 0
    skipped: int = 0  # overlapping fixes still left after the last pass
    remaining: list[Diagnostic] = field(default_factory=list)
    initial: list[Diagnostic] = field(default_factory=list)  # the findings before fixing
    error: str | None = None  # why the file was left unchanged
    # What the applied fixes import from helper modules: module path -> names.
    helpers: dict[str, set[str]] = field(default_factory=dict)

    def fixed_codes(self) -> dict[str, int]:
        """How many findings of each code the fixes removed."""
        if not self.changed:
            return {}
        counts = Counter(d.code for d in self.initial)
        counts.subtract(Counter(d.code for d in self.remaining))
        return {code: n for code, n in sorted(counts.items()) if n > 0}

    @property
    def changed(self) -> bool:
        return self.error is None and self.after != self.before

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=diff_label("a", self.job.path),
                tofile=diff_label("b", self.job.path),
            )
        )


def diff_label(side: str, path: str | None) -> str:
    """A diff header's file name as `git diff` writes it: `a/src/x.py` for a relative
    path, `a/tmp/x.py` for /tmp/x.py (no doubled slash); /dev/null for no file."""
    if path is None:
        return "/dev/null"
    return f"{side}/{Path(path).as_posix().lstrip('/')}"


def _parses(text: str, target: tuple[int, int] | None) -> str | None:
    """Why `text` does not parse, with Python's parser and with libcst as the checker
    reads it, or None. A big text is left to the check that follows each pass: it parses
    the text with both, in its own processes (Python's tree of a 5 MB file takes most
    of a GB, which this process would keep)."""
    import libcst as cst

    from enslint.analysis.pieces import PIECE_BYTES

    if len(text) > PIECE_BYTES:
        return None
    try:
        target_check(text, target)
        analysed_deep(lambda: cst.parse_module(as_libcst_reads(text)[0]))
    except (cst.ParserSyntaxError, SyntaxError, ValueError, RecursionError, MemoryError) as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return None


def _unparsed(diagnostics: list[Diagnostic]) -> str | None:
    """The ENS000 a check of the fixed text gave (it does not parse, or its check died)."""
    return next((d.message for d in diagnostics if d.code == PARSE_ERROR), None)


def fix_file(
    job: FileJob, unsafe: bool, choose: Callable[[Diagnostic], Fix | None] | None = None, data: bytes | None = None
) -> FixOutcome:
    """`choose` picks each finding's fix (or None to leave it), on every pass: verify
    uses it to write one candidate form for one class; by default `--fix`'s choice.
    `data`: the file's content when it does not come from disk (standard input)."""
    outcome = FixOutcome(job)
    if choose is None:
        choose = lambda d: d.fix_for(unsafe)  # noqa: E731
    if data is None:
        try:
            data = read_source(job.filename)
        except OSError:
            outcome.remaining = check_file(job)  # reports why it cannot be read
            return outcome
    diagnostics = initial = check_bytes(job, data)
    outcome.initial = initial
    try:
        encoding = detect_encoding(data)
        text = data.decode(encoding)
    except (UnicodeDecodeError, SyntaxError, LookupError):
        outcome.remaining = diagnostics
        return outcome
    outcome.before = outcome.after = text
    style = style_for(job.filename)  # the line length the project's formatter keeps to
    for _ in range(MAX_PASSES):
        applicable = [f for d in diagnostics if (f := choose(d)) is not None]
        if not applicable:
            break
        result = apply_fixes(text, applicable)
        fixed_text = wrap_written(result.text, result.written, style.width, style.black)
        problem = _parses(fixed_text, target_for(job.filename))
        if problem is None:
            checked = check_bytes(job, fixed_text.encode(encoding))
            problem = _unparsed(checked) if not _unparsed(diagnostics) else None
        if problem is not None:
            outcome.error = f"the fixes would not parse ({problem}); file left unchanged"
            outcome.after = outcome.before
            outcome.remaining = initial
            outcome.helpers = {}
            return outcome
        text = fixed_text
        outcome.fixed += result.applied
        for fix in result.taken:
            if fix.helpers is not None:
                outcome.helpers.setdefault(fix.helpers.module, set()).update(fix.helpers.names)
        diagnostics = checked
        if result.applied == 0:
            break
    outcome.after = text
    outcome.remaining = diagnostics
    # What is still fixable after the last pass (a fix an overlap held back, that the
    # fixes applied did not make moot).
    outcome.skipped = sum(choose(d) is not None for d in diagnostics)
    return outcome


class ChangedMeanwhile(OSError):
    """Another process changed the file after enslint read it: its bytes are kept."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} changed while enslint was fixing it; left as it is")


def refusal(path: Path) -> str | None:
    """Why the file at `path` (its real path) must not be replaced, or None."""
    import stat

    info = path.stat()
    if not info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK):
        return "read-only file: left as it is"
    if info.st_nlink > 1:
        return f"the file has {info.st_nlink} hard links, which replacing it would break: left as it is"
    return None


def preflight(outcome: FixOutcome) -> str | None:
    """Raise OSError if the file may not be written (read-only, hard links, changed since
    it was read); its encoding, or None when it already holds the fixed text."""
    path = Path(os.path.realpath(outcome.job.filename))
    refused = refusal(path)
    if refused:
        raise OSError(refused)
    data = read_source(path)
    encoding = detect_encoding(data)
    current = data.decode(encoding)
    if current == outcome.after:
        return None
    if current != outcome.before:
        raise ChangedMeanwhile(outcome.job.path)
    return encoding


def write_atomically(outcome: FixOutcome) -> bool:
    """Replace the file with the fixed text, or leave it exactly as it was; False when
    another run had already written the same text (this one wrote nothing).

    The new text goes to a temporary file beside the real file (through a symbolic link,
    which stays a link) and is renamed over it, with the file's mode and owner. A file
    that is read-only or has other hard links is refused (OSError, one line): a rename
    would write what its permissions forbid, or split it from its other names.

    Another process (an editor saving, a formatter) may change the file while enslint
    fixes it: replacing.py keeps that change, and ChangedMeanwhile names the file."""
    path = Path(os.path.realpath(outcome.job.filename))
    encoding = preflight(outcome)
    if encoding is None:
        return False  # another run (a second enslint on the same tree) wrote the same fix
    info = path.stat()
    fixed, expected = outcome.after.encode(encoding), outcome.before.encode(encoding)
    owner = (info.st_uid, info.st_gid)
    result = replace_bytes(path, fixed, expected, info.st_mode, owner, outcome.job.path)
    if result == "changed":
        raise ChangedMeanwhile(outcome.job.path)
    return result == "written"
