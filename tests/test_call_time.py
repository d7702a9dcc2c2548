"""The call-time rewrite keeps the members as they are: where nothing can replace the
collection (a plain list registered with add_module, a parent's collection, a holder that
is not an nn.Module, a collection also used elsewhere), the loop alone becomes one vmap
over the members' parameters stacked per call. Checked here on what verify cannot build
(a holder that is not a module, a boolean mask input) and on what the rewrite promises
beyond equal outputs: the state_dict is untouched, every member's own parameter gets its
gradient, the other uses of the collection still work. verify proves the rest
(tests/test_verify.py runs it on every fixture with a table in pyproject.toml)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from enslint.analysis.kinds import HELPER_MODULE
from enslint.checking import FileJob, check_file
from enslint.config import Config
from enslint.engine.helper_writes import HelperModules
from enslint.engine.transaction import fix_file
from enslint.findings import Form
from enslint.rules import Settings

if os.environ.get("CI"):
    import torch  # CI installs torch: never skip there
else:
    torch = pytest.importorskip("torch")

POSITIVE = ROOT / "fixtures" / "positive"


def fixed_pair(name: str, tmp_path: Path, form: Form = Form.CALL_TIME):
    """The fixture as written and as `--fix --unsafe-fixes` leaves it (its first fix of
    `form`), both imported."""
    original = tmp_path / "original" / name
    fixed = tmp_path / "fixed" / name
    for path in (original, fixed):
        path.parent.mkdir()
        shutil.copyfile(POSITIVE / name, path)
    job = FileJob(fixed.name, str(fixed), Config(root=fixed.parent).enabled_codes(), Settings())
    forms = {str(f.form) for d in check_file(job) for f in d.fixes[:1]}
    assert str(form) in forms
    outcome = fix_file(job, unsafe=True)
    assert outcome.error is None and outcome.fixed >= 1
    HelperModules().write_for(outcome.helpers)
    fixed.write_text(outcome.after)
    return _load(original, "original_" + fixed.stem), _load(fixed, "fixed_" + fixed.stem), outcome.after


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(HELPER_MODULE, None)  # each folder holds its own
        sys.path.remove(str(path.parent))
    return module


def _grads(parameters) -> list[torch.Tensor]:
    return [p.grad.clone() for p in parameters]


def test_a_holder_that_is_not_a_module_keeps_its_critics(tmp_path):
    original, fixed, text = fixed_pair("agent_holds_critics.py", tmp_path)
    torch.manual_seed(0)
    before = original.SACAgent(obs_dim=5, act_dim=2, n_critics=4)
    after = fixed.SACAgent(obs_dim=5, act_dim=2, n_critics=4)
    after.critics.load_state_dict(before.critics.state_dict())  # the same keys: strict
    obs, act = torch.randn(8, 5), torch.randn(8, 2)
    torch.testing.assert_close(after.q_values(obs, act), before.q_values(obs, act))
    for agent in (before, after):
        agent.q_values(obs, act).square().sum().backward()
    # Every member's own parameters, as the optimizer holds them, get the gradient.
    for p, q in zip(before.critics.parameters(), after.critics.parameters(), strict=True):
        assert q.grad is not None
        torch.testing.assert_close(q.grad, p.grad)
    assert "vmap_members(self.critics" in re.sub(r"\(\s+", "(", text)  # wrapped or not


def _load_each(members, originals) -> None:
    """Each original member's state into its counterpart: the same keys (strict)."""
    for mine, theirs in zip(members, originals, strict=True):
        mine.load_state_dict(theirs.state_dict())


def test_critics_in_plain_lists_on_an_agent_keep_their_optimizers(tmp_path):
    """Critics in a plain list, each with its own optimizer (a randomized-ensemble agent,
    no nn.Module): the loop becomes one vmap; every critic's own parameters get their
    gradients, its own optimizer steps them, and the next values match the loop's."""
    original, fixed, text = fixed_pair("critics_in_a_plain_list.py", tmp_path)
    assert "vmap_members(self.q_nets" in re.sub(r"\(\s+", "(", text)
    torch.manual_seed(0)
    before = original.RandomizedEnsembleAgent(obs_dim=5, act_dim=2, num_q=4)
    after = fixed.RandomizedEnsembleAgent(obs_dim=5, act_dim=2, num_q=4)
    _load_each(after.q_nets, before.q_nets)
    obs, act = torch.randn(8, 5), torch.randn(8, 2)
    torch.testing.assert_close(after.q_values(obs, act), before.q_values(obs, act))
    for agent in (before, after):
        agent.q_values(obs, act).square().sum().backward()
        for optimizer in agent.q_optimizers:
            optimizer.step()
    for mine, theirs in zip(after.q_nets, before.q_nets, strict=True):
        torch.testing.assert_close(list(mine.parameters()), list(theirs.parameters()))
    torch.testing.assert_close(after.q_values(obs, act), before.q_values(obs, act))


def test_members_from_a_factory_in_a_plain_list(tmp_path):
    original, fixed, text = fixed_pair("critics_in_a_plain_list.py", tmp_path)
    assert "vmap_members(self.members" in re.sub(r"\(\s+", "(", text)
    torch.manual_seed(0)
    before = original.ValueEnsemble(obs_dim=5, hidden=16, n_members=3)
    after = fixed.ValueEnsemble(obs_dim=5, hidden=16, n_members=3)
    _load_each(after.members, before.members)
    obs = torch.randn(8, 5)
    torch.testing.assert_close(after.predict(obs), before.predict(obs))
    for ensemble in (before, after):
        ensemble.predict(obs).sum().backward()
    for mine, theirs in zip(after.members, before.members, strict=True):
        torch.testing.assert_close([p.grad for p in mine.parameters()], [p.grad for p in theirs.parameters()])


def test_a_boolean_mask_beside_the_input_and_a_mean(tmp_path):
    original, fixed, text = fixed_pair("sum_generator_with_mask.py", tmp_path)
    torch.manual_seed(0)
    before = original.ScorerEnsemble(d=8, n_scorers=4)
    after = fixed.ScorerEnsemble(d=8, n_scorers=4)
    after.load_state_dict(before.state_dict())
    x, mask = torch.randn(3, 6, 8), torch.rand(3, 6) > 0.3
    outs = [model(x, mask) for model in (before, after)]
    torch.testing.assert_close(outs[1], outs[0])
    for out in outs:
        out.sum().backward()
    torch.testing.assert_close(_grads(after.parameters()), _grads(before.parameters()))


def test_one_optimizer_step_lands_on_the_same_weights(tmp_path):
    original, fixed, _ = fixed_pair("dynamics_ensemble_add_module.py", tmp_path)
    torch.manual_seed(0)
    before = original.DynamicsEnsemble(state_dim=3, action_dim=2, ensemble_size=4)
    after = fixed.DynamicsEnsemble(state_dim=3, action_dim=2, ensemble_size=4)
    after.load_state_dict(before.state_dict())
    inputs = torch.randn(4, 16, 5)
    for model in (before, after):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        mean, log_var = model(inputs)
        (mean.square().sum() + log_var.exp().sum()).backward()
        optimizer.step()
    for (name, p), (_, q) in zip(before.state_dict().items(), after.state_dict().items(), strict=True):
        torch.testing.assert_close(q, p, msg=name)


def test_one_method_of_the_members_runs_as_their_forward_two_do_not():
    from helpers import messages_for

    source = (
        "import torch\nfrom torch import nn\n\n\n"
        "class Critic(nn.Module):\n"
        "    def __init__(self, d):\n        super().__init__()\n        self.net = nn.Linear(d, 1)\n\n"
        "    def value(self, x):\n        return self.net(x).tanh()\n\n"
        "    def bonus(self, x):\n        return self.net(x).abs()\n\n\n"
        "class Critics(nn.Module):\n"
        "    def __init__(self, d, n):\n        super().__init__()\n"
        "        self.critics = nn.ModuleList([Critic(d) for _ in range(n)])\n\n"
        "    def forward(self, x):\n        return torch.stack([c.value(x) for c in self.critics])\n"
    )
    (one,) = messages_for(source).values()
    assert "fix: torch.vmap, members kept" in one and "called through `.value()`" in one
    two = source.replace("[c.value(x) for c in self.critics]", "[c.value(x) + c.bonus(x) for c in self.critics]")
    (message,) = messages_for(two).values()
    assert "no automatic fix" in message and "the members are called through `.bonus()`" in message


def test_members_built_by_fit_and_called_with_unpacked_inputs(tmp_path):
    """A scikit-learn-style ensemble: fit() builds and trains the members; forward(*x)
    passes its inputs on unpacked, which the rewrite captures as written."""
    original, fixed, text = fixed_pair("heads_built_in_fit.py", tmp_path)
    assert "estimator(*x)" in text
    make = lambda: torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))  # noqa: E731
    loader = [(torch.randn(4, 6), torch.randint(0, 3, (4,))) for _ in range(2)]
    models = []
    for module in (original, fixed):
        torch.manual_seed(0)
        models.append(module.VotingEnsemble(make, n_estimators=4).fit(loader, epochs=1))
    before, after = models
    after.load_state_dict(before.state_dict())
    x = torch.randn(5, 6)
    outs = [model(x) for model in (before, after)]
    torch.testing.assert_close(outs[1], outs[0])
    for out in outs:
        out.square().sum().backward()
    for (name, a), (_, b) in zip(before.named_parameters(), after.named_parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, msg=name)


def test_a_growing_part_of_the_collection_is_what_is_stacked(tmp_path):
    """`draft(h, k)` runs the first k + 1 blocks: the helper stacks that part at each
    call, whatever k is (forward, over all of them, is proven by verify's table)."""
    original, fixed, text = fixed_pair("shared_layer_after_members.py", tmp_path)
    assert "vmap_members(\n            self.blocks[: k + 1]," in text
    torch.manual_seed(0)
    before = original.DraftHeads(hidden=8, vocab=11, n_heads=4)
    after = fixed.DraftHeads(hidden=8, vocab=11, n_heads=4)
    after.load_state_dict(before.state_dict())
    for k in range(4):
        x = torch.randn(5, 8)
        expected = before.draft(x, k)
        got = after.draft(x, k)
        assert got.shape == (k + 1, 5, 11)
        torch.testing.assert_close(got, expected)
        expected.square().sum().backward()
        got.square().sum().backward()
        for a, b in zip(before.parameters(), after.parameters(), strict=True):
            torch.testing.assert_close(b.grad, a.grad)
        before.zero_grad()
        after.zero_grad()
