"""The verdict on a file's syntax is the Python its project targets (issue 17 point 8):
a project for Python 3.12 may use PEP 695's `type` aliases and generics, which an older
interpreter's compiler rejects and libcst reads; such files are analysed and fixed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from enslint.target_version import _declared, target_for

NEWER = sys.version_info[:2] < (3, 12)  # this interpreter rejects PEP 695
needs_older_python = pytest.mark.skipif(not NEWER, reason="this Python reads PEP 695 itself")

PEP_695_ENSEMBLE = """\
import torch
from torch import nn

type Shape = tuple[int, ...]


class Box[T]:
    def __init__(self, value: T) -> None:
        self.value = value


class Heads(nn.Module):
    def __init__(self, d: int, n: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(d, 1) for _ in range(n)])

    def forward(self, x):
        return torch.cat([head(x) for head in self.heads], dim=-1)  # expect: ENS001


def first[T](items: list[T]) -> T:
    return items[0]
"""


REQUIRES_312 = {"pyproject.toml": '[project]\nrequires-python = ">=3.12"\n'}


def project(root: Path, config: dict[str, str], files: dict[str, str]) -> Path:
    (root / ".git").mkdir(parents=True)
    for name, text in {**config, **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def check(root: Path, *args: str) -> tuple[int, list[dict]]:
    run = subprocess.run(
        [sys.executable, "-m", "enslint", "check", ".", "--format", "json", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode in (0, 1), run.stderr
    return run.returncode, json.loads(run.stdout)


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("ruff.toml", 'target-version = "py312"\n', (3, 12)),
        (".ruff.toml", 'target-version = "py313"\n', (3, 13)),
        ("pyproject.toml", '[tool.ruff]\ntarget-version = "py310"\n', (3, 10)),
        ("pyproject.toml", '[project]\nrequires-python = ">=3.12"\n', (3, 12)),
        ("pyproject.toml", '[project]\nrequires-python = ">=3.10, <4"\n', (3, 10)),
        ("pyproject.toml", '[project]\nrequires-python = "~=3.12"\n', (3, 12)),
        ("pyproject.toml", '[project]\nrequires-python = "==3.13.*"\n', (3, 13)),
        ("pyproject.toml", '[project]\nrequires-python = "<4"\n', None),
        ("pyproject.toml", '[tool.black]\ntarget-version = ["py313", "py312"]\n', (3, 12)),
        # ruff's own setting wins over requires-python, as ruff reads them
        ("pyproject.toml", '[project]\nrequires-python = ">=3.9"\n[tool.ruff]\ntarget-version = "py312"\n', (3, 12)),
        ("pyproject.toml", "[tool.ruff]\nline-length = 100\n", None),
        ("pyproject.toml", "not toml [", None),
    ],
)
def test_the_target_is_read_from_the_project_configuration(tmp_path, name, text, expected):
    (tmp_path / name).write_text(text)
    assert _declared(tmp_path) == expected


def test_the_nearest_configuration_that_says_it_wins_up_to_the_repository_root(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.12"\n')
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "pkg" / "sub").mkdir(parents=True)
    (repo / "pkg" / "other").mkdir()
    assert target_for(str(repo / "pkg" / "sub" / "m.py")) is None  # the root above .git is another project's
    (repo / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.13"\n')
    (repo / "pkg" / "pyproject.toml").write_text("[tool.ruff]\nline-length = 99\n")  # says nothing of versions
    assert target_for(str(repo / "pkg" / "other" / "m.py")) == (3, 13)  # (one answer per folder a run)


@needs_older_python
def test_newer_syntax_is_analysed_where_the_project_targets_that_python(tmp_path):
    root = project(tmp_path, REQUIRES_312, {"pkg/heads.py": PEP_695_ENSEMBLE})
    status, rows = check(root, "--no-cache")
    assert status == 1
    assert [(row["code"], row["location"]["row"]) for row in rows] == [("ENS001", 18)]


@needs_older_python
def test_without_a_target_this_pythons_verdict_stands(tmp_path):
    root = project(tmp_path, {}, {"pkg/heads.py": PEP_695_ENSEMBLE})
    _, rows = check(root, "--no-cache")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert [row["code"] for row in rows] == ["ENS000"]
    assert rows[0]["message"].startswith(f"syntax error for Python {python}")


@needs_older_python
def test_a_broken_file_of_a_newer_target_is_ens000_for_that_python(tmp_path):
    broken = "type Shape = tuple[int, ...]\n\ndef f(:\n    pass\n"
    root = project(tmp_path, {"ruff.toml": 'target-version = "py312"\n'}, {"broken.py": broken})
    _, rows = check(root, "--no-cache")
    assert [row["code"] for row in rows] == ["ENS000"]
    assert rows[0]["message"].startswith("syntax error for Python 3.12: ")


@needs_older_python
def test_fix_keeps_the_newer_syntax_and_writes_the_rewrite(tmp_path):
    root = project(tmp_path, REQUIRES_312, {"pkg/heads.py": PEP_695_ENSEMBLE})
    status, _ = check(root, "--no-cache", "--fix", "--unsafe-fixes")
    fixed = (root / "pkg" / "heads.py").read_text()
    assert status == 0
    assert "type Shape = tuple[int, ...]" in fixed and "class Box[T]:" in fixed and "def first[T]" in fixed
    assert "return self.heads(x)" in fixed


@needs_older_python
def test_the_cached_verdict_follows_a_changed_target(tmp_path):
    config = tmp_path / "pyproject.toml"
    root = project(tmp_path, REQUIRES_312, {"pkg/heads.py": PEP_695_ENSEMBLE})
    assert [row["code"] for row in check(root)[1]] == ["ENS001"]
    config.write_text('[project]\nrequires-python = ">=3.11"\n')
    assert [row["code"] for row in check(root)[1]] == ["ENS000"]
    config.write_text('[project]\nrequires-python = ">=3.12"\n')
    assert [row["code"] for row in check(root)[1]] == ["ENS001"]
