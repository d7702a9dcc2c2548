"""Training-step time of each fixture positive against each of enslint's rewrites of it.

For every fixture class that has a fix, this writes each candidate rewrite the way
`enslint verify` does (in a scratch folder): the preferred fused form
(`--fix --unsafe-fixes`), the vmap form where it is offered beside a more specific one,
and the safe fix (`unbind`, `split`, one shared call). It imports the original and each
rewrite, loads the original's weights into the rewrite through its checkpoint hook, and
times one training step (zero grads, forward, loss, backward) of each, side by side in
one process, with torch.utils.benchmark. For the seed's nest a hand-written `einsum`
version is timed in the same run. Each class is built from its `[tool.enslint.verify.*]`
table in pyproject.toml (as `enslint verify` and tests/test_fix_equivalence.py build it),
with its member count set to each E timed.

    pip install torch==2.13.0 -e . && python benchmarks/fused_speed.py [--device cuda]

`--shapes` times six ensembles of public code in their real shapes instead (RL critics
in a plain list, a config-built dynamics ensemble, deep-ensemble members, a
decomposition model with two collections per channel, per-variable heads with three, a
hand-rolled attention): the loop and every candidate rewrite, each eager and under
torch.compile, the outputs compared, and what verify's rule recommends from those
timings (a rewrite must beat the compiled loop too):

    python benchmarks/fused_speed.py --shapes --sizes 5,20 --batches 256

`--compiled-forms` asks whether the fused form compiles well: the seed's E MLPs as the
loop, as enslint's stacked-weights rewrite (member-first `baddbmm` per layer) and as a
hand-written batch-first `einsum`, each eager and under torch.compile:

    python benchmarks/fused_speed.py --compiled-forms --threads 1 --sizes 10,50 --batches 256

`--speed-bar` checks the bar the rewrites are held to instead: for the seed's two models
at E=10 and 50, batch 32 and 256, `enslint verify`'s recommendation (a rewrite, or
"keep the loop") is never slower than the original, timed again apart from the
measurements verify decided on; and the seed nest's rewrite is within 10% of the
hand-written einsum. Exit status 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils import benchmark

from enslint.checking import FileJob, check_file
from enslint.config import Config, VerifySpec, load_config, table_names
from enslint.findings import Form
from enslint.rules import Settings
from enslint.verify.building import init_kwargs

ROOT = Path(__file__).resolve().parent.parent
POSITIVE = ROOT / "fixtures" / "positive"


CONFIG = load_config(ROOT)


@dataclass(frozen=True)
class Case:
    """A fixture class, built from its `[tool.enslint.verify.*]` table in pyproject.toml
    (the one place its construction is written) with the member count scaled: `members`
    is the constructor keyword that holds it. In the table's input shape, the dims equal
    to that count are the member axis and the first other dim is the batch."""

    fixture: str
    rule: str
    class_name: str
    members: str
    # Constructor keywords changed for every E timed (a width the member count must
    # divide), and the input dims that change with them (table size, new size).
    overrides: tuple[tuple[str, object], ...] = ()
    resized: tuple[tuple[int, int], ...] = ()

    @property
    def table(self) -> VerifySpec:
        found = CONFIG.verify_table(table_names(f"fixtures/positive/{self.fixture}", self.class_name))
        if found is None:
            sys.exit(f"{self.class_name}: no [tool.enslint.verify.{self.class_name}] table in pyproject.toml")
        spec = found[1]
        count = (spec.init or {}).get(self.members)
        clash = [key for key, value in (spec.init or {}).items() if value == count and key != self.members]
        if not isinstance(count, int) or clash or not spec.inputs:
            sys.exit(
                f"{self.class_name}: its table must give {self.members} as a count no other argument shares "
                f"({', '.join(clash)}) and the input shapes"
            )
        return spec

    @property
    def method(self) -> str:
        return self.table.method or "forward"

    def kwargs(self, e: int) -> dict:
        return {**init_kwargs(self.table), **dict(self.overrides), self.members: e}

    def shapes(self, b: int, e: int) -> list[tuple[int, ...]]:
        spec = self.table
        count = spec.init[self.members]  # type: ignore[index]  # checked by `table`
        scaled = []
        for shape in spec.inputs:  # type: ignore[union-attr]
            batch = next(i for i, size in enumerate(shape) if size != count)
            sizes = dict(self.resized)
            scaled.append(
                tuple(e if size == count else b if i == batch else sizes.get(size, size) for i, size in enumerate(shape))
            )
        return scaled

    def inputs(self, b: int, e: int, device: str) -> list[torch.Tensor]:
        return [torch.randn(shape, device=device) for shape in self.shapes(b, e)]


CASES = [
    Case("shared_trunk_linear_heads.py", "ENS001", "SharedTrunkHeads", "ensemble_size"),
    Case("value_heads_append_loop.py", "ENS001", "ValueHeads", "num_values"),
    Case("linear_heads_mean.py", "ENS001", "ProbeEnsemble", "n_probes"),
    Case("from_import_style.py", "ENS001", "QuantileHeads", "n_quantiles"),
    Case("sequential_mlp_members.py", "ENS001", "RewardEnsemble", "ensemble_size"),
    Case("conv_detection_heads.py", "ENS001", "AnchorHeads", "num_anchor_groups"),
    Case("seed_shared_trunk_head_groups.py", "ENS002", "GroupedHeadEnsemble", "ensemble_size"),
    Case("seed_independent_mlps.py", "ENS002", "IndependentEnsemble", "ensemble_size"),
    Case("nested_local_builders.py", "ENS002", "IndexedGroups", "ensemble_size"),
    Case("select_slices_activation.py", "ENS002", "Readouts", "n_members"),
    Case("range_len_members.py", "ENS002", "IndexedEnsemble", "n_members"),
    Case("per_channel_timeseries.py", "ENS002", "PerChannelForecaster", "n_channels"),
    Case("dynamics_ensemble_add_module.py", "ENS002", "DynamicsEnsemble", "ensemble_size"),
    Case("zip_unbind_members.py", "ENS002", "SliceEnsemble", "n_members"),
    Case("local_base_class.py", "ENS001", "ValueEnsemble", "n_members"),
    Case("speculative_decoding_heads.py", "ENS001", "MedusaHeads", "medusa_num_heads"),
    Case("ellipsis_slice_list.py", "ENS002", "TokenExperts", "n_slots"),
    Case("individual_channel_linear.py", "ENS002", "ChannelLinear", "n_channels"),
    Case("preallocated_index_write.py", "ENS001", "IndexedHeads", "n_heads"),
    Case("moduledict_heads.py", "ENS001", "TaskHeads", "n_tasks"),
    Case("nest_on_one_input.py", "ENS001", "TaskQuantileHeads", "n_tasks"),
    Case("nest_on_one_input.py", "ENS001", "HorizonChannelHeads", "horizon"),
    Case("additive_feature_networks.py", "ENS002", "AdditiveModel", "n_features"),
    Case("narrowed_and_split_slices.py", "ENS002", "NarrowedReadouts", "n_targets"),
    Case("clones_factory_sum.py", "ENS001", "ScoreHeads", "num_scorers"),
    Case("deep_ensemble_mean.py", "ENS001", "DeepEnsemble", "num_members"),
    Case("mlp_members_activations_combines.py", "ENS001", "GeluValueEnsemble", "n_members"),
    Case("mlp_members_activations_combines.py", "ENS001", "DropoutRewardEnsemble", "n_members"),
    Case("mlp_members_activations_combines.py", "ENS001", "PessimisticCritic", "n_critics"),
]
SEED_NEST, SEED_MLPS = CASES[6], CASES[7]

# Ensembles of public code in their real shapes, rebuilt as fixtures (issue 19): the
# table of --shapes, timed with torch.compile of each side beside the eager ones.
PUBLIC_SHAPES = [
    ("RL critics in a plain list", Case("rl_critic_tuple.py", "ENS001", "ContinuousCritic", "n_critics")),
    ("config-built dynamics ensemble", Case("config_built_dynamics.py", "ENS002", "ConfiguredDynamics", "ensemble_size")),
    ("deep-ensemble members", Case("deep_ensemble_mean.py", "ENS001", "DeepEnsemble", "num_members")),
    ("decomposition, two collections", Case("decomposition_two_collections.py", "ENS002", "SeasonalTrend", "n_series")),
    ("per-variable heads, three collections", Case("per_variable_head_chain.py", "ENS002", "PatchHead", "n_vars")),
    (
        "hand-rolled attention",
        Case(
            "handrolled_multihead_attention.py",
            "ENS001",
            "MultiHeadAttention",
            "num_heads",
            overrides=(("n_embd", 320),),  # 5 and 20 heads of 64 and 16
            resized=((384, 320),),
        ),
    ),
]

COLUMNS = ("fused", "vmap", "safe")


def rewrites(case: Case, scratch: Path) -> dict[str, Path]:
    """The class's candidate rewrites as `enslint verify` makes them, by column: the
    preferred fused form, the vmap form offered beside it, the safe fix; each written to
    the scratch folder."""
    from enslint.findings import Applicability
    from enslint.verify.targets import collect

    (target,) = collect([f"{POSITIVE / case.fixture}::{case.class_name}"], Config(root=ROOT), ROOT)
    written: dict[str, Path] = {}
    for position, candidate in enumerate(target.candidates):
        column = (
            "safe"
            if candidate.safety == Applicability.SAFE
            else "fused"
            if position == 0
            else "vmap"
            if candidate.form == Form.VMAP
            else None
        )
        if column is None or column in written:
            continue
        path = scratch / f"{column}_{case.class_name}" / case.fixture
        path.parent.mkdir(parents=True)
        path.write_text(candidate.source)
        written[column] = path
    return written


def load_class(path: Path, class_name: str, tag: str):
    name = f"enslint_bench_{tag}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return getattr(module, class_name)


def outputs(value):
    if isinstance(value, torch.Tensor):
        return [value]
    return [t for item in value for t in outputs(item)]


def step_timer(model, method: str, xs: list[torch.Tensor], min_run_time: float, device: str, forward=None):
    """One training step of `model` (its `method`, or `forward` standing for it: a
    compiled version) on the inputs, timed."""
    forward = forward or getattr(model, method)

    def step():
        model.zero_grad(set_to_none=True)
        sum(out.square().mean() for out in outputs(forward(*xs))).backward()

    step()  # warm-up, excluded
    if device == "cuda":
        torch.cuda.synchronize()
    timer = benchmark.Timer(stmt="step()", globals={"step": step})
    return timer.blocked_autorange(min_run_time=min_run_time)


def step_ms(model, method: str, xs: list[torch.Tensor], min_run_time: float, device: str) -> float:
    return step_timer(model, method, xs, min_run_time, device).median * 1e3


class HandEinsumNest(torch.nn.Module):
    """The seed nest as a person would write it by hand: the trunk, then every head of
    every group in one einsum over weights (E, H, hidden, actions)."""

    def __init__(self, original: torch.nn.Module):
        super().__init__()
        self.input_layer, self.h1, self.h2 = original.input_layer, original.h1, original.h2
        groups = original.ensemble
        self.weight = torch.nn.Parameter(
            torch.stack([torch.stack([h.weight.T for h in g]) for g in groups]).detach().clone()
        )
        self.bias = torch.nn.Parameter(torch.stack([torch.stack([h.bias for h in g]) for g in groups]).detach().clone())

    def batched_forward(self, x):
        x = torch.relu(self.input_layer(x))
        x = torch.relu(self.h1(x))
        x = torch.relu(self.h2(x))
        return torch.einsum("bei,ehio->beho", x, self.weight) + self.bias


class HandEinsumMLPs(torch.nn.Module):
    """The seed's E MLPs as a person would fuse them by hand: per layer, one einsum over
    weights (E, in, out) on the batch-first input (batch, E, in)."""

    def __init__(self, original: torch.nn.Module):
        super().__init__()
        layers = [[m.input_layer, m.h1, m.h2, m.out] for m in original.ensemble]
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.stack([member[k].weight.T for member in layers]).detach().clone())
            for k in range(4)
        )
        self.biases = torch.nn.ParameterList(
            torch.nn.Parameter(torch.stack([member[k].bias for member in layers]).detach().clone()) for k in range(4)
        )

    def batched_forward(self, x):
        for k, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.einsum("bei,eio->beo", x, weight) + bias
            x = torch.relu(x) if k < 3 else x
        return x


def compiled_forms(args) -> None:
    """The seed's E MLPs on slices: the loop, enslint's stacked-weights rewrite and a
    hand-written einsum, each eager and compiled (does the fused form compile well?)."""
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} threads, float32, one training step")
    print("| E | batch | hidden | form | eager ms | compiled ms |")
    print("|---:|---:|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch_dir:
        written = rewrites(SEED_MLPS, Path(scratch_dir))
        fused_cls = load_class(written["fused"], SEED_MLPS.class_name, "compiled_forms")
        original_cls = load_class(POSITIVE / SEED_MLPS.fixture, SEED_MLPS.class_name, "compiled_forms_original")
        batch = int(args.batches.split(",")[0])
        for e in (int(v) for v in args.sizes.split(",")):
            kwargs = {**SEED_MLPS.kwargs(e), "hidden_dim": args.hidden}
            torch.manual_seed(0)
            original = original_cls(**kwargs).to(args.device)
            fused = fused_cls(**kwargs).to(args.device)
            fused.load_state_dict(original.state_dict())
            xs = SEED_MLPS.inputs(batch, e, args.device)
            for name, model in (("loop", original), ("stacked weights (enslint)", fused), ("hand einsum", HandEinsumMLPs(original))):
                eager, compiled = (_timed(model, SEED_MLPS.method, xs, args, c) for c in (False, True))
                shown = f"{compiled[0]:.2f}" if compiled else "failed"
                print(f"| {e} | {batch} | {args.hidden} | {name} | {eager[0]:.2f} | {shown} |", flush=True)


def table(args) -> None:
    chosen = [
        c for c in CASES if not args.only or c.fixture in args.only.split(",") or c.class_name in args.only.split(",")
    ]
    fixable = {
        p.name
        for p in POSITIVE.glob("*.py")
        if any(d.fixes for d in check_file(FileJob(p.name, str(p), Config(root=ROOT).enabled_codes(), Settings())))
    }
    missing = fixable - {c.fixture for c in CASES}
    if missing:  # several inputs, a config object or pytorch_lightning: not sized here
        print(f"not benchmarked (no sizes here): {', '.join(sorted(missing))}", file=sys.stderr)
    print(
        f"torch {torch.__version__}, device {args.device}, {args.threads} threads, float32, one training step, median of torch.utils.benchmark"
    )
    print(
        "| pattern (fixture::class) | rule | E | batch | original ms | fused ms | fused x | vmap ms | vmap x | safe ms | safe x | hand einsum ms |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        for case in chosen:
            original_cls = load_class(POSITIVE / case.fixture, case.class_name, "original")
            written = rewrites(case, scratch)
            classes = {
                name: load_class(path, f"{case.class_name}", f"{name}_{case.class_name}")
                for name, path in written.items()
            }
            for e in (int(v) for v in args.sizes.split(",")):
                for b in (int(v) for v in args.batches.split(",")):
                    torch.manual_seed(0)
                    original = original_cls(**case.kwargs(e)).to(args.device)
                    x = case.inputs(b, e, args.device)
                    base = step_ms(original, case.method, x, args.min_run_time, args.device)
                    cells = []
                    for name in COLUMNS:
                        if name not in classes:
                            cells += ["-", "-"]
                            continue
                        torch.manual_seed(0)
                        model = classes[name](**case.kwargs(e)).to(args.device)
                        model.load_state_dict(original.state_dict())
                        ms = step_ms(model, case.method, x, args.min_run_time, args.device)
                        cells += [f"{ms:.2f}", f"{base / ms:.2f}x"]
                    hand = "-"
                    if case is SEED_NEST:
                        hand = f"{step_ms(HandEinsumNest(original).to(args.device), case.method, x, args.min_run_time, args.device):.2f}"
                    print(
                        f"| {case.fixture[:-3]}::{case.class_name} | {case.rule} | {e} | {b} | {base:.2f} | "
                        + " | ".join(cells)
                        + f" | {hand} |",
                        flush=True,
                    )


def _timed(model, method: str, xs: list[torch.Tensor], args, compiled: bool):
    """(median ms, iqr ms) of one training step, eager or under torch.compile; None
    where torch.compile fails."""
    forward = getattr(model, method)
    if compiled:
        forward = torch.compile(forward)
    try:
        measured = step_timer(model, method, xs, args.min_run_time, args.device, forward)
    except Exception as error:  # noqa: BLE001 - a form that does not compile is a cell, not a crash
        print(f"  torch.compile failed for {type(model).__name__}: {type(error).__name__}", file=sys.stderr)
        return None
    return measured.median * 1e3, measured.iqr * 1e3


def shapes_table(args) -> None:
    """The six public shapes at each E: the loop and every candidate rewrite, eager and
    compiled, with what verify's rule recommends from these timings."""
    from enslint.verify.command import advice
    from enslint.verify.recommendation import recommend
    from enslint.verify.rows import Row, Trial
    from enslint.verify.targets import collect

    print(
        f"torch {torch.__version__}, device {args.device}, {args.threads} threads, float32, one training step "
        "(zero grads, forward, loss, backward), median of torch.utils.benchmark; x: the eager loop's time over it"
    )
    print(
        "| shape | fixture::class | E | batch | loop ms | loop compiled x | rewrite | rewrite x "
        "| rewrite compiled x | outputs | recommends |"
    )
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---|---|")
    chosen = [(n, c) for n, c in PUBLIC_SHAPES if not args.only or c.class_name in args.only.split(",")]
    batch = int(args.batches.split(",")[0])
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        for shape_name, case in chosen:
            original_cls = load_class(POSITIVE / case.fixture, case.class_name, "original")
            (target,) = collect([f"{POSITIVE / case.fixture}::{case.class_name}"], Config(root=ROOT), ROOT)
            rewritten = {}
            for candidate in target.candidates:
                path = scratch / f"{candidate.form.replace(' ', '_')}_{case.class_name}" / case.fixture
                path.parent.mkdir(parents=True)
                path.write_text(candidate.source)
                rewritten[candidate.form] = load_class(path, case.class_name, f"{candidate.form}_{case.class_name}")
            for e in (int(v) for v in args.sizes.split(",")):
                torch.manual_seed(0)
                original = original_cls(**case.kwargs(e)).to(args.device)
                xs = case.inputs(batch, e, args.device)
                loop, loop_compiled = (_timed(original, case.method, xs, args, c) for c in (False, True))
                row = Row(case.class_name, case.rule, step_original_ms=loop[0], step_original_iqr_ms=loop[1])
                if loop_compiled:
                    row.compiled_step_ms, row.compiled_step_iqr_ms = loop_compiled
                lines = []
                for form, cls in rewritten.items():
                    torch.manual_seed(0)
                    model = cls(**case.kwargs(e)).to(args.device)
                    model.load_state_dict(original.state_dict())
                    with torch.no_grad():
                        original.eval(), model.eval()
                        same = all(
                            torch.allclose(a, b, rtol=1e-4, atol=1e-5)
                            for a, b in zip(
                                outputs(getattr(original, case.method)(*xs)),
                                outputs(getattr(model, case.method)(*xs)),
                                strict=True,
                            )
                        )
                        original.train(), model.train()
                    eager, compiled = (_timed(model, case.method, xs, args, c) for c in (False, True))
                    trial = Trial(form, "unsafe", status="equivalent" if same else "mismatch")
                    trial.step_rewrite_ms, trial.step_rewrite_iqr_ms = eager
                    if compiled:
                        trial.compiled_rewrite_step_ms, trial.compiled_rewrite_step_iqr_ms = compiled
                    row.trials.append(trial)
                    lines.append((form, eager[0], compiled[0] if compiled else None, same))
                choice = recommend(row)
                row.recommendation, row.recommended_compiled = choice.recommendation, choice.compiled
                recommends = advice(row)
                ratio = lambda ms: f"{loop[0] / ms:.2f}x" if ms else "-"  # noqa: E731
                for i, (form, eager_ms, compiled_ms, same) in enumerate(lines):
                    print(
                        f"| {shape_name if i == 0 else ''} | {f'{case.fixture[:-3]}::{case.class_name}' if i == 0 else ''} "
                        f"| {e} | {batch} | {loop[0]:.2f} | {ratio(loop_compiled[0] if loop_compiled else None)} "
                        f"| {form} | {ratio(eager_ms)} | {ratio(compiled_ms)} | {'equal' if same else 'DIFFER'} "
                        f"| {recommends if i == 0 else ''} |",
                        flush=True,
                    )


def speed_bar(args) -> int:
    """The bar in the module docstring; one line per case, then PASS or FAIL."""
    from enslint.verify.command import Options, verify_one
    from enslint.verify.recommendation import KEEP_LOOP, NO_CLEAR
    from enslint.verify.targets import collect

    failures = 0
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} threads, float32")
    print("| model | E | batch | verify recommends | original ms | recommended ms | speed-up (range) | bar |")
    print("|---|---:|---:|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        for case in (c for c in (SEED_NEST, SEED_MLPS) if not args.only or c.class_name in args.only.split(",")):
            written = rewrites(case, scratch)
            for e in (10, 50):
                for b in (32, 256):
                    spec = VerifySpec(init=case.kwargs(e), inputs=tuple(case.shapes(b, e)), method=case.method)
                    config = Config(root=ROOT, verify={case.class_name: spec})
                    (target,) = collect([f"{POSITIVE / case.fixture}::{case.class_name}"], config, ROOT)
                    row = verify_one(target, config, Options(args.device, "float32", None, False, args.min_run_time))
                    recommended = row.recommendation
                    # Timed again, apart from the measurements verify decided on.
                    torch.manual_seed(0)
                    original = load_class(POSITIVE / case.fixture, case.class_name, "bar")(**case.kwargs(e)).to(
                        args.device
                    )
                    x = case.inputs(b, e, args.device)
                    if recommended in (KEEP_LOOP, NO_CLEAR):
                        # The loop is what runs: the same code, not slower by definition.
                        ms = step_ms(original, case.method, x, args.min_run_time, args.device)
                        print(
                            f"| {case.class_name} | {e} | {b} | {recommended} | {ms:.2f} | {ms:.2f} | 1.00x (same code) | PASS |",
                            flush=True,
                        )
                    else:
                        candidate = next(c for c in target.candidates if c.form == recommended)
                        path = scratch / f"recommended_{case.class_name}_{e}_{b}" / case.fixture
                        path.parent.mkdir()
                        path.write_text(candidate.source)
                        torch.manual_seed(0)
                        model = load_class(path, case.class_name, f"bar_{case.class_name}_{e}_{b}")(
                            **case.kwargs(e)
                        ).to(args.device)
                        model.load_state_dict(original.state_dict())
                        first = step_timer(original, case.method, x, args.min_run_time, args.device)
                        second = step_timer(model, case.method, x, args.min_run_time, args.device)
                        ratio = first.median / second.median
                        low = (first.median - first.iqr / 2) / (second.median + second.iqr / 2)
                        high = (first.median + first.iqr / 2) / (second.median - second.iqr / 2)
                        ok = high >= 1.0  # not slower beyond the spread of the measurements
                        failures += not ok
                        print(
                            f"| {case.class_name} | {e} | {b} | {recommended} | {first.median * 1e3:.2f} | {second.median * 1e3:.2f} | "
                            f"{ratio:.2f}x ({low:.2f}-{high:.2f}) | {'PASS' if ok else 'FAIL'} |",
                            flush=True,
                        )
                    if case is SEED_NEST and "fused" in written:
                        torch.manual_seed(0)
                        fused = load_class(written["fused"], case.class_name, "bar_nest")(**case.kwargs(e)).to(
                            args.device
                        )
                        fused.load_state_dict(original.state_dict())
                        hand = HandEinsumNest(original).to(args.device)
                        fused_ms = step_ms(fused, case.method, x, args.min_run_time, args.device)
                        hand_ms = step_ms(hand, case.method, x, args.min_run_time, args.device)
                        ok = fused_ms <= 1.10 * hand_ms
                        failures += not ok
                        print(
                            f"| {case.class_name} rewrite vs hand einsum | {e} | {b} | - | {hand_ms:.2f} (einsum) | {fused_ms:.2f} | "
                            f"{hand_ms / fused_ms:.2f}x | {'PASS' if ok else 'FAIL'} (within 10%) |",
                            flush=True,
                        )
    print("all bars met" if not failures else f"{failures} bar(s) missed")
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="5,10,50", help="ensemble sizes E")
    parser.add_argument("--batches", default="256,32")
    parser.add_argument("--min-run-time", type=float, default=0.3)
    parser.add_argument("--only", default="", help="comma-separated fixture or class names")
    parser.add_argument("--speed-bar", action="store_true", help="check the speed bar instead of printing the table")
    parser.add_argument(
        "--shapes",
        action="store_true",
        help="the six public-code shapes, eager and compiled, instead (--sizes 5,20 --batches 256 suit it)",
    )
    parser.add_argument(
        "--compiled-forms",
        action="store_true",
        help="the seed's MLPs: loop, stacked rewrite and hand einsum, eager and compiled (--hidden sets the width)",
    )
    parser.add_argument("--hidden", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.compiled_forms:
        compiled_forms(args)
        return
    if args.speed_bar:
        sys.exit(speed_bar(args))
    if args.shapes:
        shapes_table(args)
        return
    table(args)


if __name__ == "__main__":
    main()
