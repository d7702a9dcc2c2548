"""Members proven identical by a run of the program, not by its source.

`enslint profile` watches the program's modules as they are called; where it saw a loop
call the members of one collection, all of one structure (class, parameter and buffer
names and shapes), it records that collection. `check` hands those records to the
analysis, which then takes a collection its reading of the source could not prove (built
from a config, through a registry) as identical, saying where the proof came from. The
proof holds for the profiled run's configuration only, so the rewrites keep the members
as built and stack them at call time (never a form that rebuilds them from source).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeMembers:
    """One collection whose members a profiled run saw identical."""

    path: str  # absolute path of the file whose loop called them
    cls: str  # the class whose method holds the loop
    collection: str  # the attribute, as the loop names it: "members", "heads"
    members: int
    member_class: str  # the members' class, as the run saw it: "MLP"
    source: str  # the profile it comes from, as shown to the user
    container: str = ""  # "nn.ModuleList", "nn.ModuleDict", or "" (a list, registered children)


def for_file(groups: tuple[RuntimeMembers, ...], path: str | None) -> list[RuntimeMembers]:
    if not groups or path is None:
        return []
    here = os.path.normcase(os.path.abspath(path))
    return [g for g in groups if os.path.normcase(g.path) == here]
