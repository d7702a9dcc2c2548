"""What a check produces: findings (`Diagnostic`) and their fixes, as data.

The bottom of the package: every layer (rules, rewrites, the checker, the engine, the
output formats) speaks these types, and this module imports nothing of enslint.

A rule attaches a `RuleFix` to a finding: replacements for libcst nodes, with a safety
level. The checker turns node replacements into `Edit`s on character offsets (it knows
the positions); the engine (enslint/engine) applies a file's `Fix`es to its text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# ENS000: a file enslint could not check (unreadable, undecodable, unparsable).
PARSE_ERROR = "ENS000"
PARSE_ERROR_NAME = "unreadable-file"


class Applicability(StrEnum):
    """How safe a fix is, as ruff says it: whether `--fix` applies it on its own."""

    SAFE = "safe"  # keeps state_dict keys and numerics: applied by --fix
    UNSAFE = "unsafe"  # changes the parameter layout: needs --fix --unsafe-fixes


class Form(StrEnum):
    """What a fix turns the loop into; a finding may offer several (verify times each)."""

    WIDE_LAYER = "wide layer"  # one nn.Linear for heads on one input
    STACKED = "stacked weights"  # (E, in, out) weights and baddbmm, layer by layer
    GROUPED = "grouped heads"  # the nest of groups of heads as one batched layer
    VMAP = "vmap"  # stack_module_state + torch.vmap over any identical members
    UNBIND = "unbind"  # iterate x.unbind(dim): the loop stays, the quadratic backward goes
    SHARED_CALL = "shared call"  # one call of a shared instance on all the slices
    CALL_TIME = "call-time vmap"  # members kept; their tensors stacked per call, run under vmap


@dataclass(frozen=True)
class NodeEdit:
    """Replace `node`'s text with `content`; `node` may be a (first, last) pair of
    statements to replace the run between them, or None to append to the file.

    Lines after the first in `content` are indented to the node's column, so a rule
    writes multi-line replacements without knowing where the node stands."""

    node: Any
    content: str
    before: bool = False  # insert `content` just before `node` instead of replacing it
    after: bool = False  # insert `content` as lines of its own after statement `node`
    delete: bool = False  # remove statement `node`'s lines altogether (`content` unused)


@dataclass(frozen=True)
class HelperNeed:
    """Definitions a fix's code imports from its package's helper module, which the
    engine writes beside the fixed file (rewrites/helper_module.py)."""

    module: str  # absolute path of the helper module
    names: tuple[str, ...]


@dataclass(frozen=True)
class RuleFix:
    """What a rule proposes, in terms of tree nodes."""

    applicability: Applicability
    message: str
    edits: tuple[NodeEdit, ...]
    form: Form
    helpers: HelperNeed | None = None


@dataclass(frozen=True)
class Edit:
    start: int  # character offsets into the source text
    end: int
    content: str
    row: int  # 1-based, for output
    column: int
    end_row: int
    end_column: int


@dataclass(frozen=True)
class Fix:
    applicability: Applicability
    message: str
    edits: tuple[Edit, ...]
    form: Form
    helpers: HelperNeed | None = None

    def applies(self, unsafe: bool) -> bool:
        """Whether --fix applies it (unsafe fixes only with --unsafe-fixes)."""
        return self.applicability == Applicability.SAFE or unsafe

    def as_json(self) -> dict:
        row: dict[str, Any] = {
            "applicability": str(self.applicability),
            "form": str(self.form),
            "message": self.message,
            "edits": [
                {
                    "content": e.content,
                    "location": {"row": e.row, "column": e.column},
                    "end_location": {"row": e.end_row, "column": e.end_column},
                }
                for e in self.edits
            ],
        }
        if self.helpers is not None:
            row["helpers"] = {"module": self.helpers.module, "names": list(self.helpers.names)}
        return row

    def as_row(self) -> list:
        return [
            str(self.applicability),
            self.message,
            [[e.start, e.end, e.content, e.row, e.column, e.end_row, e.end_column] for e in self.edits],
            str(self.form),
            None if self.helpers is None else [self.helpers.module, list(self.helpers.names)],
        ]

    @classmethod
    def from_row(cls, row: list) -> Fix:
        applicability, message, edits, form, helpers = row
        need = None if helpers is None else HelperNeed(helpers[0], tuple(helpers[1]))
        return cls(Applicability(applicability), message, tuple(Edit(*e) for e in edits), Form(form), need)


@dataclass(frozen=True, order=True)
class Diagnostic:
    path: str  # as shown to the user
    row: int  # 1-based
    column: int  # 1-based
    code: str
    message: str = field(compare=False)
    name: str = field(compare=False)
    end_row: int = field(compare=False, default=0)
    end_column: int = field(compare=False, default=0)
    filename: str = field(compare=False, default="")  # absolute
    fixes: tuple[Fix, ...] = field(compare=False, default=())  # preferred first
    details: str = field(compare=False, default="")  # the long explanation (--show-details)
    no_fix: str = field(compare=False, default="")  # why no fused rewrite, when the details say

    def fix_for(self, unsafe: bool) -> Fix | None:
        """The fix `--fix` applies in this mode: the first one it allows."""
        return next((f for f in self.fixes if f.applies(unsafe)), None)

    def fix_of_form(self, form: str) -> Fix | None:
        return next((f for f in self.fixes if f.form == form), None)
