"""The vmap form's fused storage still answers as the collection it replaces
(issue 19's second family): `StackedMembers` runs `heads[k](x)` on member k's slice of
the stacked tensors, gives `len()`, acts on every member's tensors for
`.parameters()`/`.eval()`, and writes and reads checkpoints in the nn.ModuleList's own
keys, so a checkpoint of the rewrite loads into the original class and back. A use it
cannot honour is the reason given, naming that use."""

from __future__ import annotations

import importlib.util
import os
import sys
import textwrap

import pytest
from helpers import messages_for

from enslint.analysis.kinds import HELPER_MODULE
from enslint.checking import FileJob, check_bytes
from enslint.config import Config
from enslint.engine.helper_writes import HelperModules
from enslint.engine.transaction import fix_file
from enslint.findings import Form
from enslint.rules import Settings

HEADS = textwrap.dedent(
    """\
    import torch
    from torch import nn


    class Heads(nn.Module):
        def __init__(self, d, a, n):
            super().__init__()
            self.trunk = nn.Linear(d, d)
            self.heads = nn.ModuleList([nn.Sequential(nn.Linear(d, 8), nn.ReLU(), nn.Linear(8, a)) for _ in range(n)])

        def forward(self, x):
            h = self.trunk(x)
            return torch.stack([head(h) for head in self.heads])

        def one(self, x, k):
            return self.heads[k](self.trunk(x))

        def count(self):
            return len(self.heads)

        def freeze_heads(self):
            for p in self.heads.parameters():
                p.requires_grad_(False)
    """
)


def forms_of(source: str) -> set[str]:
    job = FileJob("heads.py", "heads.py", Config(root=".").enabled_codes(), Settings())
    return {str(d.fixes[0].form) for d in check_bytes(job, source.encode()) if d.fixes}


def test_uses_the_stacked_members_honour_keep_the_fused_rewrite():
    assert forms_of(HEADS) == {str(Form.VMAP)}


CHAIN = """
    def refine(self, x):
        for head in self.heads:
            x = head.forward(x)
        return x
"""


def test_a_loop_elsewhere_that_only_calls_each_member_is_honoured():
    """Iteration hands out each member, callable: a chain over them keeps working."""
    assert forms_of(HEADS + textwrap.indent(CHAIN, "    ")) == {str(Form.VMAP)}


@pytest.mark.parametrize(
    "loop",
    [
        # a member loop of its own: its fix may keep the members, so the storage stays
        "    def total(self, x):\n        return sum(head(x) for head in self.heads)\n",
        # a member's layer, which the storage does not have
        "    def scale(self):\n        for head in self.heads:\n            head[0].weight.data *= 2\n",
    ],
    ids=["member-loop", "member-attribute"],
)
def test_a_loop_elsewhere_that_does_more_is_not(loop):
    assert str(Form.VMAP) not in forms_of(HEADS + "\n" + loop)


@pytest.mark.parametrize(
    "use, named",
    [
        ("return self.heads[k][0].weight", "self.heads[k]"),  # a member's layer
        ("return self.heads[1:]", "self.heads[1:]"),  # a slice of the members
        ("return self.heads.apply(lambda m: m)", "self.heads.apply(lambda m: m)"),
    ],
)
def test_a_use_it_cannot_honour_is_named(use, named):
    source = HEADS.replace("return self.heads[k](self.trunk(x))", use)
    assert str(Form.VMAP) not in forms_of(source)
    (message,) = messages_for(source).values()
    assert f"`self.heads` is also used in `one()` (`{named}`)" in message


if os.environ.get("CI"):
    import torch  # CI installs torch: never skip there
else:
    torch = pytest.importorskip("torch")


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(HELPER_MODULE, None)
        sys.path.remove(str(path.parent))
    return module


@pytest.fixture
def pair(tmp_path):
    original, fixed = tmp_path / "original" / "heads.py", tmp_path / "fixed" / "heads.py"
    for path in (original, fixed):
        path.parent.mkdir()
        path.write_text(HEADS)
    job = FileJob(fixed.name, str(fixed), Config(root=fixed.parent).enabled_codes(), Settings())
    outcome = fix_file(job, unsafe=True)
    assert outcome.error is None and outcome.fixed == 1
    HelperModules().write_for(outcome.helpers)
    fixed.write_text(outcome.after)
    torch.manual_seed(0)
    a = _load(original, "stacked_original").Heads(4, 3, 5)
    torch.manual_seed(0)
    b = _load(fixed, "stacked_fixed").Heads(4, 3, 5)
    return a, b


def test_checkpoints_keep_the_lists_keys_both_ways(pair):
    original, fixed = pair
    assert list(fixed.state_dict()) == list(original.state_dict())
    fixed.load_state_dict(original.state_dict(), strict=True)
    torch.nn.init.normal_(next(iter(fixed.heads.parameters())))  # move the rewrite's weights
    original.load_state_dict(fixed.state_dict(), strict=True)  # a checkpoint of the rewrite
    x = torch.randn(6, 4)
    torch.testing.assert_close(original(x), fixed(x))


def test_other_uses_run_as_they_did(pair):
    original, fixed = pair
    fixed.load_state_dict(original.state_dict(), strict=True)
    x = torch.randn(6, 4)
    assert fixed.count() == original.count() == 5
    for k in (0, 3, -1):
        torch.testing.assert_close(fixed.one(x, k), original.one(x, k))
    # member k's own call reaches only its slice of the stacked tensors
    fixed.one(x, 2).sum().backward()
    grads = [p.grad for p in fixed.heads.parameters()]
    assert all(g[2].abs().sum() > 0 and g[[0, 1, 3, 4]].abs().sum() == 0 for g in grads)
    fixed.freeze_heads()
    assert not any(p.requires_grad for p in fixed.heads.parameters()) and fixed.trunk.weight.requires_grad
    # a slice of the members is not one member (a list of modules would give a list)
    with pytest.raises(TypeError, match="takes one position"):
        fixed.heads[1:]


def test_a_fixtures_other_uses_of_the_collection_still_work(tmp_path):
    """Bootstrapped DQN's `self.heads[head](features)` beside the loop over all heads."""
    from test_call_time import fixed_pair

    original, fixed, text = fixed_pair("bootstrapped_dqn_heads.py", tmp_path, Form.VMAP)
    torch.manual_seed(0)
    before = original.BootstrappedQNetwork(n_actions=3, n_heads=5, feature_dim=16)
    after = fixed.BootstrappedQNetwork(n_actions=3, n_heads=5, feature_dim=16)
    frames = torch.randn(2, 4, 36, 36)
    before(frames), after(frames)  # the lazy layer takes its shape
    after.load_state_dict(before.state_dict())
    assert list(after.state_dict()) == list(before.state_dict())
    for head in (None, 3):  # all heads fused; one head through `self.heads[head]`, as written
        outs = [model(frames, head) for model in (before, after)]
        torch.testing.assert_close(outs[1], outs[0])
    assert "self.heads[head](features)" in text
