"""What verify measured reaches check: the speed-up and device beside the class's
findings while its file holds the measured code, and `--fix` leaving a rewrite verify
found slower unless `--apply-slower`. The store itself is torch-free; the end-to-end
tests run verify with its timer replaced by fixed figures, as tests/test_verify.py does."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from enslint.cache import CACHE_FOLDER
from enslint.cli import main
from enslint.measurements import (
    FASTER,
    NO_CLEAR,
    SLOWER,
    Candidate,
    Measurement,
    MeasurementStore,
    Run,
    content_hash,
)

HEADS = """\
import torch
from torch import nn


class Heads(nn.Module):
    def __init__(self, hidden: int = 8, n_heads: int = 3):
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(hidden, 2) for _ in range(n_heads)])

    def forward(self, x):
        return torch.stack([head(x) for head in self.heads], dim=1)
"""


def measurement(file: str, source: bytes, *runs: Run, device: str = "cpu") -> Measurement:
    return Measurement(file, "Heads", content_hash(source), device, "float32", runs)


def run_of(*candidates: tuple[str, float, str], recommendation: str = "", status: str = "equivalent") -> Run:
    timed = tuple(Candidate(form, status, speedup, verdict) for form, speedup, verdict in candidates)
    return Run(None, timed, recommendation)


def check(*args: str):
    result = CliRunner().invoke(main, ["check", "heads.py", "--unsafe-fixes", *args])
    return result


@pytest.fixture
def heads(project):
    path = project / "heads.py"
    path.write_text(HEADS)
    return path


def store_for(project) -> MeasurementStore:
    return MeasurementStore(project / CACHE_FOLDER)


# The store


def test_a_form_is_slower_only_when_every_candidate_holding_it_lost_in_every_run():
    m = measurement(
        "/x.py",
        b"",
        run_of(("stacked weights", 0.7, SLOWER), ("vmap", 1.4, FASTER), ("stacked weights + unbind", 0.8, SLOWER)),
        run_of(("stacked weights", 0.9, SLOWER), ("vmap", 0.95, NO_CLEAR), ("stacked weights + unbind", 0.6, SLOWER)),
    )
    # unbind was timed only inside a combination that lost: nothing says it helps alone.
    assert m.slower_forms() == {"stacked weights", "unbind"}
    alone = measurement("/x.py", b"", run_of(("stacked weights + unbind", 0.8, SLOWER), ("unbind", 1.1, FASTER)))
    assert alone.slower_forms() == {"stacked weights"}
    one_win = measurement(
        "/x.py", b"", run_of(("stacked weights", 0.7, SLOWER)), run_of(("stacked weights", 1.3, FASTER))
    )
    assert one_win.slower_forms() == set()
    # A rewrite that is not equivalent is never one to apply, whatever its time.
    wrong = measurement("/x.py", b"", run_of(("vmap", 2.0, FASTER), status="mismatch"))
    assert wrong.slower_forms() == {"vmap"}


def test_the_store_round_trips_and_a_damaged_store_is_empty(tmp_path):
    m = measurement("/x.py", b"code", run_of(("wide layer", 1.5, FASTER), recommendation="wide layer"))
    MeasurementStore(tmp_path).record([m])
    assert MeasurementStore(tmp_path).entries == {"/x.py::Heads": m}
    for damage in ["{", "[]", json.dumps({"format": 1, "entries": {"k": {"file": 1}}}), json.dumps({"format": 99})]:
        (tmp_path / "measurements.json").write_text(damage)
        assert MeasurementStore(tmp_path).entries == {}


def test_a_measurement_holds_only_for_the_code_it_measured(tmp_path):
    path = tmp_path / "heads.py"
    path.write_bytes(b"old")
    store = MeasurementStore(tmp_path)
    store.record([measurement(str(path), b"old", run_of(("vmap", 0.5, SLOWER)))])
    assert store.current(str(path), "Heads", {}) is not None
    path.write_bytes(b"new")
    assert store.current(str(path), "Heads", {}) is None
    path.unlink()
    assert store.current(str(path), "Heads", {}) is None


# check and --fix


def test_without_a_measurement_the_details_say_how_to_measure(heads):
    (finding,) = json.loads(check("--format", "json").stdout)
    assert finding["details"].endswith("`enslint verify heads.py::Heads` measures it (`--device cuda` on a GPU)")
    assert "verify on" not in finding["message"]
    shown = check("--show-details").stdout.splitlines()
    # A paragraph of its own, not run on from the explanation's last sentence.
    assert any(line.startswith("    Whether the rewrite is faster depends on the device") for line in shown)


def test_a_slower_rewrite_is_shown_and_left_by_fix_unless_asked(heads, project):
    store_for(project).record(
        [
            measurement(
                str(heads),
                HEADS.encode(),
                run_of(("wide layer", 0.77, SLOWER), ("vmap", 0.83, SLOWER), recommendation="keep the loop"),
            )
        ]
    )
    shown = check()
    assert (
        "verify on cpu (float32): wide layer 0.77x, vmap 0.83x, recommends keeping the loop "
        "(--fix leaves the wide layer rewrite; --apply-slower applies it)" in shown.stdout
    )
    assert "[*]" not in shown.stdout  # nothing --fix would apply
    assert json.loads(check("--format", "json").stdout)[0]["fix"] is None
    assert check("--diff").stdout == ""
    left = check("--fix")
    assert heads.read_text() == HEADS and "Applied 0 fixes." in left.stdout
    forced = check("--fix", "--apply-slower")
    assert "Applied 1 fix." in forced.stdout and heads.read_text() != HEADS


def test_the_next_form_is_applied_when_only_the_first_is_slower(heads, project):
    store_for(project).record(
        [measurement(str(heads), HEADS.encode(), run_of(("wide layer", 0.8, SLOWER), ("vmap", 1.6, FASTER)))]
    )
    check("--fix")
    assert "StackedMembers" in heads.read_text()


def test_an_edit_after_verify_makes_the_measurement_stale(heads, project):
    store_for(project).record([measurement(str(heads), HEADS.encode(), run_of(("wide layer", 0.5, SLOWER)))])
    heads.write_text(HEADS.replace("n_heads: int = 3", "n_heads: int = 4"))
    result = check()
    assert "verify on" not in result.stdout and "[*]" in result.stdout


def test_no_cache_reads_no_measurement(heads, project):
    store_for(project).record([measurement(str(heads), HEADS.encode(), run_of(("wide layer", 0.5, SLOWER)))])
    assert "verify on" not in check("--no-cache").stdout


# verify records, check tells


def test_verify_records_what_check_then_shows(heads, project, monkeypatch, verify_in_this_process):
    torch = pytest.importorskip("torch")
    from enslint.verify import timing

    def measure(function, parameters, inputs, min_time, device):
        heads_now = function.__self__.heads
        wide, stacked = isinstance(heads_now, torch.nn.Linear), type(heads_now).__name__ == "StackedMembers"
        ms = 1.0 if wide else 3.0 if stacked else 2.0
        return timing.Timing(forward_ms=ms, step_ms=ms, forward_iqr_ms=ms * 0.02, step_iqr_ms=ms * 0.02)

    monkeypatch.setattr(timing, "measure", measure)
    (project / "pyproject.toml").write_text("[tool.enslint.verify.Heads]\ninputs = [[5, 8]]\n")
    verified = CliRunner().invoke(main, ["verify", "heads.py", "--device", "cpu", "--min-time", "0.001"])
    assert verified.exit_code == 0, verified.output
    shown = check()
    assert "verify on cpu (float32): wide layer 2.00x, vmap 0.67x, recommends wide layer" in shown.stdout
    assert "[*]" in shown.stdout
    check("--fix")
    assert "nn.Linear(hidden, n_heads * 2)" in heads.read_text()
