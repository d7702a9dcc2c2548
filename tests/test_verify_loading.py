"""How verify imports a user's file: from the roots check's project index resolves
imports from, with the module-level line named when the file's own code fails at import,
and `--definitions-only` for scripts that do their work when imported."""

from __future__ import annotations

import ast
import json
import os

import pytest
from click.testing import CliRunner

from enslint.cli import main
from enslint.verify.loading import definitions_only

if os.environ.get("CI"):
    import torch  # noqa: F401 - CI installs torch: never skip there
else:
    pytest.importorskip("torch")

MLP = """\
from torch import nn


class MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x)
"""

SCRIPT = """\
import sys

import torch
from torch import nn

from layers.mlp import MLP

N_MEMBERS = 4
DATA = torch.load("data/train.pt")  # read when it is imported


class Ensemble(nn.Module):
    def __init__(self, d=8, n=N_MEMBERS):
        super().__init__()
        self.members = nn.ModuleList([MLP(d) for _ in range(n)])

    def forward(self, x):
        return torch.stack([m(x) for m in self.members]).mean(0)


if __name__ == "__main__":
    print(Ensemble()(DATA))
"""


DATA_LINE = 'DATA = torch.load("data/train.pt")  # read when it is imported\n'


def verify(*args):
    result = CliRunner().invoke(main, ["verify", "--device", "cpu", "--min-time", "0.001", "--format", "json", *args])
    return result, json.loads(result.stdout) if result.stdout.startswith("[") else None


@pytest.fixture
def sub_project(project):
    """A project whose script in models/ imports `layers.mlp` from the project's root,
    which is on no path Python would search from models/."""
    (project / "pyproject.toml").write_text("[tool.enslint.verify.Ensemble]\ninputs = [[32, 8]]\n")
    (project / "layers").mkdir()
    (project / "layers" / "__init__.py").write_text("")
    (project / "layers" / "mlp.py").write_text(MLP)
    (project / "models").mkdir()
    return project


def test_imports_resolve_from_the_project_root(sub_project):
    (sub_project / "models" / "ensemble.py").write_text(
        SCRIPT.replace(DATA_LINE, "")
    )
    result, rows = verify("models/ensemble.py")
    assert rows[0]["status"] == "equivalent", rows[0]
    assert result.exit_code == 0


def test_a_script_that_works_at_import_names_the_failing_line(sub_project):
    (sub_project / "models" / "train.py").write_text(SCRIPT)
    result, rows = verify("models/train.py")
    status = rows[0]["status"]
    assert status.startswith("error: importing train.py runs module-level code, which failed at line 9 ")
    assert '(`DATA = torch.load("data/train.pt")' in status and "FileNotFoundError" in status
    assert status.endswith("--definitions-only loads only its imports, definitions and constant assignments")
    assert result.exit_code == 1


def test_definitions_only_builds_the_class_of_such_a_script(sub_project):
    (sub_project / "models" / "train.py").write_text(SCRIPT)
    result, rows = verify("models/train.py", "--definitions-only")
    assert rows[0]["status"] == "equivalent", rows[0]
    assert result.exit_code == 0


def test_a_failure_in_an_imported_project_module_names_that_file(sub_project):
    (sub_project / "layers" / "mlp.py").write_text(MLP + "\nWIDTH = int(open('width.txt').read())\n")
    (sub_project / "models" / "ensemble.py").write_text(
        SCRIPT.replace(DATA_LINE, "")
    )
    _, rows = verify("models/ensemble.py", "--definitions-only")
    status = rows[0]["status"]
    assert "failed at layers/mlp.py:12 (`WIDTH = int(open('width.txt').read())`)" in status
    assert "--definitions-only loads" not in status  # it filters the flagged file, not this one


def test_definitions_only_keeps_definitions_at_their_lines():
    source = (
        '"""Docstring."""\n'
        "import os\n"
        "try:\n"
        "    import yaml\n"
        "except ImportError:\n"
        "    yaml = None\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from torch import Tensor\n"
        "SIZES = (1, 2)\n"
        "args = parse(\n"
        "    os.environ)\n"
        "@decorate(args)\n"
        "def f():\n"
        "    return args\n"
        "class C:\n"
        "    pass\n"
        "main()\n"
        "if __name__ == '__main__':\n"
        "    main()\n"
    )
    kept = definitions_only(source)
    lines = kept.splitlines()
    assert len(lines) == len(source.splitlines())
    assert lines[1] == "import os" and lines[3] == "    import yaml" and lines[8] == "    from torch import Tensor"
    assert lines[9] == "SIZES = (1, 2)" and lines[15] == "class C:"
    # A call, a non-constant assignment, and the __main__ block are blanked; a decorated
    # definition is kept whole (its decorator reads a name the filter dropped: the
    # NameError then names that line, as Python would).
    assert lines[10] == lines[11] == lines[17] == lines[18] == lines[19] == ""
    assert lines[12] == "@decorate(args)"
    # An optional import keeps its fallback.
    assert lines[5] == "    yaml = None"
    ast.parse(kept)
