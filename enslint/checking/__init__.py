"""Checking files one at a time: from a file's bytes to its findings.

The pipeline, one module per step: `jobs` (what the checker is given and returns),
`prefilter` (could the file hold a finding at all), `verdict` (Python's and libcst's
say on the syntax: ENS000), `analyse` (libcst, the model, the rules), `placement` (fixes
as offsets), `big_files` (a big file in pieces) and `file` (the order of these steps,
and the result cache).

May import: enslint.analysis, enslint.rules, enslint.rewrites (which names a fix
relies on), enslint.findings, enslint.source, enslint.target_version, enslint.parsing, enslint.cache,
enslint.workers. Never the engine, the runner or the
command line, which build on it.
"""

from enslint.checking.file import (
    analysed_outcome,
    check_bytes,
    check_bytes_outcome,
    check_file,
    check_file_outcome,
    prefiltered_outcome,
)
from enslint.checking.jobs import FileJob, FileOutcome, crashed_outcome

__all__ = [
    "FileJob",
    "FileOutcome",
    "analysed_outcome",
    "check_bytes",
    "check_bytes_outcome",
    "check_file",
    "check_file_outcome",
    "crashed_outcome",
    "prefiltered_outcome",
]
