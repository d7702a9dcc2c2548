"""`enslint profile`: run the program under the hooks, judge what they saw, check the
program's files with that proof, keep the captures `verify` needs, write the profile,
and report.

The order matters: the program runs first and alone (its output and exit status are its
own); everything after it reads only what was gathered, so that a program stopped by
--max-seconds, Ctrl-C or SIGTERM still leaves its profile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from enslint.cache import CACHE_FOLDER
from enslint.config import Config
from enslint.findings import Diagnostic
from enslint.measurements import MeasurementStore, flagged_class
from enslint.profiles import Group, Profile, default_path, runtime_members, shown_path, write
from enslint.profiling import program
from enslint.profiling.capture import Constructions
from enslint.profiling.groups import sites_judged
from enslint.profiling.recorder import Recorder, now
from enslint.runner import check_all, make_jobs


@dataclass
class Outcome:
    profile: Profile
    ending: program.Ending
    fixes: dict[tuple[str, int], Diagnostic]  # a group's (path, line) -> check's finding with a fix
    # -> (verify's step speed-up, its device, whether verify recommends that rewrite)
    gains: dict[tuple[str, int], tuple[float, str, bool]]


def profile_program(
    target: str, args: list[str], as_module: bool, max_seconds: float | None, config: Config, output: Path | None
) -> Outcome:
    constructions = Constructions()
    recorder = Recorder(on_first_loop_call=constructions.loop_called, on_call=constructions.called)
    started = now()
    with constructions.installed(), recorder:
        ending = program.run(target, args, as_module, max_seconds)
    wall_s = now() - started
    hooks_s = recorder.hooks_s + constructions.hooks_s
    groups, rejected = sites_judged(list(recorder.sites.values()), max(wall_s - hooks_s, 1e-9), recorder.clock)
    span = recorder.clock.span_s
    path = output or default_path(config.root)
    proofs = runtime_members(groups, shown_path(path))
    files = {g.path for g in groups} | {c.path for c in constructions.by_class.values() if c.path}
    findings = _findings(sorted(files), replace(config, runtime=proofs), config.root)
    wanted = {(g.path, g.cls) for g in groups} | {
        (d.filename, name) for d in findings if (name := flagged_class(d)) is not None
    }
    profile = Profile(
        program=[target, *args] if not as_module else ["-m", target, *args],
        wall_s=wall_s,
        hooks_s=hooks_s,
        exit_status=ending.status,
        steps=recorder.clock.steps,
        step_s=span / (recorder.clock.steps - 1) if span else None,
        groups=groups,
        rejected=rejected,
        captures=constructions.write(wanted, path.parent / "captures"),
    )
    write(profile, path)
    fixes: dict[tuple[str, int], Diagnostic] = {}
    for group in groups:
        for d in findings:
            if d.filename == group.path and d.fixes and d.message.startswith(f"`{group.cls}.{group.method}`"):
                fixes.setdefault((group.path, group.line), d)
    return Outcome(profile, ending, fixes, _gains(groups, config))


def _findings(files: list[str], config: Config, cwd: Path) -> list[Diagnostic]:
    """check's findings on the program's own files (those under the project), with the
    run's proof."""
    root = str(config.root.resolve()) + os.sep
    own = [Path(f) for f in files if f.startswith(root) and os.sep + "site-packages" + os.sep not in f]
    if not own:
        return []
    jobs = make_jobs(own, config, cwd, use_cache=False)
    _, outcomes = check_all(jobs, workers=1)
    return [d for outcome in outcomes for d in outcome.diagnostics if d.code != "ENS000"]


def _gains(groups: list[Group], config: Config) -> dict[tuple[str, int], tuple[float, str, bool]]:
    """verify's measured training-step speed-up of each group's class, where verify has
    measured the class as its file now stands."""
    store = MeasurementStore(config.root / CACHE_FOLDER)
    hashes: dict[str, str | None] = {}
    gains = {}
    for group in groups:
        measured = store.current(group.path, group.cls, hashes)
        if measured is None:
            continue
        # The speed-up of what verify recommends (the fastest equivalent one otherwise).
        timed = [
            (c.form == run.recommendation, c.step_speedup)
            for run in measured.runs
            for c in run.candidates
            if c.status == "equivalent" and c.step_speedup is not None
        ]
        if timed:
            recommended, speedup = max(timed)
            gains[(group.path, group.line)] = (speedup, measured.device, recommended)
    return gains
