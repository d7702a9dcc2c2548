"""The prefilter that keeps files away from libcst must never lose a finding."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES

from enslint.checking import FileJob, check_bytes
from enslint.checking import file as checking_file
from enslint.checking.prefilter import could_match
from enslint.config import Config
from enslint.rules import ALL_RULES, Settings

SOURCES = sorted(FIXTURES.rglob("*.py"))
SNIPPETS = [case.code for rule in ALL_RULES for case in [*rule.VALID, *rule.INVALID]]


def diagnostics(data: bytes, monkeypatch, prefilter: bool):
    if not prefilter:
        monkeypatch.setattr(checking_file, "could_match", lambda data, names=(): True)
    job = FileJob("x.py", "x.py", Config(root=Path(".")).enabled_codes(), Settings())
    return check_bytes(job, data)


@pytest.mark.parametrize("data", [p.read_bytes() for p in SOURCES] + [s.encode() for s in SNIPPETS])
def test_prefilter_is_lossless(data, monkeypatch):
    with_filter = diagnostics(data, monkeypatch, prefilter=True)
    without = diagnostics(data, monkeypatch, prefilter=False)
    assert with_filter == without


def test_prefilter_skips_files_without_collections():
    assert not could_match(b"import torch\nfor x in range(3):\n    print(x)\n")
    assert not could_match(b"from torch import nn\nclass A(nn.Module):\n    pass\n")
    assert could_match(b"from torch import nn\nheads = nn.ModuleList(nn.Linear(1, 1) for _ in range(2))\n")
