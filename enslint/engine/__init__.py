"""The fix engine: `apply` applies fixes (edits with a safety level) to a text, detecting
overlaps; `transaction` turns that into one atomic, re-parsed write per file; `fixing`
runs `--fix` and `--diff` over many files.

May import: enslint.checking (to re-check what it fixed), enslint.runner (its workers),
enslint.parsing and enslint.analysis (to re-parse the fixed text), enslint.rewrites (the
helper module's text), enslint.target_version (the Python the fixed text must parse
for), enslint.findings, enslint.source. Never the command line or verify.
"""
