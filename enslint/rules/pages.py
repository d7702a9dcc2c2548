"""Render a rule's page. `enslint rule CODE` prints it and rules/CODE.md holds the same
text (tests/test_rule_pages.py fails when they drift; `enslint rule CODE > rules/CODE.md`
regenerates a page)."""

from __future__ import annotations

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
    return "\n".join(parts) + "\n"
