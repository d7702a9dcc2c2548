"""Ensembles spread over files: the fixtures under fixtures/projects are checked as a
whole, one file at a time (pre-commit's case), with and without the prefilter, and
through the cache while other files change."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import FIXTURES, expected_findings

from enslint.analysis import project as project_module
from enslint.checking import file as checking_file
from enslint.config import Config
from enslint.runner import make_jobs, run

PROJECTS = sorted(p for p in (FIXTURES / "projects").iterdir() if p.is_dir())


@pytest.fixture(autouse=True)
def fresh_indexes():
    """Each test builds its own project indexes (they live per process)."""
    project_module._INDEXES.clear()
    yield
    project_module._INDEXES.clear()


def python_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def findings(
    files: list[Path], cwd: Path, use_cache: bool = False, root: Path | None = None
) -> list[tuple[str, int, str]]:
    config = Config(root=root or cwd)
    jobs = make_jobs(files, config, cwd, use_cache=use_cache)
    return sorted((Path(d.filename).name, d.row, d.code) for d in run(jobs, workers=1))


def expected(files: list[Path], profiled: bool = False) -> list[tuple[str, int, str]]:
    return sorted(
        (path.name, line, code) for path in files for line, code in expected_findings(path.read_text(), profiled)
    )


def test_there_are_project_fixtures():
    """Each says what check must find: by itself, or with a profiled run's proof
    (tests/test_profile.py runs those)."""
    assert len(PROJECTS) >= 2
    assert all(expected(python_files(p)) or expected(python_files(p), profiled=True) for p in PROJECTS)


@pytest.mark.parametrize("folder", PROJECTS, ids=lambda p: p.name)
def test_project_as_a_whole(folder, tmp_path):
    files = python_files(folder)
    assert findings(files, tmp_path) == expected(files)


@pytest.mark.parametrize("folder", PROJECTS, ids=lambda p: p.name)
def test_project_one_file_at_a_time(folder, tmp_path):
    """Pre-commit passes the changed files only: the others are read for the index."""
    for path in python_files(folder):
        assert findings([path], tmp_path) == expected([path]), path.name


@pytest.mark.parametrize("folder", PROJECTS, ids=lambda p: p.name)
def test_project_prefilter_is_lossless(folder, tmp_path, monkeypatch):
    files = python_files(folder)
    with_filter = findings(files, tmp_path)
    project_module._INDEXES.clear()
    monkeypatch.setattr(checking_file, "could_match", lambda data, names=(), tree=True: True)
    assert findings(files, tmp_path) == with_filter


@pytest.mark.parametrize("folder", PROJECTS, ids=lambda p: p.name)
def test_one_file_check_agrees_with_a_warm_index(folder, tmp_path):
    """With the cache on, a second one-file run answers from it and agrees."""
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    (copy / "pyproject.toml").touch()
    for path in python_files(copy):
        first = findings([path], copy, use_cache=True)
        project_module._INDEXES.clear()
        assert findings([path], copy, use_cache=True) == first == expected([path]), path.name
    assert any((copy / ".enslint_cache").glob("index-*.json"))


def test_cached_finding_follows_the_file_that_proves_it(tmp_path):
    """`ensemble.py` is flagged because `builders.py` builds its members alike: when
    builders.py changes to build them differently, the cached finding must go, though
    ensemble.py itself did not change."""
    copy = tmp_path / "rl_critics"
    shutil.copytree(FIXTURES / "projects" / "rl_critics", copy)
    (copy / "pyproject.toml").touch()
    package = copy / "rl_critics"
    ensemble = package / "ensemble.py"
    assert [f[2] for f in findings([ensemble], copy, use_cache=True)] == ["ENS001"]
    builders = package / "builders.py"
    builders.write_text(
        builders.read_text().replace(
            "q_funcs = [make_q(obs_dim, act_dim) for _ in range(n_critics)]",
            "q_funcs = [make_q(obs_dim, act_dim + i) for i in range(n_critics)]",
        )
    )
    project_module._INDEXES.clear()
    assert findings([ensemble], copy, use_cache=True) == []


def test_helper_changes_reach_a_file_that_does_not_name_a_container(tmp_path):
    """heads.py builds its heads with `clones` from utils.py and names no container: the
    index brings it back to the analysis; when `clones` stops returning a collection of
    copies, the finding goes."""
    copy = tmp_path / "transformer_heads"
    shutil.copytree(FIXTURES / "projects" / "transformer_heads", copy)
    heads = copy / "src" / "heads_pkg" / "heads.py"
    assert [f[2] for f in findings([heads], copy, use_cache=True)] == ["ENS001"]
    utils = copy / "src" / "heads_pkg" / "utils.py"
    utils.write_text(
        utils.read_text().replace(
            "[copy.deepcopy(module) for _ in range(n)]", "[copy.deepcopy(module) for _ in range(n)][:1]"
        )
    )
    project_module._INDEXES.clear()
    assert findings([heads], copy, use_cache=True) == []


INSTALLED_BASE = textwrap.dedent(
    """\
    import torch


    class Network(torch.nn.Module):
        pass
    """
)

USER_CODE = textwrap.dedent(
    """\
    import torch
    from fakelib.nets import Network
    from fakelib.heads import make_head


    class Critic(Network):
        def __init__(self, n: int):
            super().__init__()
            self.heads = []
            for i in range(n):
                head = make_head()
                setattr(self, f"head{i}", head)
                self.heads.append(head)

        def forward(self, x):
            return torch.stack([h(x) for h in self.heads])
    """
)


def test_base_class_from_an_installed_package(tmp_path, monkeypatch):
    """`Network` lives in a package on sys.path: read (never imported) to prove that
    `Critic` is an nn.Module, which is what proves its setattr-registered heads are modules
    (`make_head` is a compiled function nothing can read)."""
    site = tmp_path / "site"
    (site / "fakelib").mkdir(parents=True)
    (site / "fakelib" / "__init__.py").write_text("raise RuntimeError('never executed')\n")
    (site / "fakelib" / "nets.py").write_text(INSTALLED_BASE)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").touch()
    model = project / "model.py"
    model.write_text(USER_CODE)
    assert findings([model], project) == []  # the base cannot be read: not proven
    project_module._INDEXES.clear()
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    assert findings([model], project) == [("model.py", 16, "ENS001")]


GRANDPARENT = {
    "utils.py": "import copy\nfrom torch import nn\n\n\ndef clones(module, n):\n    return nn.ModuleList([copy.deepcopy(module) for _ in range(n)])\n",
    "bank.py": "from torch import nn\n\nfrom .utils import clones\n\n\nclass Bank(nn.Module):\n    def __init__(self, d, n):\n        super().__init__()\n        self.blocks = clones(nn.Linear(d, d), n)\n",
    "middle.py": "from .bank import Bank\n\n\nclass Middle(Bank):\n    def describe(self):\n        return 'blocks'\n",
    "probe.py": "import torch\n\nfrom .middle import Middle\n\n\nclass Probe(Middle):\n    def forward(self, x):\n        return torch.stack([b(x) for b in self.blocks])\n",
}


def grandparent_project(tmp_path: Path) -> Path:
    root = tmp_path / "deep"
    (root / "pkg").mkdir(parents=True)
    (root / "pyproject.toml").touch()
    (root / "pkg" / "__init__.py").touch()
    for name, text in GRANDPARENT.items():
        (root / "pkg" / name).write_text(text)
    return root


def test_collection_of_a_grandparent_through_a_class_that_does_not_loop(tmp_path):
    root = grandparent_project(tmp_path)
    probe = root / "pkg" / "probe.py"
    assert findings([probe], root) == [("probe.py", 8, "ENS001")]
    project_module._INDEXES.clear()
    assert findings(python_files(root), root) == [("probe.py", 8, "ENS001")]


def test_cached_finding_follows_every_file_behind_it(tmp_path):
    """probe.py's finding rests on middle.py, bank.py and utils.py: a change to the
    farthest of them reaches the cached result."""
    root = grandparent_project(tmp_path)
    probe = root / "pkg" / "probe.py"
    assert findings([probe], root, use_cache=True) == [("probe.py", 8, "ENS001")]
    project_module._INDEXES.clear()
    assert findings([probe], root, use_cache=True) == [("probe.py", 8, "ENS001")]  # from the cache
    utils = root / "pkg" / "utils.py"
    utils.write_text(utils.read_text().replace("for _ in range(n)]", "for _ in range(n)][:1]"))
    project_module._INDEXES.clear()
    assert findings([probe], root, use_cache=True) == []


def messages(files: list[Path], cwd: Path) -> list[str]:
    jobs = make_jobs(files, Config(root=cwd), cwd, use_cache=True)
    return [d.details for d in run(jobs, workers=1)]


def test_cached_message_follows_a_file_read_for_another_file(tmp_path):
    """The same names, a different count in utils.py: the cached message of probe.py,
    whose analysis reached utils.py only through the contexts of middle.py and bank.py
    (built earlier in the run, for the index), must change."""
    root = grandparent_project(tmp_path)
    probe = root / "pkg" / "probe.py"
    assert ": n identical" in messages([probe], root)[0]
    utils = root / "pkg" / "utils.py"
    utils.write_text(utils.read_text().replace("range(n)", "range(n + 0)"))
    project_module._INDEXES.clear()
    assert ": n + 0 identical" in messages([probe], root)[0]


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "probe-alone"])
def test_collection_of_a_grandparent_through_a_class_that_builds_its_own(tmp_path, whole):
    """`Middle` builds a collection of its own (not an ensemble), so the first phase analyses its file,
    and `Bank`, in another file, is left unread then: its collection reaches `Middle`'s
    exports when the runner brings `middle.py` back with the project's names."""
    root = grandparent_project(tmp_path)
    (root / "pkg" / "middle.py").write_text(
        "from torch import nn\n\nfrom .bank import Bank\n\n\nclass Middle(Bank):\n    def add_norms(self, d):\n"
        "        self.extra = nn.ModuleList([nn.LayerNorm(d), nn.Linear(d, d)])\n"
        "        for layer in self.extra:\n            layer.reset_parameters()\n"
    )
    probe = root / "pkg" / "probe.py"
    assert findings(python_files(root) if whole else [probe], root) == [("probe.py", 8, "ENS001")]
