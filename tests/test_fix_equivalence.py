"""Proof that the safe fixes are safe: for every fixture with one, the fixed module loads
the original's state_dict unchanged and gives the same outputs and gradients (inputs and
every parameter) on CPU in float32. The rewritten sources themselves are held as
snapshots by tests/test_fix_snapshots.py, which needs no torch."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES

from enslint.analysis.kinds import HELPER_MODULE
from enslint.checking import FileJob, check_file
from enslint.config import Config
from enslint.engine.helper_writes import HelperModules
from enslint.engine.transaction import fix_file
from enslint.findings import Applicability
from enslint.rules import Settings

if os.environ.get("CI"):
    import torch  # CI installs torch: never skip there
else:
    torch = pytest.importorskip("torch")

from enslint.verify.equivalence import mapped_gradients  # noqa: E402 - needs torch

# fixture -> (class, constructor kwargs, method, input shapes), or a list of them for a
# fixture with several fixed classes
SPECS = {
    # ENS003's unbind fix, where members index their own slice of an activation.
    "ellipsis_slice_list.py": ("TokenExperts", dict(d=4, n_slots=3), "forward", [(2, 5, 3, 4)]),
    "nested_comprehension_groups.py": (
        "GroupedHeads",
        dict(d=4, n_groups=3, heads_per_group=2, n_out=2),
        "forward",
        [(5, 3, 4)],
    ),
    "nested_local_builders.py": (
        "IndexedGroups",
        dict(hidden=4, n_actions=2, num_heads=2, ensemble_size=3),
        "forward",
        [(5, 3, 4)],
    ),
    "seed_shared_trunk_head_groups.py": (
        "GroupedHeadEnsemble",
        dict(state_dim=4, hidden_dim=8, num_actions=2, num_heads=2, ensemble_size=3),
        "batched_forward",
        [(5, 3, 4)],
    ),
    "select_slices_activation.py": ("Readouts", dict(d_in=4, d_hidden=6, n_out=2, n_members=3), "forward", [(5, 3, 4)]),
    # Width-1 slices of an activation: iterated as h.split(1, dim), which keeps the dim.
    "width_one_activation_slices.py": ("StepReadouts", dict(d_model=4, n_steps=3, n_out=2), "forward", [(5, 3, 4)]),
    # ENS002's safe fix for one shared instance: one call on all the slices.
    "shared_instance_repeated.py": [
        ("TiedChannelEncoder", dict(d_in=4, d_out=3, n_channels=3), "forward", [(5, 3, 4)]),
        ("TiedHeads", dict(d=4, n_heads=3), "forward", [(3, 5, 4)]),
    ],
}


def each(specs, fixture):
    spec = specs[fixture]
    return spec if isinstance(spec, list) else [spec]


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
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    return outputs, [x.grad for x in inputs], grads


def fixtures_with(applicability, root):
    """The positive fixtures with at least one fix of that applicability."""
    found = set()
    for path in sorted((FIXTURES / "positive").glob("*.py")):
        job = FileJob(path.name, str(path), Config(root=root).enabled_codes(), Settings())
        if any(f.applicability == applicability for d in check_file(job) for f in d.fixes):
            found.add(path.name)
    return found


def build_pair(fixture, fixed_path, class_name, kwargs):
    """The original module and the rewritten one, built with the same seed."""
    torch.manual_seed(0)
    original = getattr(load(FIXTURES / "positive" / fixture, "enslint_original_" + fixture[:-3]), class_name)(**kwargs)
    fixed = getattr(load(fixed_path, "enslint_fixed_" + fixture[:-3]), class_name)(**kwargs)
    return original, fixed


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


def test_every_fixable_fixture_has_a_spec(tmp_path):
    assert fixtures_with(Applicability.SAFE, tmp_path) == set(SPECS)


@pytest.mark.parametrize("fixture", sorted(SPECS))
def test_safe_fix_keeps_state_dict_outputs_and_gradients(fixture, tmp_path):
    original_path = FIXTURES / "positive" / fixture
    fixed_path = fixed_copy(original_path, tmp_path)
    assert fixed_path.read_text() != original_path.read_text()
    for class_name, kwargs, method, shapes in each(SPECS, fixture):
        original, fixed = build_pair(fixture, fixed_path, class_name, kwargs)
        fixed.load_state_dict(original.state_dict(), strict=True)  # same keys, same shapes
        grads_a, grads_b = run_both(original, fixed, method, shapes)
        assert grads_a.keys() == grads_b.keys()
        for name in grads_a:
            torch.testing.assert_close(grads_a[name], grads_b[name], msg=lambda m, name=name: f"{name}: {m}")


class _TwoInputQ(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def forward(self, obs, actions):
        return self.net(torch.cat([obs, actions], dim=-1))


class QfConfig:
    """What config_factory_qfunctions.py's `qf_config` stands for."""

    def instantiate(self):
        return _TwoInputQ()


@pytest.fixture(autouse=True)
def _lightning_stand_in(monkeypatch):
    """lightning_module_heads.py imports pytorch_lightning; where it is not installed a
    stand-in whose LightningModule is nn.Module serves (the rewrite does not touch it)."""
    if importlib.util.find_spec("pytorch_lightning") is None:
        stand_in = type(sys)("pytorch_lightning")
        stand_in.LightningModule = torch.nn.Module
        monkeypatch.setitem(sys.modules, "pytorch_lightning", stand_in)


VMAP = "vmap"  # the members' tensors stacked by StackedMembers: `heads.{i}.{name}` -> `heads.{name with __}`[i]

# fixture -> (class, constructor kwargs, method, input shapes, fused collection, its layout)
UNSAFE_SPECS = {
    "shared_trunk_linear_heads.py": (
        "SharedTrunkHeads",
        dict(state_dim=4, hidden=8, num_actions=3, ensemble_size=5),
        "forward",
        [(6, 4)],
        "heads",
        5,
    ),
    "linear_heads_mean.py": ("ProbeEnsemble", dict(d_embed=6, n_probes=4), "forward", [(3, 6)], "probes", 4),
    "conv_detection_heads.py": (
        "AnchorHeads",
        dict(in_channels=4, num_anchor_groups=3, num_classes=5),
        "forward",
        [(2, 4, 6, 6)],
        "cls_heads",
        3,
    ),
    "value_heads_append_loop.py": (
        "ValueHeads",
        dict(d_obs=5, hidden=6, num_values=4),
        "forward",
        [(3, 5)],
        "value_heads",
        4,
    ),
    "seed_shared_trunk_head_groups.py": (
        "GroupedHeadEnsemble",
        dict(state_dim=4, hidden_dim=8, num_actions=3, num_heads=2, ensemble_size=5),
        "batched_forward",
        [(6, 5, 4)],
        "ensemble",
        (5, 2),
    ),
    "from_import_style.py": ("QuantileHeads", dict(hidden=6, n_quantiles=4), "forward", [(3, 6)], "quantile_heads", 4),
    "nested_local_builders.py": (
        "IndexedGroups",
        dict(hidden=8, n_actions=3, num_heads=2, ensemble_size=4),
        "forward",
        [(5, 4, 8)],
        "ensemble",
        (4, 2),
    ),
    "sequential_mlp_members.py": (
        "RewardEnsemble",
        dict(obs_dim=5, hidden=6, ensemble_size=3),
        "forward",
        [(4, 5)],
        "members",
        ["0", "2", "4"],
    ),
    # Members stacked by StackedMembers and run under torch.vmap.
    "config_factory_qfunctions.py": (
        "QfEnsemble",
        dict(qf_config=QfConfig(), num_ensemble=3),
        "forward",
        [(4, 3), (4, 2)],
        "qfs",
        VMAP,
    ),
    "ellipsis_slice_list.py": ("TokenExperts", dict(d=4, n_slots=3), "forward", [(2, 5, 3, 4)], "experts", [""]),
    "graph_attention_heads.py": (
        "GAT",
        dict(nfeat=5, nhid=4, nclass=3, dropout=0.0, alpha=0.2, nheads=3),
        "forward",
        [(6, 5), (6, 6)],
        "attentions",
        VMAP,
    ),
    "handrolled_multihead_attention.py": (
        "MultiHeadAttention",
        dict(n_embd=6, num_heads=3, block_size=6),
        "forward",
        [(2, 5, 6)],
        "heads",
        VMAP,
    ),
    "lightning_module_heads.py": (
        "MultiHeadClassifier",
        dict(encoder=torch.nn.Linear(5, 6), hidden=6, n_classes=3, n_heads=3),
        "forward",
        [(4, 5)],
        "heads",
        VMAP,
    ),
    "local_base_class.py": ("ValueEnsemble", dict(obs_dim=5, n_members=3), "forward", [(4, 5)], "values", ["0", "2"]),
    "range_len_members.py": ("IndexedEnsemble", dict(in_dim=4, n_members=3), "forward", [(5, 3, 4)], "members", [""]),
    "seed_independent_mlps.py": (
        "IndependentEnsemble",
        dict(state_dim=4, hidden_dim=8, num_actions=2, ensemble_size=3),
        "batched_forward",
        [(5, 3, 4)],
        "ensemble",
        ["input_layer", "h1", "h2", "out"],
    ),
    "select_slices_activation.py": (
        "Readouts",
        dict(d_in=4, d_hidden=6, n_out=2, n_members=3),
        "forward",
        [(5, 3, 4)],
        "readouts",
        [""],
    ),
    "speculative_decoding_heads.py": (
        "MedusaHeads",
        dict(hidden_size=6, vocab_size=7, medusa_num_heads=3),
        "forward",
        [(2, 6)],
        "medusa_head",
        VMAP,
    ),
    "zip_unbind_members.py": (
        "SliceEnsemble",
        dict(in_dim=4, out_dim=2, n_members=3),
        "forward",
        [(5, 3, 4)],
        "members",
        ["0", "2"],
    ),
    "mlp_members_activations_combines.py": [
        ("GeluValueEnsemble", dict(obs_dim=5, hidden=6, n_members=3), "forward", [(4, 5)], "members", ["0", "2"]),
        ("DropoutRewardEnsemble", dict(obs_dim=5, hidden=6, n_members=3, p=0.0), "forward", [(4, 5)], "members", VMAP),
        ("PessimisticCritic", dict(in_dim=5, hidden=6, n_critics=3), "forward", [(4, 5)], "critics", VMAP),
    ],
    "member_first_tensor_index.py": [
        (
            "BootstrapDynamics",
            dict(obs_dim=3, act_dim=2, n_models=4, hidden=6),
            "forward",
            [(4, 5, 5)],
            "models",
            ["0", "2"],
        ),
        ("TokenExpertsByShape", dict(d=4, n_slots=3), "forward", [(3, 5, 4)], "experts", [""]),
    ],
    "additive_feature_networks.py": (
        "AdditiveModel",
        dict(n_features=3, hidden=4),
        "forward",
        [(5, 3)],
        "shape_functions",
        VMAP,
    ),
    "width_one_activation_slices.py": (
        "StepReadouts",
        dict(d_model=4, n_steps=3, n_out=2),
        "forward",
        [(5, 3, 4)],
        "readouts",
        [""],
    ),
    "moduledict_heads.py": (
        "TaskHeads",
        dict(d_model=6, n_tasks=3, n_labels=2),
        "forward",
        [(4, 6)],
        "heads",
        ("keyed", ["task_0", "task_1", "task_2"]),
    ),
    # Temporaries inlined and a running total summed; members re-initialised after they are built.
    "clones_factory_sum.py": ("ScoreHeads", dict(d_model=6, num_scorers=3), "forward", [(4, 5, 6)], "scorers", VMAP),
    "deep_ensemble_mean.py": (
        "DeepEnsemble",
        dict(base=torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2)), num_members=3),
        "forward",
        [(5, 4)],
        "members",
        VMAP,
    ),
    "nest_on_one_input.py": [
        (
            "TaskQuantileHeads",
            dict(d_model=6, n_tasks=3, n_quantiles=2),
            "forward",
            [(4, 6)],
            "task_heads",
            ("wide", 3, 2),
        ),
        (
            "HorizonChannelHeads",
            dict(d_model=6, horizon=3, n_channels=2, width=4),
            "forward",
            [(4, 5, 6)],
            "steps",
            ("wide", 3, 2),
        ),
    ],
    # One linear map per channel, in the `individual` branch, written into a preallocated output.
    "individual_channel_linear.py": (
        "ChannelLinear",
        dict(window=6, horizon=2, n_channels=3, individual=True),
        "forward",
        [(4, 6, 3)],
        "proj",
        [""],
    ),
    "per_channel_timeseries.py": (
        "PerChannelForecaster",
        dict(n_channels=3, seq_len=6, pred_len=2, d_model=8),
        "forward",
        [(4, 6, 3)],
        "channel_nets",
        ["0", "2"],
    ),
    "preallocated_index_write.py": (
        "IndexedHeads",
        dict(hidden=6, n_heads=3, n_out=2),
        "forward",
        [(4, 6)],
        "heads",
        3,
    ),
}
# Fixtures whose members hold dropout: compared in eval mode, where dropout is the identity.
EVAL_MODE = {"lightning_module_heads.py"}


def fused_grad(grads, collection, count, name):
    """The gradient of an original per-head parameter, read out of the fused tensors."""
    parts = name[len(collection) + 1 :].split(".")
    if count == VMAP:
        return grads[f"{collection}.{'__'.join(parts[1:])}"][int(parts[0])]
    if isinstance(count, list):  # MLP members' layers stacked: layer `count[k]` -> `_weights.k`
        member, layer, leaf = (int(parts[0]), parts[1], parts[2]) if len(parts) == 3 else (int(parts[0]), "", parts[1])
        plural = {"weight": "weights", "bias": "biases"}[leaf]
        stacked = grads[f"{collection}_{plural}.{count.index(layer)}"][member]
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


# Rewrites that keep the members as they are (the call-time form): the checkpoint's keys
# do not change. The holder that is not a module and the boolean mask are in
# tests/test_call_time.py.
KEPT_SPECS = {
    "bootstrapped_dqn_heads.py": (
        "BootstrappedQNetwork",
        dict(n_actions=3, n_heads=4, feature_dim=8),
        [(2, 4, 36, 36)],
    ),
    "dynamics_ensemble_add_module.py": (
        "DynamicsEnsemble",
        dict(state_dim=3, action_dim=2, ensemble_size=4),
        [(4, 6, 5)],
    ),
    "parent_class_collection.py": ("DiscreteQ", dict(in_dim=5, out_dim=3, n_members=4), [(6, 5)]),
    "registered_with_setattr.py": ("RegisteredCritics", dict(obs_dim=5, act_dim=2, n_critics=3), [(6, 5), (6, 2)]),
    "rl_critic_tuple.py": (
        "ContinuousCritic",
        dict(obs_dim=5, action_dim=2, net_arch=[8, 8], n_critics=3),
        [(6, 5), (6, 2)],
    ),
    "shared_layer_after_members.py": ("DraftHeads", dict(hidden=6, vocab=9, n_heads=3), [(4, 6)]),
    "modulelist_subclass_critics.py": ("CriticEnsemble", dict(ensemble_size=3, obs_dim=5, act_dim=2), [(6, 5), (6, 2)]),
    "numeric_feature_embeddings.py": ("NumericEmbeddings", dict(n_numeric=4, d_token=6), [(5, 4)]),
    # Its split and tensor_split classes: `enslint verify fixtures/positive/narrowed_and_split_slices.py`.
    "narrowed_and_split_slices.py": ("NarrowedReadouts", dict(d=6, n_targets=3), [(4, 3, 6)]),
    "chunked_inputs.py": ("ChunkExperts", dict(d_chunk=4, n_experts=3), [(5, 12)]),
    # Whole loop bodies: two collections into two preallocated outputs; a chain of three.
    "decomposition_two_collections.py": (
        "SeasonalTrend",
        dict(seq_len=12, pred_len=4, n_series=3, per_series=True, kernel=5),
        [(2, 3, 12)],
    ),
    "per_variable_head_chain.py": (
        "PatchHead",
        dict(individual=True, n_vars=3, d_flat=20, horizon=4),
        [(2, 3, 5, 4)],
    ),
}
BUILT_IN_TEST_CALL_TIME = {"agent_holds_critics.py", "sum_generator_with_mask.py"}


def test_every_unsafe_fix_has_a_spec(tmp_path):
    kept = set(KEPT_SPECS) | BUILT_IN_TEST_CALL_TIME
    assert fixtures_with(Applicability.UNSAFE, tmp_path) == set(UNSAFE_SPECS) | kept


@pytest.mark.parametrize("fixture", sorted(KEPT_SPECS))
def test_a_rewrite_that_keeps_the_members_keeps_the_checkpoint_and_matches(fixture, tmp_path):
    fixed_path = fixed_copy(FIXTURES / "positive" / fixture, tmp_path, unsafe=True)
    class_name, kwargs, shapes = KEPT_SPECS[fixture]
    original, fixed = build_pair(fixture, fixed_path, class_name, kwargs)
    for model in (original, fixed):
        model(*(torch.zeros(shape) for shape in shapes))  # lazy layers take their shapes
    assert list(fixed.state_dict()) == list(original.state_dict())
    fixed.load_state_dict(original.state_dict(), strict=True)
    grads_a, grads_b = run_both(original, fixed, "forward", shapes)
    assert grads_a.keys() == grads_b.keys()  # every member's own parameter gets its gradient
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("fixture", sorted(UNSAFE_SPECS))
def test_unsafe_fix_loads_old_checkpoints_and_matches(fixture, tmp_path):
    original_path = FIXTURES / "positive" / fixture
    job = FileJob(original_path.name, str(original_path), Config(root=tmp_path).enabled_codes(), Settings())
    assert "register_load_state_dict_pre_hook" not in fix_file(job, unsafe=False).after  # never by a plain --fix
    fixed_path = fixed_copy(original_path, tmp_path, unsafe=True)
    for spec in each(UNSAFE_SPECS, fixture):
        check_unsafe_rewrite(fixture, fixed_path, *spec)


def check_unsafe_rewrite(fixture, fixed_path, class_name, kwargs, method, shapes, heads, count):
    original, fixed = build_pair(fixture, fixed_path, class_name, kwargs)
    if fixture in EVAL_MODE:
        original.eval(), fixed.eval()
    old_checkpoint = original.state_dict()
    first = count[1][0] if isinstance(count, tuple) and count[0] == "keyed" else "0"
    assert any(key.startswith(f"{heads}.{first}.") for key in old_checkpoint)
    assert not any(key.startswith(f"{heads}.{first}.") for key in fixed.state_dict())
    fixed.load_state_dict(old_checkpoint, strict=True)  # through the migration hook
    grads_a, grads_b = run_both(original, fixed, method, shapes)
    for name, grad in grads_a.items():
        if name.startswith(f"{heads}."):
            torch.testing.assert_close(
                grad, fused_grad(grads_b, heads, count, name), msg=lambda m, name=name: f"{name}: {m}"
            )
        else:
            torch.testing.assert_close(grad, grads_b[name], msg=lambda m, name=name: f"{name}: {m}")
    # enslint verify maps gradients through the checkpoint hook instead: same answer.
    expected, unmapped = mapped_gradients(grads_a, fixed)
    assert not unmapped and expected.keys() == grads_b.keys()
    for name, grad in expected.items():
        torch.testing.assert_close(grad, grads_b[name], msg=lambda m, name=name: f"{name}: {m}")


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
