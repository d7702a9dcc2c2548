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
