"""Proof that the fixes keep what the code computes: for every class of fixtures/positive
with a fix, the fixed class loads the original's checkpoint (unchanged, or through the
rewrite's migration hook) and gives the same outputs and gradients (inputs and every
parameter) on CPU in eval mode, as `enslint verify` compares them. In float64: at the
tables' sizes (hidden 256, batch 256) float32's rounding alone exceeds the default
tolerances, and what is tested here is the rewrite's arithmetic; verify judges float32
against a float64 reference on the device.

Each class is built as `enslint verify` builds it, from its `[tool.enslint.verify.*]`
table in pyproject.toml: the one place a fixture's construction is written (the speed
benchmark reads it too). What the test knows beyond the table, where the members'
gradients sit in the fused tensors, follows from the fix's form and the original module.
The rewritten sources themselves are held as snapshots by tests/test_fix_snapshots.py,
which needs no torch."""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT

from enslint.analysis.kinds import HELPER_MODULE
from enslint.checking import FileJob, check_file
from enslint.config import Config, load_config, table_names
from enslint.engine.helper_writes import HelperModules
from enslint.engine.transaction import fix_file
from enslint.findings import Applicability, Form
from enslint.rules import Settings

if os.environ.get("CI"):
    import torch  # CI installs torch: never skip there
else:
    torch = pytest.importorskip("torch")

from enslint.verify.building import init_kwargs  # noqa: E402 - needs torch
from enslint.verify.equivalence import mapped_gradients  # noqa: E402 - needs torch

POSITIVE = FIXTURES / "positive"
CONFIG = load_config(ROOT)
# Built and checked in tests/test_call_time.py instead: a holder that is not a module, a
# boolean mask over the members, members built by fit() on the user's data.
BUILT_IN_TEST_CALL_TIME = {
    "agent_holds_critics.py",
    "critics_in_a_plain_list.py",
    "sum_generator_with_mask.py",
    "heads_built_in_fit.py",
}


def _class_at(tree: ast.Module, row: int) -> str | None:
    inside = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.lineno <= row <= (n.end_lineno or 0)]
    return min(inside, key=lambda n: (n.end_lineno or 0) - n.lineno).name if inside else None


def _fixed_classes() -> dict[Applicability, dict[tuple[str, str], set[str]]]:
    """(fixture, class) -> the forms of the fixes `--fix` (safe) and `--fix --unsafe-fixes`
    apply to it, as `enslint check` offers them."""
    found: dict[Applicability, dict[tuple[str, str], set[str]]] = {Applicability.SAFE: {}, Applicability.UNSAFE: {}}
    for path in sorted(POSITIVE.glob("*.py")):
        job = FileJob(path.name, str(path), Config(root=ROOT).enabled_codes(), Settings())
        tree = ast.parse(path.read_text())
        for d in check_file(job):
            for applicability, unsafe in ((Applicability.SAFE, False), (Applicability.UNSAFE, True)):
                fix = d.fix_for(unsafe)
                name = _class_at(tree, d.row)
                if fix is not None and fix.applicability == applicability and name is not None:
                    found[applicability].setdefault((path.name, name), set()).add(fix.form)
    return found


FIXED = _fixed_classes()
SAFE = sorted(FIXED[Applicability.SAFE])
UNSAFE = sorted(key for key in FIXED[Applicability.UNSAFE] if key[0] not in BUILT_IN_TEST_CALL_TIME)


def table_for(fixture: str, class_name: str):
    """The class's verify table, under the names `enslint verify` looks it up by."""
    found = CONFIG.verify_table(table_names(f"fixtures/positive/{fixture}", class_name))
    return found[1] if found else None


def ids(keys):
    return [f"{fixture}::{name}" for fixture, name in keys]


def fixed_copy(source, tmp_path, unsafe=False):
    target = tmp_path / ("fixed_" + source.name)
    shutil.copyfile(source, target)
    job = FileJob(target.name, str(target), Config(root=tmp_path).enabled_codes(), Settings())
    outcome = fix_file(job, unsafe=unsafe)
    assert outcome.error is None and outcome.fixed >= 1
    HelperModules().write_for(outcome.helpers)  # the package's helper module, as --fix writes it
    target.write_text(outcome.after)
    return target


def load(path, name):
    """The module at `path`, importing from its folder (where its helper module is)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(Path(path).parent))
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
        sys.modules.pop(HELPER_MODULE, None)  # each test's folder holds its own
        sys.path.remove(str(Path(path).parent))
    return module


def flatten(value):
    if isinstance(value, torch.Tensor):
        return [value]
    return [t for item in value for t in flatten(item)]


def run(model, method, inputs):
    inputs = [x.clone().requires_grad_(True) for x in inputs]
    outputs = flatten(getattr(model, method)(*inputs))
    generator = torch.Generator().manual_seed(1)
    loss = sum((out * torch.randn(out.shape, generator=generator)).sum() for out in outputs)
    if loss.requires_grad:  # a method under torch.no_grad() (predict_proba) has no backward
        loss.backward()
    # Zeros where a parameter is unused, as verify's steps have them: a collection the
    # loop never runs (`self.norms` beside `self.heads`) maps through the hooks too.
    grads = {name: torch.zeros_like(p) if p.grad is None else p.grad for name, p in model.named_parameters()}
    return outputs, [x.grad for x in inputs], grads


def build_pair(fixture, fixed_path, class_name):
    """The original class and the rewritten one, each built from the class's table with
    the same seed (its `=expr` arguments evaluated for each), in eval mode; lazy layers
    take their shapes from a first call."""
    spec = table_for(fixture, class_name)
    assert spec is not None, f"no [tool.enslint.verify.{class_name}] table in pyproject.toml"
    models = []
    for path, prefix in ((POSITIVE / fixture, "enslint_original_"), (fixed_path, "enslint_fixed_")):
        cls = getattr(load(path, prefix + fixture[:-3]), class_name)
        torch.manual_seed(0)
        model = cls(**init_kwargs(spec)).eval()
        if any(isinstance(m, torch.nn.modules.lazy.LazyModuleMixin) for m in model.modules()):
            with torch.no_grad():
                getattr(model, spec.method or "forward")(*(torch.zeros(shape) for shape in spec.inputs))
        models.append(model)
    return models[0], models[1], spec.method or "forward", spec.inputs


def run_both(original, fixed, method, shapes):
    """Outputs, input gradients and parameter gradients of both on the same inputs;
    outputs and input gradients must match."""
    generator = torch.Generator().manual_seed(2)
    inputs = [torch.randn(shape, generator=generator) for shape in shapes]
    out_a, input_grads_a, grads_a = run(original, method, inputs)
    out_b, input_grads_b, grads_b = run(fixed, method, inputs)
    assert len(out_a) == len(out_b)
    for a, b in zip(out_a + input_grads_a, out_b + input_grads_b, strict=True):
        torch.testing.assert_close(a, b)
    return grads_a, grads_b


def assert_same_gradients(grads_a, grads_b):
    assert grads_a.keys() == grads_b.keys()  # every member's own parameter gets its gradient
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], msg=lambda m, name=name: f"{name}: {m}")


def assert_same_after_one_step(original, fixed, method, shapes):
    """One SGD step on the gradients run_both left, then the outputs and input gradients
    of both again: the optimizer holds the tensors that got the gradients (stacked
    copies made new leaves would not move) and the step moves both alike."""
    for model in (original, fixed):
        torch.optim.SGD(model.parameters(), lr=0.1).step()
    run_both(original, fixed, method, shapes)


@pytest.mark.parametrize("fixture, class_name", [*SAFE, *UNSAFE], ids=ids([*SAFE, *UNSAFE]))
def test_every_fixed_class_has_a_construction(fixture, class_name):
    assert table_for(fixture, class_name) is not None, (
        f"{fixture}: add [tool.enslint.verify.{class_name}] (init, inputs) to pyproject.toml"
    )


def test_the_fixtures_have_fixes_of_both_kinds():
    assert len(SAFE) >= 8 and len(UNSAFE) >= 40


@pytest.mark.parametrize("fixture, class_name", SAFE, ids=ids(SAFE))
def test_safe_fix_keeps_state_dict_outputs_and_gradients(fixture, class_name, tmp_path):
    fixed_path = fixed_copy(POSITIVE / fixture, tmp_path)
    original, fixed, method, shapes = build_pair(fixture, fixed_path, class_name)
    fixed.load_state_dict(original.state_dict(), strict=True)  # same keys, same shapes
    assert_same_gradients(*run_both(original, fixed, method, shapes))
    assert_same_after_one_step(original, fixed, method, shapes)


@pytest.fixture(autouse=True)
def _in_float64():
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(saved)


@pytest.fixture(autouse=True)
def _lightning_stand_in(monkeypatch):
    """lightning_module_heads.py imports pytorch_lightning; where it is not installed a
    stand-in whose LightningModule is nn.Module serves (the rewrite does not touch it)."""
    if importlib.util.find_spec("pytorch_lightning") is None:
        stand_in = type(sys)("pytorch_lightning")
        stand_in.LightningModule = torch.nn.Module
        monkeypatch.setitem(sys.modules, "pytorch_lightning", stand_in)


# Where a member's parameter sits in the fused tensors, by the fix's form.
VMAP = "vmap"  # stacked by StackedMembers: `heads.{i}.{name}` -> `heads.{name with __}`[i]


def fused_layout(form, original, fixed, collection):
    """How the fix of `form` lays out the members of `original.<collection>`: VMAP; the
    members' Linear layers by name (stacked weights); ("keyed", keys) for an
    nn.ModuleDict made one wide layer; ("wide", groups, heads) for a nest on one input;
    (groups, heads) for a nest fused into (groups, in, heads * out); the member count
    for the rows of one wide layer."""
    members = getattr(original, collection)
    first = next(iter(members.values())) if isinstance(members, torch.nn.ModuleDict) else members[0]
    if form == Form.VMAP:
        return VMAP
    if form == Form.STACKED:
        return [name for name, m in first.named_modules() if isinstance(m, torch.nn.Linear)]
    if form == Form.GROUPED:
        # A nest on one input becomes one wide layer; a nest on slices, batched weights.
        if isinstance(getattr(fixed, collection, None), torch.nn.Linear):
            return ("wide", len(members), len(first))
        return (len(members), len(first))
    assert form == Form.WIDE_LAYER, form
    if isinstance(members, torch.nn.ModuleDict):
        return ("keyed", list(members.keys()))
    if isinstance(first, torch.nn.ModuleList):
        return ("wide", len(members), len(first))
    return len(members)


def fused_grad(grads, collection, count, name):
    """The gradient of an original per-member parameter, read out of the fused tensors."""
    parts = name[len(collection) + 1 :].split(".")
    if count == VMAP:
        return grads[f"{collection}.{'__'.join(parts[1:])}"][int(parts[0])]
    if isinstance(count, list):  # MLP members' layers stacked: layer `count[k]` -> `.weights.k`
        member, layer, leaf = (int(parts[0]), parts[1], parts[2]) if len(parts) == 3 else (int(parts[0]), "", parts[1])
        plural = {"weight": "weights", "bias": "biases"}[leaf]
        stacked = grads[f"{collection}.{plural}.{count.index(layer)}"][member]
        return stacked.T if leaf == "weight" else stacked[0]
    if isinstance(count, tuple) and count[0] == "keyed":  # nn.ModuleDict heads, in key order, as one wide layer
        key, leaf = parts[0], parts[1]
        return grads[f"{collection}.{leaf}"].chunk(len(count[1]), dim=0)[count[1].index(key)]
    if isinstance(count, tuple) and count[0] == "wide":  # groups x heads on one input: rows of one wide layer
        group, head, leaf = int(parts[0]), int(parts[1]), parts[2]
        return grads[f"{collection}.{leaf}"].chunk(count[1] * count[2], dim=0)[group * count[2] + head]
    if isinstance(count, tuple):  # groups x heads fused into (groups, in, heads * out)
        group, head, leaf = int(parts[0]), int(parts[1]), parts[2]
        fused = grads[f"{collection}_{leaf}"][group]
        width = fused.shape[-1] // count[1]
        block = fused[..., head * width : (head + 1) * width]
        return block.T if leaf == "weight" else block[0]
    index, leaf = int(parts[0]), parts[1]
    return grads[f"{collection}.{leaf}"].chunk(count, dim=0)[index]


@pytest.mark.parametrize("fixture, class_name", UNSAFE, ids=ids(UNSAFE))
def test_unsafe_fix_loads_old_checkpoints_and_matches(fixture, class_name, tmp_path):
    """A fix that keeps the members (the call-time form) keeps the checkpoint's keys, and
    so does the vmap form's StackedMembers, which writes and reads them; another fused
    one changes them and loads an old checkpoint through its hook. Each member's
    parameter gets its gradient in the fused tensors."""
    original_path = POSITIVE / fixture
    job = FileJob(original_path.name, str(original_path), Config(root=tmp_path).enabled_codes(), Settings())
    assert "register_load_state_dict_pre_hook" not in fix_file(job, unsafe=False).after  # never by a plain --fix
    fixed_path = fixed_copy(original_path, tmp_path, unsafe=True)
    original, fixed, method, shapes = build_pair(fixture, fixed_path, class_name)
    (form,) = FIXED[Applicability.UNSAFE][fixture, class_name]
    old_checkpoint = original.state_dict()
    if form == Form.CALL_TIME:
        assert list(fixed.state_dict()) == list(old_checkpoint)
        fixed.load_state_dict(old_checkpoint, strict=True)
        assert_same_gradients(*run_both(original, fixed, method, shapes))
        assert_same_after_one_step(original, fixed, method, shapes)
        return
    if form == Form.VMAP:  # StackedMembers writes its checkpoints in the list's keys
        assert list(fixed.state_dict()) == list(old_checkpoint)
    fused_names = dict(fixed.named_parameters())
    gone = {name.split(".")[0] for name, _ in original.named_parameters() if name not in fused_names}
    assert len(gone) == 1, f"the fix changed the parameters of {sorted(gone)}: one collection expected"
    (collection,) = gone
    count = fused_layout(form, original, fixed, collection)
    fixed.load_state_dict(old_checkpoint, strict=True)  # through the migration hook
    grads_a, grads_b = run_both(original, fixed, method, shapes)
    for name, grad in grads_a.items():
        if name.startswith(f"{collection}."):
            torch.testing.assert_close(
                grad, fused_grad(grads_b, collection, count, name), msg=lambda m, name=name: f"{name}: {m}"
            )
        else:
            torch.testing.assert_close(grad, grads_b[name], msg=lambda m, name=name: f"{name}: {m}")
    # enslint verify maps gradients through the checkpoint hook instead: same answer.
    expected, unmapped = mapped_gradients(grads_a, fixed)
    assert not unmapped and expected.keys() == grads_b.keys()
    for name, grad in expected.items():
        torch.testing.assert_close(grad, grads_b[name], msg=lambda m, name=name: f"{name}: {m}")
    assert_same_after_one_step(original, fixed, method, shapes)


@pytest.mark.parametrize(
    "fixture, build",
    [
        ("shared_trunk_linear_heads.py", "SharedTrunkHeads(4, 8, 3, 5)(torch.randn(2, 4))"),
        ("handrolled_multihead_attention.py", "MultiHeadAttention(6, 3, 6)(torch.randn(2, 5, 6))"),
        ("sequential_mlp_members.py", "RewardEnsemble(5, 6, 3)(torch.randn(4, 5))"),
    ],
)
def test_rewrite_runs_in_a_script_that_builds_the_model_at_module_level(fixture, build, tmp_path):
    """The helpers a rewrite adds are defined before the first class, so that code at
    module level (after the classes) can build and call the model."""
    script = tmp_path / fixture
    shutil.copyfile(FIXTURES / "positive" / fixture, script)
    script.write_text(script.read_text() + f"\n\nimport torch\n\nRESULT = {build}\n")
    fixed = fixed_copy(script, tmp_path, unsafe=True)
    assert "RESULT" in load(fixed, "enslint_script_" + fixture[:-3]).__dict__
