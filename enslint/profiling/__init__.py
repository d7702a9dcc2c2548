"""`enslint profile`: run the user's program under PyTorch's module hooks and find, in
that run, the loops over identical sibling modules and what they cost: program.py runs
the program; recorder.py sees the calls (tree.py says which collection a module is in,
frames.py which frame is the program's, occurrences.py judges each run of a loop);
capture.py keeps how each class was built and first called; groups.py turns what was
seen into groups; command.py ties them and writes the profile; report.py prints it.

Everything here imports torch and runs the user's code; `enslint check` never imports
this package, and reads what it wrote through enslint.profiles. May import:
enslint.profiles, enslint.runner, enslint.config, enslint.measurements, enslint.findings,
enslint.cache.
"""
