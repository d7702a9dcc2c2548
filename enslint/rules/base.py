"""The rule protocol: a small class with its code, docs, and its own valid and invalid cases.

A rule reads the file model (`enslint.analysis`) and yields `Finding`s; it never walks the
tree itself. Its `VALID` and `INVALID` snippets run as tests (tests/test_rule_cases.py):
an invalid snippet marks each line the rule must flag with a trailing `# expect: CODE`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from enslint.analysis.runtime import RuntimeMembers
from enslint.findings import RuleFix

if TYPE_CHECKING:
    from enslint.analysis.model import FileModel


@dataclass(frozen=True)
class Settings:
    """What the configuration lets a rule vary."""

    min_members: int = 2
    # Collections a profiled run saw identical (`check --profile`): proof the source lacks.
    runtime: tuple[RuntimeMembers, ...] = ()


@dataclass
class Finding:
    code: str
    message: str
    node: Any  # the libcst node the finding points at
    # Alternatives, preferred first: `--fix` applies the first one its mode allows (the
    # fused rewrite with --unsafe-fixes, else the safe unbind fix, say).
    fixes: tuple[RuleFix, ...] = ()
    # The long explanation (shape arithmetic, the fused form, why no rewrite), shown with
    # --show-details and in JSON; `message` is one short line.
    details: str = ""
    # Why no fused rewrite, where the details say so (registry.Offer.note): for verify's
    # table and the JSON output, as data rather than read back from `details`.
    no_fix: str = ""


@dataclass(frozen=True)
class Valid:
    code: str


@dataclass(frozen=True)
class Invalid:
    code: str


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    # The rule page, in sections, ruff style. `enslint rule CODE` and rules/CODE.md
    # are both rendered from these strings (enslint/rules/pages.py).
    what_it_does: ClassVar[str]
    why_bad: ClassVar[str]
    example: ClassVar[str]
    use_instead: ClassVar[str]
    options: ClassVar[str]
    fix_safety: ClassVar[str]
    # The registry function that makes the rule's offer (rewrites/registry.py): the page
    # lists the reasons it can give for offering no fused rewrite.
    offered_by: ClassVar[str | None] = None
    VALID: ClassVar[list[Valid]] = []
    INVALID: ClassVar[list[Invalid]] = []

    def check(self, model: FileModel, settings: Settings) -> Iterator[Finding]:
        raise NotImplementedError
