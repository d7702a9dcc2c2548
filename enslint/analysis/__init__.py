"""The one model of a file that every rule reads: its imports, its module classes, their
member collections (and whether the members are identical), the loops over them and
how their results are combined. Built once per file (`model.build_model`); the rules
are queries over it and never walk the tree.

May import: libcst and enslint.source (to read other files of the project). Never the
rules, the rewrites or anything above them.
Modules, bottom up: kinds, registrations, syntax, positions, imports, context, members, loops, model,
pieces, project.
"""
