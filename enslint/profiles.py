"""The file `enslint profile` writes and `check` and `verify` read: `.enslint/profile.json`.

What a run of the program showed: the groups of identical sibling modules that one loop
called, with their share of the run's time, and, for each class that holds a group or
that `check` flags, how the program built it and what its first call received. Torch-free:
`check` reads it without importing torch.

A profile from another version of this format, or one that is not valid JSON, is an
error with one line that names the file; never a guess.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from enslint.analysis.runtime import RuntimeMembers

FOLDER = ".enslint"
FILE_NAME = "profile.json"
_FORMAT = 1


class ProfileError(Exception):
    """A profile that cannot be read: one line for the user."""


@dataclass(frozen=True)
class Group:
    """Identical siblings one loop called: where, what, and what they cost."""

    path: str  # absolute
    line: int  # the loop's line
    cls: str  # the class whose method holds the loop
    method: str
    collection: str  # the attribute that holds the members: "members", "heads"
    holder: str  # the class of the module that holds the collection
    members: int
    member_class: str
    input: str  # "same": one tensor for every member; "slices": slices of one tensor
    calls: int  # member calls in the whole run
    loops: int  # times the loop ran
    forward_s: float
    backward_s: float
    share: float  # of the run's time, hooks' own cost taken out
    shapes: list[list[int]] = field(default_factory=list)  # the first member call's inputs
    container: str = ""  # "nn.ModuleList", "nn.ModuleDict"; "" for a list or children by name
    # Between the first and last optimizer step, when the program stepped one: the share
    # of that time (start-up and the first step's warm-up left out) and calls per step.
    step_share: float | None = None
    calls_per_step: float | None = None
    # The share of a step the method holding the loop takes, all of it: what a rewrite of
    # the class (verify's speed-up) changes.
    class_step_share: float | None = None

    @property
    def seconds(self) -> float:
        return self.forward_s + self.backward_s


@dataclass(frozen=True)
class Rejected:
    """Siblings one loop called that are not an ensemble, with the reason."""

    path: str
    line: int
    collection: str
    holder: str
    reason: str


@dataclass(frozen=True)
class Capture:
    """How the run built one class and called it first, for verify."""

    path: str  # absolute: the file that defines the class
    cls: str
    init: dict | None = None  # the constructor's arguments, where JSON can hold them
    init_pickle: str | None = None  # else a pickle of them, beside the profile
    init_problem: str | None = None  # why neither could be kept
    inputs: list[list[int]] | None = None  # one shape per positional tensor argument
    dtypes: list[str] | None = None
    method: str = "forward"
    inputs_problem: str | None = None


@dataclass
class Profile:
    program: list[str]
    wall_s: float  # the program's run, hooks included
    hooks_s: float  # the hooks' own time
    exit_status: int
    steps: int = 0  # optimizer steps seen (of the first optimizer that stepped)
    step_s: float | None = None  # mean time of a step after the first, hooks' own taken out
    groups: list[Group] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    captures: list[Capture] = field(default_factory=list)
    file: Path | None = None  # where it was read from or written to

    def capture_for(self, path: str, cls: str) -> Capture | None:
        here = os.path.normcase(os.path.abspath(path))
        for capture in self.captures:
            if capture.cls == cls and os.path.normcase(capture.path) == here:
                return capture
        return None

    def runtime_members(self, shown: str) -> tuple[RuntimeMembers, ...]:
        return runtime_members(self.groups, shown)


def runtime_members(groups: list[Group], shown: str) -> tuple[RuntimeMembers, ...]:
    """The groups as proof for `check`, each saying it comes from `shown`."""
    return tuple(
        RuntimeMembers(g.path, g.cls, g.collection, g.members, g.member_class, shown, g.container) for g in groups
    )


def shown_path(path: Path | str) -> str:
    """A path as the messages show it: relative to the working directory."""
    try:
        return Path(os.path.relpath(path)).as_posix()
    except ValueError:  # another drive
        return str(path)


def default_path(root: Path) -> Path:
    return root / FOLDER / FILE_NAME


def write(profile: Profile, path: Path) -> None:
    """Whole or not at all: a temporary file beside it, then one rename."""
    data = {
        "format": _FORMAT,
        "program": profile.program,
        "wall_s": profile.wall_s,
        "hooks_s": profile.hooks_s,
        "exit_status": profile.exit_status,
        "steps": profile.steps,
        "step_s": profile.step_s,
        "groups": [asdict(g) for g in profile.groups],
        "rejected": [asdict(r) for r in profile.rejected],
        "captures": [asdict(c) for c in profile.captures],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    profile.file = path


def read(path: Path) -> Profile:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such profile (write one with `enslint profile SCRIPT`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProfileError(f"{path}: cannot read the profile: {error}") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ProfileError(f"{path}: not a profile of this enslint version (profile it again)")
    try:
        profile = Profile(
            program=list(data["program"]),
            wall_s=float(data["wall_s"]),
            hooks_s=float(data["hooks_s"]),
            exit_status=int(data["exit_status"]),
            steps=int(data.get("steps", 0)),
            step_s=data.get("step_s"),
            groups=[Group(**g) for g in data["groups"]],
            rejected=[Rejected(**r) for r in data["rejected"]],
            captures=[Capture(**c) for c in data["captures"]],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ProfileError(
            f"{path}: the profile is damaged ({type(error).__name__}: {error}); profile it again"
        ) from None
    profile.file = path
    return profile
