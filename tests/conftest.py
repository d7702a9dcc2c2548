from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
_EXPECT = re.compile(r"#\s*expect:\s*(?P<codes>ENS\d{3}(?:\s*,\s*ENS\d{3})*)")
# What `check` reports only with a profiled run's proof (`enslint profile`, then `check`).
_EXPECT_PROFILED = re.compile(r"#\s*expect with profile:\s*(?P<codes>ENS\d{3}(?:\s*,\s*ENS\d{3})*)")


def expected_findings(source: str, profiled: bool = False) -> list[tuple[int, str]]:
    """(line, code) for every `# expect: CODE[, CODE]` marker in `source`; with
    `profiled`, for every `# expect with profile: CODE` marker."""
    found = []
    for number, line in enumerate(source.splitlines(), start=1):
        match = (_EXPECT_PROFILED if profiled else _EXPECT).search(line)
        if match:
            found += [(number, code.strip()) for code in match.group("codes").split(",")]
    return sorted(found)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder made the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


@pytest.fixture
def verify_in_this_process(monkeypatch):
    """verify runs each class in a worker process, which a test's monkeypatch of
    verify's own functions does not reach (a spawned worker imports them afresh):
    ENSLINT_DEBUG keeps the work in this process, where the stand-in is."""
    monkeypatch.setenv("ENSLINT_DEBUG", "1")
