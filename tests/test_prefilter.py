"""The prefilter that keeps files away from libcst must never lose a finding."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES

from enslint.checking import FileJob, check_bytes
from enslint.checking import file as checking_file
from enslint.analysis.registrations import builds_collections
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


# The second stage, on Python's tree: the words in code, where the analysis reads them.
BUILDS = {
    "a container called": "import torch.nn as nn\nheads = nn.ModuleList()\n",
    "a container imported under another name": "from torch.nn import ModuleList as Heads\n",
    "a container as a base": "import torch\nclass Bank(torch.nn.ModuleDict):\n    pass\n",
    "add_module in a loop": (
        "class A:\n    def __init__(self, n):\n        for i in range(n):\n"
        "            self.add_module(str(i), make())\n"
    ),
    "add_module in a method a loop calls": (
        "class A:\n    def __init__(self, n):\n        for i in range(n):\n            self.add(i)\n"
        "    def add(self, i):\n        self.add_module(f'h{i}', make())\n"
    ),
    "add_module two calls below the loop": (
        "class A:\n    def __init__(self, n):\n        for i in range(n):\n            self.add(i)\n"
        "    def add(self, i):\n        self.register(i)\n"
        "    def register(me, i):\n        me.add_module(f'h{i}', make())\n"
    ),
    "setattr under a computed name in a comprehension": (
        "class A:\n    def __init__(self, n):\n        [setattr(self, 'h%d' % i, make()) for i in range(n)]\n"
    ),
    "code Python cannot parse here": "class A(\n    ModuleList\n",
}
RULED_OUT = {
    "only in a docstring and a comment": (
        'class A:\n    """Like a ``ModuleList``, see add_module."""\n    # nn.ModuleDict\n'
    ),
    "add_module defined and called once (torch's own Module)": (
        "class Module:\n    def add_module(self, name, module):\n        self._modules[name] = module\n"
        "    def register_module(self, name, module):\n        self.add_module(name, module)\n"
        "    def apply(self, fn):\n        for child in self._modules.values():\n            child.apply(fn)\n"
    ),
    "add_module on another object in a loop": (
        "class SyncNorm:\n    @classmethod\n    def convert(cls, module):\n        out = module\n"
        "        for name, child in module.named_children():\n            out.add_module(name, child)\n"
    ),
    "setattr under a plain name in a loop": (
        "class A:\n    def load(self, state):\n        for name, value in state.items():\n"
        "            setattr(self, name, value)\n"
    ),
    "add_module at module level": "for i in range(3):\n    root.add_module(str(i), make())\n",
}


@pytest.mark.parametrize("source", BUILDS.values(), ids=BUILDS.keys())
def test_code_that_builds_a_collection_is_kept(source):
    assert builds_collections(source.encode())


@pytest.mark.parametrize("source", RULED_OUT.values(), ids=RULED_OUT.keys())
def test_words_where_no_collection_is_built_are_ruled_out(source):
    assert not builds_collections(source.encode())


def test_a_file_that_only_defines_add_module_is_not_parsed(monkeypatch):
    source = "import torch\n" + RULED_OUT["add_module defined and called once (torch's own Module)"]
    assert not could_match(source.encode())
    parsed = []
    monkeypatch.setattr(checking_file, "_analyse", lambda *args: parsed.append(args) or ([], (), {}))
    job = FileJob("x.py", "x.py", Config(root=Path(".")).enabled_codes(), Settings())
    assert check_bytes(job, source.encode()) == []
    assert not parsed
