"""`enslint verify`: import flagged modules, build the original and the rewrite that
`--fix --unsafe-fixes` would write, and prove them equivalent and time them with torch.

Everything here imports torch and runs the user's code; `enslint check` never imports
this package. May import: everything below the command line: enslint.engine, enslint.runner,
enslint.checking, enslint.rewrites, enslint.analysis, enslint.discovery, enslint.config,
enslint.measurements, enslint.findings, enslint.workers.
"""
