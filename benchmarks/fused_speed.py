"""Training-step time of each fixture positive against enslint's rewrites of it.

For every fixture in fixtures/positive/ that has a fix, this applies the fixes the way
`enslint check --fix` does (in a scratch folder), imports the original and the
rewritten module, and times one training step (zero grads, forward, loss, backward)
of each, side by side in one process, with torch.utils.benchmark. Columns: the fused
rewrite (`--fix --unsafe-fixes`, where one exists) and, for ENS002, the `unbind`-only
safe fix. Sizes follow the seed: state 17, hidden 256, actions 6, 4 heads per group.

    pip install torch==2.13.0 -e . && python benchmarks/fused_speed.py [--device cuda]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils import benchmark

from enslint.checker import FileJob, check_file
from enslint.config import Config
from enslint.engine.transaction import fix_file
from enslint.rules import Settings

ROOT = Path(__file__).resolve().parent.parent
POSITIVE = ROOT / "fixtures" / "positive"
STATE, HIDDEN, ACTIONS, HEADS = 17, 256, 6, 4

# fixture -> (rule, class, kwargs(E), method, input shape(B, E))
SPECS = {
    "shared_trunk_linear_heads.py": ("ENS001", "SharedTrunkHeads", lambda e: dict(state_dim=STATE, hidden=HIDDEN, num_actions=ACTIONS, ensemble_size=e), "forward", lambda b, e: (b, STATE)),
    "value_heads_append_loop.py": ("ENS001", "ValueHeads", lambda e: dict(d_obs=STATE, hidden=HIDDEN, num_values=e), "forward", lambda b, e: (b, STATE)),
    "linear_heads_mean.py": ("ENS001", "ProbeEnsemble", lambda e: dict(d_embed=HIDDEN, n_probes=e), "forward", lambda b, e: (b, HIDDEN)),
    "from_import_style.py": ("ENS001", "QuantileHeads", lambda e: dict(hidden=HIDDEN, n_quantiles=e), "forward", lambda b, e: (b, HIDDEN)),
    "sequential_mlp_members.py": ("ENS001", "RewardEnsemble", lambda e: dict(obs_dim=STATE, hidden=HIDDEN, ensemble_size=e), "forward", lambda b, e: (b, STATE)),
    "conv_detection_heads.py": ("ENS001", "AnchorHeads", lambda e: dict(in_channels=32, num_anchor_groups=e, num_classes=ACTIONS), "forward", lambda b, e: (b, 32, 8, 8)),
    "seed_shared_trunk_head_groups.py": ("ENS002", "GroupedHeadEnsemble", lambda e: dict(state_dim=STATE, hidden_dim=HIDDEN, num_actions=ACTIONS, num_heads=HEADS, ensemble_size=e), "batched_forward", lambda b, e: (b, e, STATE)),
    "seed_independent_mlps.py": ("ENS002", "IndependentEnsemble", lambda e: dict(state_dim=STATE, hidden_dim=HIDDEN, num_actions=ACTIONS, ensemble_size=e), "batched_forward", lambda b, e: (b, e, STATE)),
    "nested_local_builders.py": ("ENS002", "IndexedGroups", lambda e: dict(hidden=HIDDEN, n_actions=ACTIONS, num_heads=HEADS, ensemble_size=e), "forward", lambda b, e: (b, e, HIDDEN)),
    "nested_comprehension_groups.py": ("ENS002", "GroupedHeads", lambda e: dict(d=HIDDEN, n_groups=e, heads_per_group=HEADS, n_out=ACTIONS), "forward", lambda b, e: (b, e, HIDDEN)),
    "select_slices_activation.py": ("ENS002", "Readouts", lambda e: dict(d_in=STATE, d_hidden=HIDDEN, n_out=ACTIONS, n_members=e), "forward", lambda b, e: (b, e, STATE)),
    "range_len_members.py": ("ENS002", "IndexedEnsemble", lambda e: dict(in_dim=HIDDEN, n_members=e), "forward", lambda b, e: (b, e, HIDDEN)),
    "per_channel_timeseries.py": ("ENS002", "PerChannelForecaster", lambda e: dict(n_channels=e, seq_len=96, pred_len=24, d_model=128), "forward", lambda b, e: (b, 96, e)),
    "dynamics_ensemble_add_module.py": ("ENS002", "DynamicsEnsemble", lambda e: dict(state_dim=STATE, action_dim=ACTIONS, ensemble_size=e), "forward", lambda b, e: (e, b, STATE + ACTIONS)),
    "zip_unbind_members.py": ("ENS002", "SliceEnsemble", lambda e: dict(in_dim=STATE, out_dim=ACTIONS, n_members=e), "forward", lambda b, e: (b, e, STATE)),
    "local_base_class.py": ("ENS001", "ValueEnsemble", lambda e: dict(obs_dim=STATE, n_members=e), "forward", lambda b, e: (b, STATE)),
    "speculative_decoding_heads.py": ("ENS001", "MedusaHeads", lambda e: dict(hidden_size=HIDDEN, vocab_size=1000, medusa_num_heads=e), "forward", lambda b, e: (b, HIDDEN)),
    "ellipsis_slice_list.py": ("ENS002", "TokenExperts", lambda e: dict(d=64, n_slots=e), "forward", lambda b, e: (b, 4, e, 64)),
}


def rewrite(fixture: str, scratch: Path, unsafe: bool) -> Path | None:
    """The fixture after `enslint check --fix [--unsafe-fixes]`, or None if unchanged."""
    target = scratch / ("unsafe" if unsafe else "safe") / fixture
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(POSITIVE / fixture, target)
    job = FileJob(fixture, str(target), Config(root=scratch).enabled_codes(), Settings())
    outcome = fix_file(job, unsafe=unsafe)
    if not outcome.changed:
        return None
    target.write_text(outcome.after)
    return target


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


def step_ms(model, method: str, x: torch.Tensor, min_run_time: float, device: str) -> float:
    forward = getattr(model, method)

    def step():
        model.zero_grad(set_to_none=True)
        sum(out.square().mean() for out in outputs(forward(x))).backward()

    step()  # warm-up, excluded
    if device == "cuda":
        torch.cuda.synchronize()
    timer = benchmark.Timer(stmt="step()", globals={"step": step})
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="5,10,50", help="ensemble sizes E")
    parser.add_argument("--batches", default="256,32")
    parser.add_argument("--min-run-time", type=float, default=0.3)
    parser.add_argument("--only", default="", help="comma-separated fixture names")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fixable = {
        p.name
        for p in POSITIVE.glob("*.py")
        if any(d.fixes for d in check_file(FileJob(p.name, str(p), Config(root=ROOT).enabled_codes(), Settings())))
    }
    missing = fixable - set(SPECS)
    if missing:  # several inputs, a config object or pytorch_lightning: not sized here
        print(f"not benchmarked (no sizes here): {', '.join(sorted(missing))}", file=sys.stderr)
    chosen = [f for f in SPECS if not args.only or f in args.only.split(",")]
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} threads, float32, one training step, median of torch.utils.benchmark")
    print("| pattern (fixture) | rule | E | batch | original ms | fused ms | fused speed-up | unbind-only ms | unbind speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        for fixture in chosen:
            rule, class_name, kwargs, method, shape = SPECS[fixture]
            original_cls = load_class(POSITIVE / fixture, class_name, "original")
            safe, unsafe = rewrite(fixture, scratch, False), rewrite(fixture, scratch, True)
            fused_cls = load_class(unsafe, class_name, "fused") if unsafe and unsafe.read_text() != (safe.read_text() if safe else None) else None
            unbind_cls = load_class(safe, class_name, "unbind") if safe else None
            for e in (int(v) for v in args.sizes.split(",")):
                for b in (int(v) for v in args.batches.split(",")):
                    torch.manual_seed(0)
                    original = original_cls(**kwargs(e)).to(args.device)
                    x = torch.randn(shape(b, e), device=args.device)
                    base = step_ms(original, method, x, args.min_run_time, args.device)
                    cells = []
                    for cls in (fused_cls, unbind_cls):
                        if cls is None:
                            cells += ["-", "-"]
                            continue
                        model = cls(**kwargs(e)).to(args.device)
                        model.load_state_dict(original.state_dict())
                        ms = step_ms(model, method, x, args.min_run_time, args.device)
                        cells += [f"{ms:.2f}", f"{base / ms:.2f}x"]
                    print(f"| {fixture[:-3]} | {rule} | {e} | {b} | {base:.2f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
