"""Render a rule's page. `enslint rule CODE` prints it and rules/CODE.md holds the same
text (tests/test_rule_pages.py fails when they drift; `enslint rule CODE > rules/CODE.md`
regenerates a page). The reasons a finding gives for offering no fused rewrite come from
the catalogue (rewrites/reasons.py), as the rule's offer reaches them."""

from __future__ import annotations

from enslint.rewrites.catalogue import reasons_said_by
from enslint.rules.base import Rule


def render_page(rule: type[Rule]) -> str:
    sections = [
        ("What it does", rule.what_it_does),
        ("Why is this bad?", rule.why_bad),
        ("Example", rule.example),
        ("Use instead", rule.use_instead),
        ("Options", rule.options),
        ("Fix safety", rule.fix_safety),
    ]
    parts = [f"# {rule.code} {rule.name}", "", rule.summary + "."]
    for title, body in sections:
        parts += ["", f"## {title}", "", body.strip()]
    if rule.offered_by is not None:
        parts += ["", "## When no fix is offered", "", _NO_FIX_INTRO, ""]
        parts += [f"- {reason.text}" for reason in reasons_said_by(rule.offered_by)]
    return "\n".join(parts) + "\n"


_NO_FIX_INTRO = (
    "A finding that offers no fused rewrite says why: in its details (`--show-details`),\n"
    "in the `no_fix` key of `--format json` and in `enslint verify`'s table. The reasons\n"
    "it can give, where `{name}` stands for what the code at hand names:"
)
