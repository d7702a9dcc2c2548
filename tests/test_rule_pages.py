"""rules/CODE.md and `enslint rule CODE` come from one text and must not drift."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import ROOT

from enslint.cli import main
from enslint.rules import ALL_RULES
from enslint.rules.pages import render_page


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_page_matches_rule(rule):
    page = ROOT / "rules" / f"{rule.code}.md"
    assert page.read_text() == render_page(rule), f"regenerate with: enslint rule {rule.code} > rules/{rule.code}.md"


def test_no_page_without_rule():
    pages = {p.stem for p in (ROOT / "rules").glob("ENS*.md")}
    assert pages == {rule.code for rule in ALL_RULES}


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_command_prints_page(rule):
    result = CliRunner().invoke(main, ["rule", rule.code.lower()])
    assert result.exit_code == 0
    assert result.output == render_page(rule)
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## Options"):
        assert heading in result.output


def test_unknown_rule_is_a_usage_error():
    result = CliRunner().invoke(main, ["rule", "ENS999"])
    assert result.exit_code == 2
    assert "unknown rule 'ENS999'" in result.output


def test_rules_lists_every_rule():
    result = CliRunner().invoke(main, ["rules"])
    assert result.exit_code == 0
    for rule in ALL_RULES:
        assert rule.code in result.output and rule.name in result.output
