"""The project index is bounded by what is checked (issue 17 point 7): without a
project marker, a package checked beside unrelated files indexes the package, not the
folder it sits in; checking that folder indexes all of it, as before."""

from __future__ import annotations

from pathlib import Path

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
