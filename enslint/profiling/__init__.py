"""`enslint profile`: run the user's program under PyTorch's module hooks and find, in
that run, the loops over identical sibling modules and what they cost (recorder.py sees
the calls, groups.py judges them, capture.py keeps how each class was built and first
called, program.py runs the program, command.py ties them and writes the profile,
report.py prints it).

Everything here imports torch and runs the user's code; `enslint check` never imports
this package, and reads what it wrote through enslint.profiles. May import:
enslint.profiles, enslint.runner, enslint.config, enslint.measurements, enslint.findings,
enslint.cache.
"""
