"""`enslint verify` on the CPU: every fixture rewrite proven equivalent, and each way a
class can fail reported as it should be. Timings are printed by the command, never
asserted here."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import ROOT

from enslint.checking import FileJob, check_file
from enslint.cli import main
from enslint.config import Config
from enslint.rules import Settings

if os.environ.get("CI"):
    import torch  # CI installs torch: never skip there
else:
    torch = pytest.importorskip("torch")

FAST = ["--min-time", "0.001", "--format", "json"]


def verify(*args: str):
    result = CliRunner().invoke(main, ["verify", *args])
    return result, (json.loads(result.stdout) if result.stdout.startswith("[") else None)


@pytest.fixture
def lightning_stand_in(monkeypatch, tmp_path_factory):
    """lightning_module_heads.py imports pytorch_lightning; where it is not installed a
    stand-in whose LightningModule is nn.Module serves: a package on sys.path, so that
    verify's worker process finds it too, forked or spawned."""
    if importlib.util.find_spec("pytorch_lightning") is None:
        folder = tmp_path_factory.mktemp("stand_ins")
        (folder / "pytorch_lightning").mkdir()
        (folder / "pytorch_lightning" / "__init__.py").write_text("from torch.nn import Module as LightningModule\n")
        monkeypatch.syspath_prepend(str(folder))


def fixtures_with_fixes() -> set[str]:
    found = set()
    for path in sorted((ROOT / "fixtures" / "positive").glob("*.py")):
        job = FileJob(path.name, str(path), Config(root=ROOT).enabled_codes(), Settings())
        if any(d.fixes for d in check_file(job)):
            found.add(path.name)
    return found


# Fixtures verify cannot build from a table, proven equivalent in tests/test_call_time.py:
# what verify says of each.
BUILT_ELSEWHERE = {
    "agent_holds_critics.py": "SACAgent is not an nn.Module class",
    "critics_in_a_plain_list.py": "is not an nn.Module class",
    "sum_generator_with_mask.py": "needs init",  # its mask is boolean: tables give float inputs
    "heads_built_in_fit.py": "needs init",  # fit() builds its members from the user's data
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_fixture_rewrite_verifies_equivalent(dtype, monkeypatch, lightning_stand_in):
    monkeypatch.chdir(ROOT)  # the repository's pyproject.toml says how to build each fixture
    result, rows = verify("fixtures/positive", "--device", "cpu", "--dtype", dtype, *FAST)
    assert rows is not None, result.output
    verified = {row["target"].split("/")[-1].split("::")[0]: row for row in rows if row["status"] != "no rewrite"}
    assert set(verified) == fixtures_with_fixes()
    for name, why in BUILT_ELSEWHERE.items():
        assert why in verified.pop(name)["status"]
    for name, row in verified.items():
        assert row["status"] == "equivalent", (name, row["status"], row["notes"])
        assert row["max_abs_error"] is not None and row["step_original_ms"] > 0 and row["step_rewrite_ms"] > 0
    assert result.exit_code == 1, result.output  # 0 but for the classes verify cannot build
    # The fused heads' graph does not unroll the members: fewer calls than the loop.
    heads = verified["shared_trunk_linear_heads.py"]
    assert heads["calls_rewrite"] < heads["calls_original"] and not heads["eager_counted"]


def test_a_planted_wrong_rewrite_is_a_mismatch(monkeypatch, verify_in_this_process):
    """Mutate the fused weights after the checkpoint is loaded: verify must notice."""
    from enslint.verify import building

    loaded = building.load_rewrite_weights

    def load_then_corrupt(original, rewritten):
        loaded(original, rewritten)
        with torch.no_grad():
            rewritten.heads.weight[0, 0] += 0.5  # one element of one head's fused weight

    monkeypatch.setattr(building, "load_rewrite_weights", load_then_corrupt)
    monkeypatch.chdir(ROOT)
    result, rows = verify(
        "fixtures/positive/shared_trunk_linear_heads.py::SharedTrunkHeads", "--device", "cpu", "--batch", "4", *FAST
    )
    assert result.exit_code == 1, result.output
    (row,) = rows
    assert row["status"] == "mismatch" and row["max_abs_error"] > 0.01
    assert any("heads.weight" in note or "output" in note for note in row["notes"])


CONTROL_FLOW = """
import torch
from torch import nn


class GatedHeads(nn.Module):
    def __init__(self, hidden: int = 8, n_heads: int = 3):
        super().__init__()
        self.trunk = nn.Linear(4, hidden)
        self.heads = nn.ModuleList([nn.Linear(hidden, 2) for _ in range(n_heads)])

    def forward(self, x):
        h = self.trunk(x)
        if h.sum() > 0:  # depends on the data: torch.fx cannot trace it
            h = h * 2
        return torch.stack([head(h) for head in self.heads], dim=1)
"""


def test_data_dependent_control_flow_is_not_traceable_and_compared_eagerly(project):
    (project / "gated.py").write_text(CONTROL_FLOW)
    (project / "pyproject.toml").write_text("[tool.enslint.verify.GatedHeads]\ninputs = [[5, 4]]\n")
    result, rows = verify("gated.py::GatedHeads", "--device", "cpu", *FAST)
    assert result.exit_code == 0, result.output
    (row,) = rows
    # The verdict is equivalence; that fx could not trace the original is its own column.
    assert row["status"] == "equivalent" and row["traced"] in ("rewrite only", "neither")
    assert row["max_abs_error"] is not None  # compared all the same
    note = " ".join(row["notes"])
    assert "data-dependent control flow" in note and "gated.py:14" in note and "if h.sum() > 0" in note


def test_defaults_and_an_inferred_input_need_no_config(project):
    """All __init__ arguments have defaults and the first layer is an nn.Linear: the
    input shape (batch, in_features) is inferred."""
    (project / "gated.py").write_text(CONTROL_FLOW)
    result, rows = verify("gated.py::GatedHeads", "--device", "cpu", *FAST)
    assert result.exit_code == 0, result.output
    assert rows[0]["status"] == "equivalent"


MEMBER_CONFIG = """
import torch
from torch import nn


class Critics(nn.Module):
    def __init__(self, obs_dim: int, act_dim, n: int = 3, hidden=(8, 8), scale: float = 1.0, act=nn.ReLU, norm=None):
        super().__init__()
        self.scale = scale
        self.qs = nn.ModuleList(
            [nn.Sequential(nn.Linear(obs_dim + act_dim, hidden[0]), act(), nn.Linear(hidden[1], 1)) for _ in range(n)]
        )

    def forward(self, obs, act, mask=None):
        x = torch.cat([obs, act], dim=-1)
        return torch.stack([q(x) for q in self.qs]) * self.scale
"""


def test_missing_config_is_asked_at_once_with_a_table_to_paste(project):
    """Every missing key in one message; the table pasted, its ... filled in, verifies."""
    (project / "critics.py").write_text(MEMBER_CONFIG)
    (project / "pyproject.toml").write_text('[project]\nname = "critics"\n')
    result, rows = verify("critics.py", "--device", "cpu", *FAST)
    assert result.exit_code == 2 and "Traceback" not in result.output
    (row,) = rows
    assert row["status"] == (
        "error: [tool.enslint.verify.Critics] needs init (obs_dim, act_dim have no value) and inputs "
        "(one shape per argument: obs, act): add this to pyproject.toml and replace each ..."
    )
    table = row["config_table"]
    assert table.splitlines() == [
        "[tool.enslint.verify.Critics]",
        "inputs = [[32, ...], [32, ...]]  # forward(obs, act): one shape per argument, batch first",
        "",
        "[tool.enslint.verify.Critics.init]",
        "obs_dim = ...  # required: int",
        "act_dim = ...  # required",
        "n = 3  # default",
        "hidden = [8, 8]  # default",
        "scale = 1.0  # default",
        '# act: default nn.ReLU; another value is written act = "=nn.ReLU"',
        "# norm: default None",
    ]
    terminal = CliRunner().invoke(
        main, ["verify", "critics.py", "--device", "cpu", "--format", "text", "--min-time", "0.001"]
    )
    assert table in terminal.output  # printed whole, ready to paste

    # Pasted as it is: the ... are refused at their line, with what to do.
    with (project / "pyproject.toml").open("a") as config:
        config.write("\n" + table + "\n")
    result, _ = verify("critics.py", "--device", "cpu", *FAST)
    assert result.exit_code == 2
    assert "line 5" in result.output and "replace the ... that enslint verify left for you to fill in" in result.output

    filled = table.replace("[[32, ...], [32, ...]]", "[[32, 5], [32, 2]]")
    filled = filled.replace("obs_dim = ...", "obs_dim = 5").replace("act_dim = ...", "act_dim = 2")
    (project / "pyproject.toml").write_text('[project]\nname = "critics"\n\n' + filled + "\n")
    result, rows = verify("critics.py", "--device", "cpu", *FAST)
    assert result.exit_code == 0, result.output
    assert rows[0]["status"] == "equivalent"


def test_a_partial_init_is_asked_for_what_it_lacks(project):
    (project / "critics.py").write_text(MEMBER_CONFIG)
    (project / "pyproject.toml").write_text(
        "[tool.enslint.verify.Critics]\ninit = { obs_dim = 5, n = 4 }\ninputs = [[8, 5], [8, 2]]\n"
    )
    result, rows = verify("critics.py", "--device", "cpu", *FAST)
    assert result.exit_code == 2
    assert "needs init (act_dim has no value)" in rows[0]["status"] and "inputs" not in rows[0]["status"]
    lines = rows[0]["config_table"].splitlines()
    assert "obs_dim = 5" in lines and "n = 4" in lines and "act_dim = ...  # required" in lines


def test_uninferable_inputs_alone_are_asked_for(project):
    (project / "critics.py").write_text(MEMBER_CONFIG)
    (project / "pyproject.toml").write_text("[tool.enslint.verify.Critics]\ninit = { obs_dim = 5, act_dim = 2 }\n")
    result, rows = verify("critics.py", "--device", "cpu", *FAST)
    assert result.exit_code == 2
    assert rows[0]["status"].startswith(
        "error: [tool.enslint.verify.Critics] needs inputs (one shape per argument: obs, act)"
    )
    assert rows[0]["config_table"].splitlines()[1].startswith("inputs = [[32, ...], [32, ...]]")
    assert ".init]" not in rows[0]["config_table"]


def test_a_missing_dependency_of_the_project_is_not_a_config_question(project):
    (project / "agent.py").write_text("import enslint_missing_dependency.infos\n" + CONTROL_FLOW)
    result, rows = verify("agent.py", "--device", "cpu", *FAST)
    assert result.exit_code == 1 and "Traceback" not in result.output
    status = rows[0]["status"]
    assert "needs 'enslint_missing_dependency', which is not installed in this environment" in status
    assert "(imported at agent.py:1)" in status and "the configuration is not the problem" in status
    assert rows[0]["config_table"] == ""


def test_one_failing_class_does_not_stop_the_others(project):
    broken = CONTROL_FLOW.replace("class GatedHeads", "class Broken").replace(
        "        super().__init__()\n",
        "        super().__init__()\n        raise RuntimeError('no GPU memory for this one')\n",
        1,
    )
    (project / "two.py").write_text(CONTROL_FLOW + broken.split("from torch import nn\n", 1)[1])
    result, rows = verify("two.py", "--device", "cpu", *FAST)
    assert result.exit_code == 1
    statuses = {row["target"]: row["status"] for row in rows}
    assert statuses == {
        "two.py::GatedHeads": "equivalent",
        "two.py::Broken": "error: RuntimeError: no GPU memory for this one",
    }


def test_module_target_and_its_config_by_full_name(project, monkeypatch):
    package = project / "models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "heads.py").write_text(CONTROL_FLOW.replace("hidden: int = 8", "hidden"))
    (project / "pyproject.toml").write_text(
        '[tool.enslint.verify."models.heads:GatedHeads"]\ninit = { hidden = 6 }\ninputs = [[3, 4]]\n'
    )
    monkeypatch.syspath_prepend(str(project))
    result, rows = verify("models.heads:GatedHeads", "--device", "cpu", *FAST)
    assert result.exit_code == 0, result.output
    assert rows[0]["target"] == "models.heads:GatedHeads" and rows[0]["status"] == "equivalent"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_but_absent_is_one_line_and_exit_2(project):
    (project / "gated.py").write_text(CONTROL_FLOW)
    result = CliRunner().invoke(main, ["verify", "--device", "cuda"])
    assert result.exit_code == 2
    assert result.output.strip() == "enslint: error: --device cuda: no CUDA device is available to torch here"


def test_unknown_verify_key_is_a_configuration_error(project):
    (project / "pyproject.toml").write_text("[tool.enslint.verify.GatedHeads]\nshape = [[5, 4]]\n")
    result = CliRunner().invoke(main, ["verify", "--device", "cpu"])
    assert result.exit_code == 2
    assert "unknown key 'shape'" in result.output


def test_text_table_fits_100_columns_and_markdown_has_every_figure(project):
    (project / "gated.py").write_text(
        CONTROL_FLOW.replace(
            "        if h.sum() > 0:  # depends on the data: torch.fx cannot trace it\n            h = h * 2\n", ""
        )
    )
    result = CliRunner().invoke(
        main, ["verify", "gated.py", "--device", "cpu", "--dtype", "float64", "--min-time", "0.001"]
    )
    assert result.exit_code == 0, result.output
    table = result.stdout.splitlines()
    assert max(len(line) for line in table) <= 100, result.stdout
    assert table[0].split() == ["class", "rule", "rewrite", "fwd+bwd", "speed-up", "verdict", "recommendation"]
    first = table[1].split()
    assert first[:4] == ["gated.py::GatedHeads", "ENS001", "wide", "layer"] and "equivalent" in first
    assert "equivalent in float64: outputs and gradients within rtol=1e-09" in result.stdout
    result = CliRunner().invoke(
        main,
        ["verify", "gated.py", "--device", "cpu", "--dtype", "float64", "--min-time", "0.001", "--format", "markdown"],
    )
    assert "| gated.py::GatedHeads | ENS001 | wide layer | 3 | 32 | cpu | float64 |" in result.stdout
    assert "| gated.py::GatedHeads | ENS001 | vmap | 3 | 32 | cpu | float64 |" in result.stdout


def _timed(original_ms: float, per_form: dict[str, float]):
    """A stand-in for timing.measure: the original and each candidate (told apart by
    the parameters its module holds) take the given times, with a spread of 2%."""
    from enslint.verify import timing

    def measure(function, parameters, inputs, min_time, device):
        owner = function.__self__
        names = {name.split(".")[0] for name, _ in owner.named_parameters()}
        form = (
            "wide layer"
            if type(getattr(owner, "heads", None)).__name__ == "Linear"
            else "vmap"
            if "heads" in names and type(owner.heads).__name__ == "StackedMembers"
            else "original"
        )
        ms = original_ms if form == "original" else per_form[form]
        return timing.Timing(forward_ms=ms, step_ms=ms, forward_iqr_ms=ms * 0.02, step_iqr_ms=ms * 0.02)

    return measure


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ({"wide layer": 1.0, "vmap": 3.0}, "wide layer"),
        ({"wide layer": 3.0, "vmap": 1.0}, "vmap"),
        ({"wide layer": 2.5, "vmap": 2.2}, "keep the loop"),  # none beats the 2.0 ms loop
        ({"wide layer": 1.99, "vmap": 2.5}, "no clear difference"),  # faster, but within the spread
    ],
)
def test_each_candidate_is_checked_and_timed_and_the_fastest_recommended(project, monkeypatch, times, expected, verify_in_this_process):
    from enslint.verify import timing

    monkeypatch.setattr(timing, "measure", _timed(2.0, times))
    (project / "gated.py").write_text(CONTROL_FLOW)
    (project / "pyproject.toml").write_text("[tool.enslint.verify.GatedHeads]\ninputs = [[5, 4]]\n")
    result, rows = verify("gated.py::GatedHeads", "--device", "cpu", *FAST)
    (row,) = rows
    assert [(c["form"], c["status"]) for c in row["candidates"]] == [
        ("wide layer", "equivalent"),
        ("vmap", "equivalent"),
    ]
    assert [c["step_speedup"] for c in row["candidates"]] == [2.0 / times["wide layer"], 2.0 / times["vmap"]]
    assert row["recommendation"] == expected


def test_the_safe_fix_is_a_candidate_and_the_preferred_fused_form_comes_first(monkeypatch):
    monkeypatch.chdir(ROOT)
    result, rows = verify(
        "fixtures/positive/select_slices_activation.py::Readouts", "--device", "cpu", "--batch", "4", *FAST
    )
    (row,) = rows
    forms = [(c["form"], c["safety"], c["status"]) for c in row["candidates"]]
    assert forms == [
        ("stacked weights", "unsafe", "equivalent"),
        ("vmap", "unsafe", "equivalent"),
        ("unbind", "safe", "equivalent"),
    ]
    assert row["rule"] == "ENS002,ENS003"
    assert row["recommendation"] in {"stacked weights", "vmap", "unbind", "keep the loop"}


def test_a_mismatching_alternative_makes_the_class_a_mismatch(project, monkeypatch, verify_in_this_process):
    """Every candidate on offer is a fix a user may apply: one that is wrong is reported."""
    from enslint.verify import building

    loaded = building.load_rewrite_weights

    def corrupt_vmap(original, rewritten):
        loaded(original, rewritten)
        if type(rewritten.heads).__name__ == "StackedMembers":
            with torch.no_grad():
                next(rewritten.heads.parameters())[0].add_(0.5)

    monkeypatch.setattr(building, "load_rewrite_weights", corrupt_vmap)
    (project / "gated.py").write_text(CONTROL_FLOW)
    (project / "pyproject.toml").write_text("[tool.enslint.verify.GatedHeads]\ninputs = [[5, 4]]\n")
    result, rows = verify("gated.py::GatedHeads", "--device", "cpu", *FAST)
    (row,) = rows
    assert result.exit_code == 1
    assert row["status"] == "mismatch" and [c["status"] for c in row["candidates"]] == ["equivalent", "mismatch"]
    assert row["recommendation"] == "wide layer" or row["recommendation"] == "keep the loop"


@pytest.mark.parametrize(
    ("times", "form"), [({"wide layer": 3.0, "vmap": 1.0}, "vmap"), ({"wide layer": 3.0, "vmap": 3.0}, None)]
)
def test_apply_writes_the_recommended_rewrite_through_the_fix_engine(project, monkeypatch, times, form, verify_in_this_process):
    from enslint.verify import timing

    monkeypatch.setattr(timing, "measure", _timed(2.0, times))
    (project / "gated.py").write_text(CONTROL_FLOW)
    (project / "pyproject.toml").write_text("[tool.enslint.verify.GatedHeads]\ninputs = [[5, 4]]\n")
    result, rows = verify("gated.py::GatedHeads", "--device", "cpu", "--apply", *FAST)
    written = (project / "gated.py").read_text()
    if form is None:  # keep the loop: nothing written
        assert written == CONTROL_FLOW and "applied" not in result.stderr
        return
    assert "gated.py::GatedHeads: applied the vmap rewrite (unsafe)" in result.stderr
    assert "StackedMembers(self.heads)" in written and "nn.Linear(hidden, n_heads * 2)" not in written
    compile(written, "gated.py", "exec")
    # What was written is what verify proved: checking it again finds nothing to fix.
    again = CliRunner().invoke(main, ["check", "gated.py", "--format", "json"])
    assert json.loads(again.stdout) == []


VERIFY_HELP_WARNS = "IMPORTS AND RUNS"


def test_help_says_verify_runs_the_code():
    result = CliRunner().invoke(main, ["verify", "--help"])
    assert VERIFY_HELP_WARNS in result.output


def test_nothing_is_written(project):
    (project / "gated.py").write_text(CONTROL_FLOW)
    before = (project / "gated.py").read_text()
    verify("gated.py", "--device", "cpu", *FAST)
    assert (project / "gated.py").read_text() == before
    assert sorted(p.name for p in project.iterdir() if not p.name.startswith(".")) == ["gated.py"]


def test_bad_targets_are_one_line_usage_errors(project):
    (project / "broken.py").write_text("def f(:\n")
    (project / "gated.py").write_text(CONTROL_FLOW)
    for args, message in (
        (["broken.py::X"], "enslint: error: broken.py:1: cannot parse: invalid syntax"),
        (["nope.py"], "enslint: error: nope.py: no such file or folder"),
        (["gated.py::Nope"], "enslint: error: gated.py: no class named Nope"),
        (["no.such:Thing"], "enslint: error: no.such: no such module on the import path"),
        (
            ["pkg.models.Ensemble"],
            "enslint: error: pkg.models.Ensemble: no such file or folder (a class of a module is named with a colon: `pkg.models:Ensemble`)",
        ),
    ):
        result = CliRunner().invoke(main, ["verify", *args, "--device", "cpu"])
        assert result.exit_code == 2 and result.output.strip() == message, (args, result.output)


def test_an_unparsable_file_in_a_folder_is_skipped_with_a_line(project):
    (project / "broken.py").write_text("import torch\nfrom torch import nn\ndef f(:\n")
    (project / "gated.py").write_text(CONTROL_FLOW)
    result, rows = verify(".", "--device", "cpu", *FAST)
    assert "enslint: broken.py: skipped: " in result.stderr
    assert [row["target"] for row in rows] == ["gated.py::GatedHeads"]


def test_verify_sees_what_check_sees_in_a_project(monkeypatch):
    """Classes flagged through another file (a helper, a parent class, call sites) are
    verify's targets too: proven, or with the reason they have no rewrite."""
    monkeypatch.chdir(ROOT)
    result, rows = verify("fixtures/projects", "--device", "cpu", *FAST)
    assert rows is not None, result.output
    by_class = {row["target"].split("::")[1]: row for row in rows}
    module_attributes = {"Ensemble", "CriticBank", "Voters", "HeadSet", "PerChannel"}
    passed_in = {"TransitionEnsemble"}
    assert set(by_class) == {
        "EnsembleCritic",
        "RegisteredTwin",
        "LabelHeads",
        "AveragedProbe",
        *module_attributes,
        *passed_in,
    }
    # Members built by a helper of another file, members passed in (built where the call
    # site is, reached through an imported name or a module attribute): stacked as built.
    for name in ("LabelHeads", "EnsembleCritic", *(module_attributes - {"PerChannel"}), *passed_in):
        assert by_class[name]["status"] == "equivalent", by_class[name]
        assert [c["form"] for c in by_class[name]["candidates"]] == ["vmap"]
    # A plain list registered with setattr, a parent's collection: the members are kept,
    # the loop alone rewritten.
    for name in ("RegisteredTwin", "AveragedProbe", "PerChannel"):
        assert by_class[name]["status"] == "equivalent", by_class[name]
        assert [c["form"] for c in by_class[name]["candidates"]] == ["call-time vmap"]


PACKAGE_LAYERS = """\
from torch import nn


class Trunk(nn.Module):
    def __init__(self, d_in: int = 4, d: int = 8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, d), nn.ReLU())

    def forward(self, x):
        return self.net(x)
"""

PACKAGE_HEADS = """\
import torch
from torch import nn

from .layers import Trunk


class PackagedHeads(nn.Module):
    def __init__(self, n_heads: int = 4):
        super().__init__()
        self.trunk = Trunk()
        self.heads = nn.ModuleList([nn.Linear(8, 2) for _ in range(n_heads)])

    def batched_forward(self, x):
        h = self.trunk(x)
        return torch.stack([head(h) for head in self.heads], dim=1)
"""


@pytest.mark.parametrize("target", ["src", "src/pkg/heads.py::PackagedHeads", "pkg.heads:PackagedHeads"])
def test_a_module_of_a_package_with_relative_imports(project, monkeypatch, target):
    """The rewrite runs as a module of the same package (`from .layers import Trunk`
    resolves), and the method verified is the flagged one, `batched_forward`."""
    package = project / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text(PACKAGE_LAYERS)
    (package / "heads.py").write_text(PACKAGE_HEADS)
    monkeypatch.syspath_prepend(str(project / "src"))
    result, rows = verify(target, "--device", "cpu", *FAST)
    assert rows is not None, result.output
    (row,) = rows
    assert row["status"] == "equivalent", row["notes"]
    assert result.exit_code == 0


def test_a_missing_input_says_which_key_to_add(project):
    source = PACKAGE_HEADS.replace("from .layers import Trunk\n", "").replace(
        "self.trunk = Trunk()", "self.trunk = nn.Linear(4, 8)"
    )
    source = source.replace("def batched_forward(self, x):", "def batched_forward(self, x, scale):")
    (project / "heads.py").write_text(source)
    (project / "pyproject.toml").write_text(
        "[tool.enslint.verify.PackagedHeads]\ninputs = [[5, 4]]\n"
    )  # one shape, two arguments
    result, rows = verify("heads.py", "--device", "cpu", *FAST)
    assert result.exit_code == 2
    assert "missing 1 required positional argument: 'scale'" in rows[0]["status"]
    assert (
        'add inputs = [[batch, ...], ...] with one shape per argument to [tool.enslint.verify."PackagedHeads"]'
        in rows[0]["status"]
    )


def test_compile_times_the_compiled_rewrite_too(project, monkeypatch, verify_in_this_process):
    from enslint.verify import timing

    compiled = []

    def fake_compile(function, parameters, inputs, min_time, device):
        compiled.append(function)
        return 1.5, timing.Timing(forward_ms=1.0, step_ms=2.0 + len(compiled))

    monkeypatch.setattr(timing, "compile_and_measure", fake_compile)
    (project / "heads.py").write_text(
        PACKAGE_HEADS.replace("from .layers import Trunk\n", "").replace(
            "self.trunk = Trunk()", "self.trunk = nn.Linear(4, 8)"
        )
    )
    result, rows = verify("heads.py", "--device", "cpu", "--compile", *FAST)
    (row,) = rows
    # The original once, then each candidate (the fused form, the vmap form).
    assert len(compiled) == 3 and row["compiled_step_ms"] == 3.0 and row["compiled_rewrite_step_ms"] == 4.0
    assert [c["compiled_rewrite_step_ms"] for c in row["candidates"]] == [4.0, 5.0]
    # Compiled, each side is far slower here than eager: no rewrite is recommended compiled.
    assert row["recommended_compiled"] is False and row["recommendation"] != "compile the loop"


def _strided_like_a_width_1_bmm(grad):
    """The same gradient values laid out as CUDA's bmm may lay out the gradient of an
    (E, in, 1) weight: last two dims transposed in memory."""
    return grad.transpose(-1, -2).contiguous().transpose(-1, -2) if grad.dim() == 3 else grad


def _read_by_layout(grad):
    """The contiguous memory of a gradient read as if it were laid out transposed: the
    numbers code that ignores strides would compare."""
    if grad.dim() != 3 or grad.shape[-1] == 1:
        return grad
    return grad.contiguous().view(-1).view(*grad.shape[:-2], grad.shape[-1], grad.shape[-2]).transpose(-1, -2)


@pytest.mark.parametrize("scrambled", [False, True], ids=["other-strides-same-values", "values-read-by-layout"])
def test_gradients_are_compared_by_index_not_by_layout(monkeypatch, scrambled, verify_in_this_process):
    """The lead on the CUDA float32 mismatch of `sequential_mlp_members`: an (E, in, 1)
    weight's gradient coming back from bmm with other strides than the weight. verify
    must read gradients by index: the same values in another layout are equivalent; the
    values of the other layout read as if contiguous (what code that reads by layout
    would see) are a mismatch."""
    from enslint.verify import building

    loaded = building.load_rewrite_weights

    def with_strided_gradients(original, rewritten):
        loaded(original, rewritten)
        for p in rewritten.parameters():
            p.register_hook(_read_by_layout if scrambled else _strided_like_a_width_1_bmm)

    monkeypatch.setattr(building, "load_rewrite_weights", with_strided_gradients)
    monkeypatch.chdir(ROOT)
    result, rows = verify(
        "fixtures/positive/sequential_mlp_members.py::RewardEnsemble", "--device", "cpu", "--batch", "8", *FAST
    )
    (row,) = rows
    assert row["status"] == ("mismatch" if scrambled else "equivalent"), row["notes"]


def test_a_batch_sweep_gives_a_row_per_size_and_a_plot(project, monkeypatch, verify_in_this_process):
    from enslint.verify import timing

    monkeypatch.setattr(timing, "measure", _timed(2.0, {"wide layer": 1.0, "vmap": 1.5}))
    (project / "gated.py").write_text(CONTROL_FLOW)
    (project / "pyproject.toml").write_text("[tool.enslint.verify.GatedHeads]\ninputs = [[5, 4]]\n")
    result, rows = verify("gated.py::GatedHeads", "--device", "cpu", "--batch", "2,8,32", "--plot", "sweep.png", *FAST)
    assert [row["batch"] for row in rows] == [2, 8, 32]
    assert all(row["status"] == "equivalent" and row["recommendation"] == "wide layer" for row in rows)
    image = (project / "sweep.png").read_bytes()
    assert image.startswith(b"\x89PNG") and len(image) > 5000
    text = (
        CliRunner()
        .invoke(main, ["verify", "gated.py::GatedHeads", "--device", "cpu", "--batch", "2,8", "--min-time", "0.001"])
        .stdout
    )
    assert "GatedHeads @2 " in text and "GatedHeads @8 " in text
    bad = CliRunner().invoke(main, ["verify", "gated.py", "--batch", "2,x"])
    assert bad.exit_code == 2 and "--batch 2,x: a size or comma-separated sizes" in bad.output


def test_overlapping_ranges_are_no_clear_difference():
    from enslint.verify.recommendation import KEEP_LOOP, NO_CLEAR, recommend
    from enslint.verify.rows import Row, Trial

    def row(original, rewrite, spread):
        trial = Trial("wide layer", "unsafe", status="equivalent", step_rewrite_ms=rewrite, step_rewrite_iqr_ms=spread)
        return Row("x", "ENS001", step_original_ms=original, step_original_iqr_ms=spread, trials=[trial])

    assert recommend(row(2.0, 1.0, 0.1)).recommendation == "wide layer"
    assert recommend(row(2.0, 1.95, 0.2)).recommendation == NO_CLEAR
    assert recommend(row(2.0, 3.0, 0.1)).recommendation == KEEP_LOOP


def _compiled_row(loop, compiled_loop, rewrite, compiled_rewrite, spread=0.05):
    from enslint.verify.rows import Row, Trial

    trial = Trial(
        "stacked weights",
        "unsafe",
        status="equivalent",
        step_rewrite_ms=rewrite,
        step_rewrite_iqr_ms=spread,
        compiled_rewrite_step_ms=compiled_rewrite,
        compiled_rewrite_step_iqr_ms=None if compiled_rewrite is None else spread,
    )
    return Row(
        "x",
        "ENS002",
        step_original_ms=loop,
        step_original_iqr_ms=spread,
        compiled_step_ms=compiled_loop,
        compiled_step_iqr_ms=None if compiled_loop is None else spread,
        trials=[trial],
    )


def test_with_compile_a_rewrite_must_beat_the_compiled_loop():
    from enslint.verify.recommendation import COMPILE_LOOP, KEEP_LOOP, NO_CLEAR, Choice, recommend

    # The CPU figures: the eager rewrite beats the eager loop but not the
    # compiled one; compiling the loop is as good, and said so.
    assert recommend(_compiled_row(22.5, 17.8, 18.7, 44.0)) == Choice(COMPILE_LOOP)
    # A compiled rewrite that beats the compiled loop is recommended compiled.
    assert recommend(_compiled_row(22.5, 18.5, 22.8, 15.1)) == Choice("stacked weights", compiled=True)
    # An eager rewrite faster than both loops needs no compile.
    assert recommend(_compiled_row(22.5, 21.0, 10.0, 12.0)) == Choice("stacked weights")
    # Compiling helps nothing and the rewrite is slower: keep the loop, compiled or not.
    assert recommend(_compiled_row(10.0, 10.01, 14.0, 15.0)) == Choice(KEEP_LOOP)
    assert recommend(_compiled_row(10.0, 10.01, 10.02, None)) == Choice(NO_CLEAR)
    # Where the original did not compile, the eager loop is the bar.
    assert recommend(_compiled_row(22.5, None, 18.7, 15.0)) == Choice("stacked weights", compiled=True)


def test_the_compiled_figures_are_told_in_the_table_and_by_check():
    from enslint.measurements import Candidate, Measurement, Run
    from enslint.verify.command import terminal_table
    from enslint.verify.recommendation import recommend

    row = _compiled_row(22.5, 18.5, 22.8, 15.1)
    choice = recommend(row)
    row.recommendation, row.recommended_compiled = choice.recommendation, choice.compiled
    text = terminal_table([row])
    assert "torch.compile: loop 1.22x, stacked weights 1.49x" in text
    assert "recommended: stacked weights, compiled" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    run = Run(None, (Candidate("stacked weights", "equivalent", 0.99, "no clear difference", 1.49),), "stacked weights", 1.22, True)
    summary = Measurement("f.py", "X", "h", "cpu", "float32", (run,)).summary()
    assert summary == (
        "verify on cpu (float32): stacked weights 0.99x (1.49x compiled), the loop compiled 1.22x, "
        "recommends stacked weights under torch.compile"
    )
    loop_wins = Run(None, (Candidate("vmap", "equivalent", 1.2, "faster", 0.5),), "compile the loop", 1.26)
    assert "recommends compiling the loop" in Measurement("f.py", "X", "h", "cpu", "float32", (loop_wins,)).summary()


def test_the_rule_that_decided_is_reported(project):
    (project / "gated.py").write_text(CONTROL_FLOW)
    (project / "pyproject.toml").write_text("[tool.enslint.verify.GatedHeads]\ninputs = [[5, 4]]\n")
    _, rows = verify("gated.py::GatedHeads", "--device", "cpu", "--dtype", "bfloat16", *FAST)
    assert rows[0]["decided_by"] == "error vs a float64 run <= 2x the original's + atol 0.02"
    _, rows = verify("gated.py::GatedHeads", "--device", "cpu", "--dtype", "float64", *FAST)
    assert rows[0]["decided_by"] == "assert_close rtol 1e-09, atol 1e-09"
    markdown = (
        CliRunner()
        .invoke(main, ["verify", "gated.py", "--device", "cpu", "--format", "markdown", "--min-time", "0.001"])
        .stdout
    )
    assert "| decided by |" in markdown


def test_notes_never_point_into_the_in_memory_rewrite_nor_cut_words(monkeypatch):
    monkeypatch.chdir(ROOT)
    _, rows = verify(
        "fixtures/positive/shared_trunk_linear_heads.py::SharedTrunkHeads", "--device", "cpu", "--batch", "4", *FAST
    )
    notes = " ".join(rows[0]["notes"])
    assert "fx cannot trace the rewrite (torch.vmap in the rewrite's `" in notes
    assert "shared_trunk_linear_heads.py:" not in notes  # no line of the rewrite as if it were the user's
    from enslint.verify.graphs import shorten

    assert shorten("alpha beta gamma delta", 12) == "alpha beta…"
    assert shorten("short", 12) == "short"


def test_the_terminal_table_fits_100_columns_with_the_longest_cells():
    from enslint.verify.command import terminal_table
    from enslint.verify.recommendation import NO_CLEAR
    from enslint.verify.rows import Row, Trial

    trial = Trial("stacked weights", "unsafe", status="equivalent", step_rewrite_ms=1.0, step_rewrite_iqr_ms=0.05)
    row = Row(
        "src/pkg/a_long_module_name.py::AVeryLongEnsembleClassName",
        "ENS001,ENS002,ENS003",
        step_original_ms=12.5,
        step_original_iqr_ms=0.5,
        trials=[trial],
        recommendation=NO_CLEAR,
        batch=256,
        rtol=1e-5,
        atol=1e-5,
        dtype="float32",
    )
    lines = terminal_table([row]).splitlines()
    assert NO_CLEAR in lines[1] and "12.5x" in lines[1]
    assert max(len(line) for line in lines) <= 100, lines


def test_nothing_flagged_is_said_without_importing_torch(project):
    (project / "plain.py").write_text("import torch\n\nx = torch.ones(3)\n")
    probe = (
        "import sys\n"
        "from enslint.cli import main\n"
        "try:\n"
        "    main(['verify', '.'])\n"
        "except SystemExit as exit:\n"
        "    print(exit.code, 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["0", "False"], result.stderr
    assert "No flagged classes to verify." in result.stderr
