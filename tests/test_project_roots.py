"""The project index is bounded by what is checked (issue 17 point 7): without a
project marker, a package checked beside unrelated files indexes the package, not the
folder it sits in; checking that folder indexes all of it, as before. Files outside the
bound are read where a checked file imports from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from enslint.analysis.project import project_roots


def tree(root: Path, files: list[str]) -> list[Path]:
    paths = []
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        paths.append(path)
    return paths


def test_a_package_checked_alone_is_its_own_project(tmp_path):
    checked = tree(tmp_path, ["nn/__init__.py", "nn/modules/__init__.py", "nn/modules/linear.py"])
    tree(tmp_path, [f"unrelated/m{i}.py" for i in range(5)])
    roots = project_roots(checked)
    assert set(roots.values()) == {tmp_path / "nn"}


def test_the_folder_holding_what_is_checked_is_the_project(tmp_path):
    checked = tree(tmp_path, ["pkg_a/__init__.py", "pkg_a/heads.py", "pkg_b/__init__.py", "train.py"])
    roots = project_roots(checked)
    assert set(roots.values()) == {tmp_path}  # train.py and both packages: their common folder


def test_two_packages_checked_together_share_their_folder(tmp_path):
    checked = tree(tmp_path, ["pkg_a/__init__.py", "pkg_a/sub/__init__.py", "pkg_a/sub/x.py", "pkg_b/__init__.py"])
    assert set(project_roots(checked).values()) == {tmp_path}


def test_a_marker_still_decides(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    checked = tree(tmp_path, ["src/pkg/__init__.py", "src/pkg/heads.py"])
    assert set(project_roots(checked).values()) == {tmp_path}


def test_files_outside_any_package_are_their_folders_project(tmp_path):
    checked = tree(tmp_path, ["scripts/a.py", "scripts/b.py"])
    assert set(project_roots(checked).values()) == {tmp_path / "scripts"}


def test_a_subpackage_checked_alone_is_bounded_by_itself(tmp_path):
    """Without a marker, checking `pkg/models/` indexes pkg/models, not all of pkg."""
    checked = tree(tmp_path, ["pkg/__init__.py", "pkg/models/__init__.py", "pkg/models/ens.py"])[1:]
    tree(tmp_path, [f"pkg/other/m{i}.py" for i in range(5)])
    assert set(project_roots(checked).values()) == {tmp_path / "pkg" / "models"}


def test_an_installed_package_checked_in_part_is_bounded_by_what_is_checked(tmp_path):
    """torch/nn checked where torch is installed: the index holds torch/nn, not torch;
    a marker above the virtualenv is another project's and does not count."""
    (tmp_path / "pyproject.toml").touch()
    site = tmp_path / ".venv" / "lib" / "python3.11" / "site-packages"
    checked = tree(site, ["lib/__init__.py", "lib/nn/__init__.py", "lib/nn/layers.py"])[1:]
    tree(site, [f"lib/other/m{i}.py" for i in range(5)])
    assert set(project_roots(checked).values()) == {site / "lib" / "nn"}


# A package without a marker: `models/` uses a helper of `utils.py`, outside what is checked.
HELPER = """import copy
from torch import nn


def clones(module, n):
    return nn.ModuleList([copy.deepcopy(module) for _ in range(n)])
"""
ENSEMBLE = """import torch
from torch import nn

{import_line}


class Ensemble(nn.Module):
    def __init__(self, d, n):
        super().__init__()
        self.blocks = clones(nn.Linear(d, d), n)

    def forward(self, x):
        return torch.stack([b(x) for b in self.blocks])
"""


@pytest.mark.parametrize(
    "import_line", ["from ..utils import clones", "from pkg.utils import clones"], ids=["relative", "absolute"]
)
def test_a_helper_outside_the_bound_is_read_where_a_checked_file_imports_it(tmp_path, import_line):
    from enslint.analysis import project as project_module
    from enslint.config import Config
    from enslint.runner import make_jobs, run

    tree(tmp_path, ["pkg/__init__.py", "pkg/models/__init__.py"])
    (tmp_path / "pkg" / "utils.py").write_text(HELPER)
    ensemble = tmp_path / "pkg" / "models" / "ens.py"
    ensemble.write_text(ENSEMBLE.format(import_line=import_line))
    checked = [tmp_path / "pkg" / "models" / "__init__.py", ensemble]
    project_module._INDEXES.clear()
    try:
        jobs = make_jobs(checked, Config(root=tmp_path), tmp_path, use_cache=False)
        assert {job.project_root for job in jobs} == {str(tmp_path / "pkg" / "models")}
        found = [(Path(d.filename).name, d.row, d.code) for d in run(jobs, workers=1)]
    finally:
        project_module._INDEXES.clear()
    assert found == [("ens.py", 13, "ENS001")]
