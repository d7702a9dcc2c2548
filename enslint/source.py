"""Reading a source file as Python reads it: its bytes (regular files of bounded size
only), its encoding (PEP 263 cookie, BOM, else UTF-8) and its `noqa` comments.

Imports nothing of enslint: the checker, the project index and the fixing engine all
read files through here.
"""

from __future__ import annotations

import os
import re
import stat
import tokenize
from pathlib import Path

FILE_NOQA = re.compile(rb"#\s*enslint:\s*noqa\b", re.IGNORECASE)
# The parser's line breaks. str.splitlines also breaks at form feed, \x0b, \x1c-\x1e,
# \x85, U+2028 and U+2029: every position after one of those would be on the wrong line.
LINE_END = re.compile(r"\r\n|\r|\n")
_LINE_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Za-z]+\d+(?:[\s,]+[A-Za-z]+\d+)*))?", re.IGNORECASE)


def detect_encoding(data: bytes) -> str:
    """The encoding Python would read the file with (PEP 263 cookie, BOM, else UTF-8).
    Lines end at \r too, as they do for Python: a cookie in a file with old-Mac line
    endings is on its first line, not lost in one long one."""
    lines = iter(re.findall(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", data[:4096]))
    encoding, _ = tokenize.detect_encoding(lambda: next(lines, b""))
    return encoding


def line_starts(source: str) -> list[int]:
    """The offset at which each line of `source` begins, as the parser counts lines."""
    return [0] + [match.end() for match in LINE_END.finditer(source)]


def decode(data: bytes) -> str:
    return data.decode(detect_encoding(data))


def suppressed(line: str, code: str) -> bool:
    for match in _LINE_NOQA.finditer(line):
        codes = match.group("codes")
        if codes is None:
            return True
        if code.upper() in {c.upper() for c in re.split(r"[\s,]+", codes) if c}:
            return True
    return False


# A bound on what is read: far above any source file, far below what would exhaust memory
# (a link to /dev/zero, a generated blob named .py).
MAX_FILE_BYTES = 32 * 1024 * 1024


def read_source(path: str | Path) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES; OSError otherwise, with a
    message for the user. A FIFO would block the run and a device never ends: neither
    is opened."""
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
