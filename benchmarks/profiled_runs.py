"""`enslint profile` on training runs of the seed's two models and two real-shaped
fixtures: each group's share of a training step, the hooks' cost, and the saving verify's
measured speed-up promises.

For each case a temporary project holds the fixture files and a training script (Adam,
`--steps` steps, the step time printed from the second step on). The script runs
plainly, then under `enslint profile`, then `enslint verify` measures the flagged class
(built from the profile's capture: no table), then `enslint profile` runs again to
print the expected saving. One line per case:

    python benchmarks/profiled_runs.py [--steps 40] [--threads 1] [--min-time 0.3]

Columns: the step time without and with the hooks (their real cost, torch's dispatch
included), the hooks' own time as a share of the run (what the profile prints), the
group's share of a step, verify's speed-up and recommendation, the expected saving.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

TRAIN = """\
import sys, time
import torch
torch.manual_seed(0)
torch.set_num_threads({threads})
{build}
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
inputs = {inputs}
times = []
for step in range({steps}):
    started = time.perf_counter()
    out = {call}
    loss = out.float().pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    times.append(time.perf_counter() - started)
later = sorted(times[1:])
print(f"STEP_MS {{1e3 * later[len(later) // 2]:.3f}}")
"""

# (name, files or folders to copy, the class verify measures as file::Class, build, inputs, call)
CASES = [
    (
        "seed: E=10 independent MLPs on slices",
        ["positive/seed_independent_mlps.py"],
        "seed_independent_mlps.py",
        "from seed_independent_mlps import IndependentEnsemble\nmodel = IndependentEnsemble(17, 256, 6, 10)",
        "(torch.randn(256, 10, 17),)",
        "model.batched_forward(*inputs)",
    ),
    (
        "seed: trunk + 10 groups of 4 heads",
        ["positive/seed_shared_trunk_head_groups.py"],
        "seed_shared_trunk_head_groups.py",
        "from seed_shared_trunk_head_groups import GroupedHeadEnsemble\nmodel = GroupedHeadEnsemble(17, 256, 6, 4, 10)",
        "(torch.randn(256, 10, 17),)",
        "model.batched_forward(*inputs)",
    ),
    (
        "RL critics passed in (10 QNetworks)",
        ["projects/rl_critics/rl_critics"],
        "rl_critics/ensemble.py",
        "from rl_critics.builders import build_critic\nmodel = build_critic(11, 3, 10)",
        "(torch.randn(256, 11), torch.randn(256, 3))",
        "model(*inputs)",
    ),
    (
        "per-channel forecaster (7 channels)",
        ["positive/per_channel_timeseries.py"],
        "per_channel_timeseries.py",
        "from per_channel_timeseries import PerChannelForecaster\nmodel = PerChannelForecaster(7, 96, 24)",
        "(torch.randn(256, 96, 7),)",
        "model(*inputs)",
    ),
]


def enslint(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "enslint", *args], cwd=cwd, capture_output=True, text=True, env=environment
    )


def step_ms(output: str) -> float:
    return next(float(line.split()[1]) for line in output.splitlines() if line.startswith("STEP_MS"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-time", default="0.3")
    options = parser.parse_args()
    print("| case | group | step ms plain | step ms profiled | hooks' own | share of step | verify | saving |")
    print("|---|---|---|---|---|---|---|---|")
    for name, copies, measured, build, inputs, call in CASES:
        with tempfile.TemporaryDirectory() as folder:
            project = Path(folder)
            (project / "pyproject.toml").write_text("[tool.enslint]\n")
            for copy in copies:
                source = FIXTURES / copy
                if source.is_dir():
                    shutil.copytree(source, project / source.name)
                else:
                    shutil.copy(source, project / source.name)
            script = TRAIN.format(threads=options.threads, build=build, inputs=inputs, call=call, steps=options.steps)
            (project / "train.py").write_text(textwrap.dedent(script))
            plain = subprocess.run(
                [sys.executable, "train.py"], cwd=project, capture_output=True, text=True, check=True
            )
            first = enslint("profile", "train.py", cwd=project)
            verified = enslint("verify", "--min-time", options.min_time, "--format", "json", measured, cwd=project)
            again = enslint("profile", "--format", "json", "train.py", cwd=project)
            rows = json.loads(again.stdout.splitlines()[-1])
            profile = json.loads((project / ".enslint" / "profile.json").read_text())
            verdicts = json.loads(verified.stdout) if verified.stdout.strip() else []
            verdict = (
                "; ".join(
                    f"{v['step_speedup']:.2f}x, {v['recommendation'] or v['status']}"
                    if v.get("step_speedup")
                    else v["status"]
                    for v in verdicts
                )
                or verified.stderr.strip().splitlines()[-1]
            )
            hooks = profile["hooks_s"] / profile["wall_s"]
            for row in rows or [{}]:
                share = row.get("step_share")
                saving = row.get("expected_saving")
                print(
                    f"| {name} | `{row.get('class')}.{row.get('collection')}` x{row.get('members')} "
                    f"| {step_ms(plain.stdout):.1f} | {step_ms(first.stdout):.1f} | {hooks:.1%} "
                    f"| {'-' if share is None else f'{share:.1%}'} | {verdict} "
                    f"| {'-' if saving is None else f'{saving:.1%}'} |"
                )


if __name__ == "__main__":
    main()
