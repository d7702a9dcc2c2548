"""A file that kills its checker process costs that file, never the run.

The crash is real: the checker, in the forked worker, sends itself SIGSEGV (or SIGKILL,
as the out-of-memory killer does) on one file; the run must report ENS000 for that
file, check the others, and exit 1, never 139."""

from __future__ import annotations

import os
import signal

import pytest
from click.testing import CliRunner
from test_cli import FLAGGED

import enslint.checking
import enslint.runner
from enslint.cli import main
from enslint.workers import death_reason, isolated_map


def _dies_on(marker: str, how: int):
    real = enslint.checking.analysed_outcome

    def checker(job):
        if marker in job.filename:
            os.kill(os.getpid(), how)
        return real(job)

    return checker


def _patch_analysis(monkeypatch, checker) -> None:
    """The analysis, where the analyser's process (forked after this) and the runner's
    own fallback find it."""
    monkeypatch.setattr(enslint.checking, "analysed_outcome", checker)
    monkeypatch.setattr(enslint.runner, "analysed_outcome", checker)


@pytest.mark.parametrize("how", [signal.SIGSEGV, signal.SIGKILL, signal.SIGABRT])
@pytest.mark.parametrize("files", [3, 30], ids=["one-worker", "parallel"])
def test_a_dying_checker_costs_one_file(project, monkeypatch, how, files):
    for i in range(files):
        (project / f"m{i:02d}.py").write_text(FLAGGED)
    _patch_analysis(monkeypatch, _dies_on("m01.py", how))
    result = CliRunner().invoke(main, ["check", "--no-cache", "--output-format", "concise", "."])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    dead = [line for line in lines if line.startswith("m01.py")]
    assert dead == [
        f"m01.py:1:1: ENS000 internal error while checking this file: the checker process was killed by {signal.Signals(how).name} (please report it)"
    ]
    for i in range(files):
        if i != 1:
            assert any(line.startswith(f"m{i:02d}.py:11:") and "ENS001" in line for line in lines), (i, result.output)


def test_every_worker_may_die_and_the_run_still_ends(project, monkeypatch):
    for i in range(30):
        (project / f"m{i:02d}.py").write_text(FLAGGED)
    _patch_analysis(monkeypatch, _dies_on("m", signal.SIGSEGV))
    result = CliRunner().invoke(main, ["check", "--no-cache", "--output-format", "concise", "."])
    assert result.exit_code == 1
    assert result.output.count("killed by SIGSEGV") == 30


def test_a_dying_fix_leaves_the_file_as_it_was(project, monkeypatch):
    (project / "a.py").write_text(FLAGGED)
    (project / "b.py").write_text(FLAGGED)
    import enslint.engine.transaction as transaction

    real = transaction.fix_file

    def fix_or_die(job, unsafe, *args, **kwargs):
        if job.filename.endswith("a.py"):
            os.kill(os.getpid(), signal.SIGSEGV)
        return real(job, unsafe, *args, **kwargs)

    monkeypatch.setattr(transaction, "fix_file", fix_or_die)
    result = CliRunner().invoke(main, ["check", "--no-cache", "--fix", "--unsafe-fixes", "."])
    assert result.exit_code == 1, result.output
    assert (project / "a.py").read_text() == FLAGGED
    assert (project / "b.py").read_text() != FLAGGED
    assert "a.py" in result.output and "killed by SIGSEGV" in result.output


def _square_or_die(n: int) -> int:
    if n == 3:
        os._exit(7)
    return n * n


def test_isolated_map_keeps_order_and_names_the_death():
    results = isolated_map(_square_or_die, list(range(8)), 3, lambda n, why: why)
    assert results == [0, 1, 4, "exited with status 7", 16, 25, 36, 49]
    assert death_reason(-signal.SIGSEGV) == "killed by SIGSEGV"


def _sleep_on_two(n: int) -> int:
    if n == 2:
        import time

        time.sleep(60)
    return n


def test_an_item_past_the_time_limit_is_stopped_and_the_rest_go_on():
    results = isolated_map(_sleep_on_two, list(range(5)), 2, lambda n, why: why, time_limit=1.0)
    assert results == [0, 1, "stopped after 1 s", 3, 4]
