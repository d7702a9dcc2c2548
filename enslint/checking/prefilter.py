"""The prefilter: which files could hold a finding at all, told from their bytes
before anything is parsed, then, for the files whose bytes name a collection, from
Python's own tree (ten times faster than libcst's). It must never lose a file
(tests/test_prefilter.py)."""

from __future__ import annotations

from enslint.analysis.kinds import MODULE_ROOT_MARKERS, mentions_export, names_a_collection, names_a_plain_list
from enslint.analysis.registrations import builds_collections, builds_plain_lists


def could_match(data: bytes, names: tuple[str, ...] = (), tree: bool = True) -> bool:
    """Cheap, lossless test: can any rule fire on this file at all?

    The analysis finds collections spelt `ModuleList` or `ModuleDict`, or registered
    with `add_module` or `setattr(self, f"...")` (kinds.names_a_collection), in files
    that mention torch or lightning;
    and every pattern is a loop or a comprehension. A collection built in another file
    reaches this one only through a name that file defines (`names`, from the project
    index). A file that has none of these cannot produce a finding, so it is not parsed
    by libcst. Nor is a file that names a collection only where the analysis does not
    read one (`builds_collections`): in a docstring, or as `add_module` called once. A
    plain list on `self` filled with what calls build, whose elements a loop calls, may
    hold modules too (`names_a_plain_list`, `builds_plain_lists`). `tree=False`: the bytes
    tests alone, which never parse (what passes them may still fail on the tree).
    """
    if b"for" not in data:
        return False
    if any(marker in data for marker in MODULE_ROOT_MARKERS) and (
        (names_a_collection(data) and (not tree or builds_collections(data)))
        or (names_a_plain_list(data) and (not tree or builds_plain_lists(data)))
    ):
        return True
    return bool(names) and mentions_export(data, names)


def piece_could_match(data: bytes, names: tuple[str, ...]) -> bool:
    """Whether the statements a piece reports on could hold a finding (a loop or a
    comprehension: `for`) or an export (a collection another file may loop over). The
    file passed `_could_match`; its collections may sit in the piece's context."""
    return b"for" in data or names_a_collection(data) or (bool(names) and mentions_export(data, names))
