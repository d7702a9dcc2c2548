"""Every fixture declares its findings with `# expect: CODE` markers; enslint must
report exactly those (code and line), no more, no fewer."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, expected_findings
from helpers import findings_for

POSITIVES = sorted((FIXTURES / "positive").glob("*.py"))
NEGATIVES = sorted((FIXTURES / "negative").glob("*.py"))


def test_fixture_counts():
    assert len(POSITIVES) >= 20
    assert len(NEGATIVES) >= 15
    for path in POSITIVES:
        assert expected_findings(path.read_text()), f"{path.name} is a positive without # expect markers"
    for path in NEGATIVES:
        assert not expected_findings(path.read_text()), f"{path.name} is a negative with # expect markers"


@pytest.mark.parametrize("path", POSITIVES + NEGATIVES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_findings(path):
    source = path.read_text()
    assert findings_for(source, name=str(path)) == expected_findings(source)


def test_every_rule_is_exercised():
    from enslint.rules import ALL_RULES

    codes = {code for path in POSITIVES for _, code in expected_findings(path.read_text())}
    assert codes == {rule.code for rule in ALL_RULES}


def test_every_finding_is_one_short_line_with_details_apart(monkeypatch):
    """A finding's message is one line of at most 120 characters (ruff's shape); the
    explanation (shapes, fused form, why no fix) is in `details` (--show-details, JSON)."""
    import json

    from click.testing import CliRunner
    from conftest import ROOT

    from enslint.cli import main

    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["check", "--no-cache", "--format", "json", "fixtures"])
    findings = json.loads(result.stdout)
    markers = sum(len(expected_findings(p.read_text())) for p in FIXTURES.rglob("*.py"))
    assert len(findings) == markers
    for d in findings:
        assert len(d["message"]) <= 120 and "\n" not in d["message"], d["message"]
        assert d["details"], d["message"]
        # With a fix the headline names it; without, it says where the reason is.
        assert ("fix: " in d["message"]) == bool(d["fix"]) or "inner loop" in d["message"], d["message"]
    shown = CliRunner().invoke(
        main, ["check", "--no-cache", "--show-details", "fixtures/positive/seed_independent_mlps.py"]
    )
    assert "    `IndependentEnsemble.batched_forward` loops over `self.ensemble`" in shown.stdout
    assert "    unsafe fix: Stack the ensemble_size members' weights" in shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines() if line.startswith("    ")) <= 100
