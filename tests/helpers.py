from __future__ import annotations

from pathlib import Path

from enslint.checking import FileJob, check_bytes
from enslint.config import Config
from enslint.rules import Settings


def findings_for(source: str, *, min_members: int = 2, name: str = "example.py") -> list[tuple[int, str]]:
    """(line, code) of every diagnostic enslint reports for `source`."""
    codes = Config(root=Path(".")).enabled_codes()
    job = FileJob(name, name, codes, Settings(min_members=min_members))
    return sorted((d.row, d.code) for d in check_bytes(job, source.encode()))


def messages_for(source: str) -> dict[int, str]:
    """{line: "headline | details"} of every finding."""
    codes = Config(root=Path(".")).enabled_codes()
    job = FileJob("example.py", "example.py", codes, Settings())
    return {d.row: f"{d.message} | {d.details}" for d in check_bytes(job, source.encode())}


def messages_of(source: str, code: str) -> dict[int, str]:
    """{line: message} of the findings of one rule."""
    codes = Config(root=Path(".")).enabled_codes()
    job = FileJob("example.py", "example.py", codes, Settings())
    return {d.row: f"{d.message} | {d.details}" for d in check_bytes(job, source.encode()) if d.code == code}
