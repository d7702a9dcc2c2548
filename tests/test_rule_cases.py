"""Each rule's own VALID and INVALID snippets, Fixit style."""

from __future__ import annotations

import pytest
from conftest import expected_findings
from helpers import findings_for

from enslint.rules import ALL_RULES

CASES = [
    pytest.param(rule, case.code, id=f"{rule.code}-{kind}-{i}")
    for rule in ALL_RULES
    for kind, cases in (("valid", rule.VALID), ("invalid", rule.INVALID))
    for i, case in enumerate(cases)
]


@pytest.mark.parametrize("rule, source", CASES)
def test_rule_case(rule, source):
    expected = expected_findings(source)
    found = [(line, code) for line, code in findings_for(source) if code == rule.code]
    assert found == [(line, code) for line, code in expected if code == rule.code]


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_has_cases_and_docs(rule):
    assert rule.VALID and rule.INVALID
    assert all(expected_findings(case.code) for case in rule.INVALID)
    for section in (rule.what_it_does, rule.why_bad, rule.example, rule.use_instead, rule.options, rule.fix_safety):
        assert section.strip()
    assert "{" not in rule.why_bad, "unfilled measurement placeholder in the rule page"
