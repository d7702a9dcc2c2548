"""The prefilter that keeps files away from libcst must never lose a finding."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES

from enslint.checking import FileJob, check_bytes
from enslint.checking import file as checking_file
from enslint.analysis.registrations import builds_collections, builds_plain_lists
from enslint.checking.prefilter import could_match
from enslint.config import Config
from enslint.rules import ALL_RULES, Settings

SOURCES = sorted(FIXTURES.rglob("*.py"))
SNIPPETS = [case.code for rule in ALL_RULES for case in [*rule.VALID, *rule.INVALID]]


def diagnostics(data: bytes, monkeypatch, prefilter: bool):
    if not prefilter:
        monkeypatch.setattr(checking_file, "could_match", lambda data, names=(), tree=True: True)
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


# Plain lists on `self`, registered nowhere: kept where calls fill them and a loop calls
# their elements (the analysis then asks whether the constructor builds modules).
PLAIN_LISTS = {
    "appended in a loop, called by index": (
        "import torch\nclass Agent:\n    def __init__(self, n):\n        self.qs, self.targets = [], []\n"
        "        for _ in range(n):\n            q = Critic().to('cpu')\n            self.qs.append(q)\n"
        "    def values(self, x):\n        return torch.cat([self.qs[i](x) for i in range(len(self.qs))], 1)\n"
    ),
    "a comprehension of calls, iterated and called": (
        "import torch\nclass Predictor:\n    def __init__(self, n):\n        self.members = [make() for _ in range(n)]\n"
        "    def predict(self, x):\n        return torch.stack([m(x) for m in self.members])\n"
    ),
    "zipped with inputs in a for loop": (
        "import torch\nclass P:\n    def __init__(self, n):\n        self.heads = [Head() for _ in range(n)]\n"
        "    def run(self, xs):\n        out = []\n        for head, x in zip(self.heads, xs):\n"
        "            out.append(head(x))\n        return out\n"
    ),
}
NOT_PLAIN_LISTS = {
    "names appended, not built": (
        "import torch\nclass RNN:\n    def __init__(self, layers):\n        self.names = []\n"
        "        for layer in layers:\n            names = [f'w{layer}']\n            self.names.extend(names)\n"
        "            self.names.append(names)\n    def flat(self):\n        return [getattr(self, n) for n in self.names]\n"
    ),
    "built, but its elements are never called": (
        "import torch\nclass Holder:\n    def __init__(self, n):\n        self.buffers = [torch.zeros(3) for _ in range(n)]\n"
        "    def total(self):\n        return sum(b.sum() for b in self.buffers)\n"
    ),
    "called, but filled with what no call built": (
        "import torch\nclass Fns:\n    def __init__(self):\n        self.fns = [torch.relu, torch.tanh]\n"
        "    def all(self, x):\n        return [f(x) for f in self.fns]\n"
    ),
}


@pytest.mark.parametrize("source", PLAIN_LISTS.values(), ids=PLAIN_LISTS.keys())
def test_plain_lists_filled_by_calls_and_called_are_kept(source):
    assert could_match(source.encode()) and builds_plain_lists(source.encode())


@pytest.mark.parametrize("source", NOT_PLAIN_LISTS.values(), ids=NOT_PLAIN_LISTS.keys())
def test_plain_lists_of_other_things_are_ruled_out(source):
    assert not builds_plain_lists(source.encode())


def test_a_cached_file_is_not_read_on_the_tree_again(tmp_path, monkeypatch):
    """The tree stage comes after the result cache, which holds only files that passed
    it with these bytes: an unchanged file's second check does not parse it again."""
    from enslint.checking import prefilter

    source = ("import torch\n" + PLAIN_LISTS["a comprehension of calls, iterated and called"]).encode()
    job = FileJob("x.py", str(tmp_path / "x.py"), Config(root=tmp_path).enabled_codes(), Settings(), str(tmp_path))
    first = check_bytes(job, source)
    monkeypatch.setattr(prefilter, "builds_plain_lists", lambda data: pytest.fail("parsed again"))
    assert check_bytes(job, source) == first
